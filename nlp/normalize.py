"""Text normalisation shared by the index and the query side.

Both sides must agree byte for byte, so every key and term goes through :func:`normalize`:
NFKC (full-width letters and digits, compatibility forms), traditional → simplified (OpenCC t2s),
lower case, punctuation and symbols → one space. ``compact`` drops the spaces too; that is the
form used for whole-string keys ("解忧 杂货店" and "解忧杂货店" are the same title).
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from collections.abc import Iterator

import opencc

__all__ = [
    "MAX_QUERY_CHARS",
    "author_names",
    "compact",
    "is_cjk",
    "normalize",
    "normalize_many",
    "normalize_query",
    "publisher_core",
    "script_runs",
    "strip_nationality",
    "strip_publisher_suffix",
]

# Queries are cut to this many characters after normalisation (hostile input stays cheap).
MAX_QUERY_CHARS = 100
# Raw input is cut before NFKC: NFKC can expand a character, but not by more than ~18x.
_MAX_RAW_CHARS = 2000

_converter: opencc.OpenCC | None = None
_converter_lock = threading.Lock()


def _t2s(text: str) -> str:
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                _converter = opencc.OpenCC("t2s")
    return str(_converter.convert(text))


# Apostrophes join ("Keeper's" → "keepers"); everything else that is not a letter or digit splits.
_JOINERS = dict.fromkeys(map(ord, "'’‘`´"))
# \w is str.isalnum() plus "_"; "_" splits too.
_NON_WORD = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)  # the catalogue has "&#39;" and "&amp;" in places
    return unicodedata.normalize("NFKC", text)


def _finish(text: str) -> str:
    return _NON_WORD.sub(" ", text.lower().translate(_JOINERS)).strip()


def normalize(text: str | None) -> str:
    """NFKC, traditional→simplified, lower case; non-alphanumerics become single spaces."""
    if not text:
        return ""
    text = _fold(text)
    if not text.isascii():
        text = _t2s(text)
    return _finish(text)


def normalize_many(texts: list[str | None]) -> list[str]:
    """``normalize`` over many strings with one OpenCC call (indexing speed)."""
    folded = [_fold(t).replace("\n", " ") if t else "" for t in texts]
    wide = [i for i, t in enumerate(folded) if not t.isascii()]
    if wide:
        converted = _t2s("\n".join(folded[i] for i in wide)).split("\n")
        for i, value in zip(wide, converted, strict=True):
            folded[i] = value
    return [_finish(t) for t in folded]


def compact(text: str | None) -> str:
    """The normalised text without spaces: the form of whole-string keys."""
    return normalize(text).replace(" ", "")


def normalize_query(query: str) -> str:
    """Normalise user input, capped to MAX_QUERY_CHARS (also drops control characters)."""
    text = normalize(strip_nationality(query[:_MAX_RAW_CHARS]))
    return text[:MAX_QUERY_CHARS].rstrip()


def is_cjk(ch: str) -> bool:
    """Characters of scripts written without spaces (Han, kana, Hangul...): indexed as bigrams.

    Everything below U+2E80 (Latin, Greek, Cyrillic, digits) is written in space-separated
    words and indexed word by word.
    """
    return ch >= "\u2e80"


_RUNS = re.compile(r"[\u2e80-\U0010ffff]+|[^\s\u2e80-\U0010ffff]+")


def script_runs(normalised: str) -> Iterator[tuple[bool, str]]:
    """Split normalised text into runs of (is_cjk, text); spaces separate runs."""
    for match in _RUNS.finditer(normalised):
        run = match.group()
        yield run[0] >= "\u2e80", run


# Author statements: "[美] 卡勒德·胡赛尼", "（美）罗宾丝婷", "威尔.杜兰(美)", "张悦然 主编".
_NATIONALITY = re.compile(
    # a short bracketed Chinese note
    r"[\[\(（【〔［]\s*[\u4e00-\u9fff]{1,5}\s*[\]\)）】〕］]"
)
_ROLE_SUFFIX = re.compile(
    r"(?:\s*(?:编著|主编|编译|编选|编绘|选编|原著|著作|口述|整理)"
    # one-character roles only after a space or a name of 2+ characters ("余华著", "张悦然 编")
    r"|\s+(?:著|编|译|绘|文|图|撰|等)|(?<=[\u4e00-\u9fff]{2})(?:著|等))$"
)
_ROLE_WORDS = frozenset("著编译绘文图撰等")
_NAME_SPLIT = re.compile(r"\s*(?:/|／|;|；|,|，|、|\band\b|&)\s*")
_LATIN_IN_PARENS = re.compile(r"[\(（]\s*([A-Za-z][A-Za-z .,'\-]*?)\s*[\)）]")
_NAME_DOTS = re.compile(r"[·•・.．‧∙]")


def strip_nationality(text: str) -> str:
    """Remove bracketed nationality/dynasty notes such as "[日]" or "（美国）"."""
    if not any(b in text for b in "[(（【〔［"):
        return text
    return _NATIONALITY.sub(" ", text)


def author_names(statement: str | None) -> list[str]:
    """Personal names in an author statement, without notes and roles, as written (not normalised).

    A name with an original spelling in parentheses yields both: "肯·威尔伯（Ken Wilber）" →
    ["肯·威尔伯", "Ken Wilber"].
    """
    if not statement:
        return []
    names: list[str] = []
    latin = [m.group(1) for m in _LATIN_IN_PARENS.finditer(statement)]
    text = _LATIN_IN_PARENS.sub(" ", statement)
    text = strip_nationality(text)
    for part in _NAME_SPLIT.split(text):
        part = part.strip()
        while True:
            shorter = _ROLE_SUFFIX.sub("", part).strip()
            if shorter == part:
                break
            part = shorter
        part = part.strip(" ()（）[]【】")
        if part and part not in _ROLE_WORDS:
            names.append(part)
    names.extend(latin)
    return names


def name_parts(name: str) -> list[str]:
    """The dot-separated parts of a transliterated name ("卡勒德·胡赛尼" → 卡勒德, 胡赛尼)."""
    return [p for p in _NAME_DOTS.split(name) if p.strip()]


_PUBLISHER_SUFFIX = re.compile(
    r"(?:出版(?:有限责任|股份有限|有限)?(?:公司|集团|社|中心)|有限(?:责任)?公司|出版|书局|书店|"
    r"文化传播|集团)+$"
)


def publisher_core(publisher: str | None) -> str:
    """The distinctive part of a publisher name: "北京联合出版有限责任公司" → "北京联合".

    The generic suffixes are in nearly every record, so indexing them would only make huge
    posting lists; the query side drops them the same way (see nlp.search).
    """
    return strip_publisher_suffix(normalize(publisher))


def strip_publisher_suffix(normalised: str) -> str:
    core = _PUBLISHER_SUFFIX.sub("", normalised).strip()
    return core or normalised


def publisher_suffixes(text: str) -> str:
    """Drop publisher suffix words from a normalised query ("北京联合出版社" → "北京联合")."""
    return _PUBLISHER_WORD.sub(" ", text).strip()


_PUBLISHER_WORD = re.compile(r"出版(?:有限责任|股份有限|有限)?(?:公司|集团|社)|有限(?:责任)?公司")


# ---------------------------------------------------------------------------------------------
# Numbers: one spelling for every notation (index and query alike)

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_CN_DIGITS |= {"七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万]+")
# Roman numerals as volume marks: after a Han character, before another or the end ("三体ii").
_ROMAN_MARK = re.compile(
    r"(?<=[\u4e00-\u9fff])(viii|vii|iii|ii|iv|vi|ix|v|x|i)(?=[\u4e00-\u9fff]|$)"
)
_ROMAN_VALUES = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8}
_ROMAN_VALUES |= {"ix": 9, "x": 10}
_LEADING_ZEROS = re.compile(r"(?<!\d)0+(?=\d)")


def chinese_number(text: str) -> int | None:
    """The value of a Chinese numeral: "三十六" → 36, "一百零五" → 105, "两万" → 20000,
    "二〇一九" → 2019 (digit by digit); None when it is not a well-formed number."""
    if not text or any(ch not in _CN_DIGITS and ch not in _CN_UNITS and ch != "万" for ch in text):
        return None
    if all(ch in _CN_DIGITS for ch in text):
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total = 0
    for part_at, part in enumerate(text.split("万")):
        if part_at > 1 or (part_at == 0 and not part):
            return None
        value, digit, last_unit = 0, None, 10_000
        for ch in part:
            if ch in _CN_DIGITS:
                if digit is not None and _CN_DIGITS[ch] != 0:
                    return None
                digit = _CN_DIGITS[ch] or None
            else:
                unit = _CN_UNITS[ch]
                if unit >= last_unit:
                    return None
                value += (1 if digit is None else digit) * unit
                digit, last_unit = None, unit
        value += digit or 0
        total = total * 10_000 + value if part_at else value
    return total


def numbers_canonical(compact_text: str) -> str:
    """Compact text with every number in Arabic digits: Chinese numerals, Roman volume marks and
    leading zeros ("三十六计" → "36计", "三体ii" → "3体2", "爱人02" → "爱人2",
    "二〇一九" → "2019"). Index and query use the same function, so any notation finds any."""

    def arabic(match: re.Match[str]) -> str:
        value = chinese_number(match.group())
        return match.group() if value is None else str(value)

    text = _CN_NUMBER.sub(arabic, compact_text)
    text = _ROMAN_MARK.sub(lambda m: str(_ROMAN_VALUES[m.group()]), text)
    return _LEADING_ZEROS.sub("", text)


def has_number(compact_text: str) -> bool:
    return any(ch.isdigit() for ch in compact_text) or bool(
        _CN_NUMBER.search(compact_text) or _ROMAN_MARK.search(compact_text)
    )


# A year typed with a title: "活着 2012", "2012年版活着", "二〇一二年 活着" ("12年版": not one).
_YEAR_WORD = (
    r"((?:19|20)?\d0年代|[一二三四五六七八九]?十年代|[零〇]{2}年代|(?:19|20)\d\d"
    r"|[一二][〇零一二三四五六七八九]{3})(?:年版|年出版|年的|年|版的|版|的)?"
)
_YEAR_TAIL = re.compile(rf"^(.{{2,}}?)\s*{_YEAR_WORD}$")
_YEAR_HEAD = re.compile(rf"^{_YEAR_WORD}(?:的)?\s*(.{{2,}})$")


def _years(written: str) -> range | None:
    """The years a year or decade names: "2012" → 2012, "八十年代" → 1980..1989."""
    if not written.endswith("年代"):
        year = int(written) if written.isdigit() else chinese_number(written)
        return range(year, year + 1) if year is not None else None
    decade = written[:-2]
    value = int(decade) if decade.isdigit() else chinese_number(decade.replace("〇", "零"))
    if value is None:
        return None
    if value < 100:  # "80年代" is 1980s, "10年代" is 2010s
        value += 2000 if value <= 20 else 1900
    return range(value, value + 10)


def split_year(normalised: str) -> tuple[str, range] | None:
    """(the rest, the years) of a normalised query that starts or ends with a year or a decade
    in any notation ("活着 2012", "九十年代的围城"); None otherwise (or when the rest is too
    short to search)."""
    for pattern, year_at, rest_at in ((_YEAR_TAIL, 2, 1), (_YEAR_HEAD, 1, 2)):
        match = pattern.match(normalised)
        if match:
            years = _years(match.group(year_at))
            rest = match.group(rest_at).strip()
            if years is not None and 1900 <= years.start < 2100 and len(rest.replace(" ", "")) >= 2:
                return rest, years
    return None


def year_of(pub_date: str | None) -> int | None:
    """The year of a catalogue date ("2012-3-1", "1989.10", "2005")."""
    match = re.match(r"\s*((?:19|20)\d\d)", pub_date or "")
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------
# Publishers: the short names people say for them

PUBLISHER_SHORT_NAMES: dict[str, tuple[str, ...]] = {
    # publisher_core (normalised, compact) → what people call it
    "人民文学": ("人文",),
    "外语教学与研究": ("外研社", "外研"),
    "人民邮电": ("人邮",),
    "机械工业": ("机工",),
    "北京大学": ("北大",),
    "中国人民大学": ("人大",),
    "华东师范大学": ("华东师大", "华师大"),
    "北京师范大学": ("北师大",),
    "浙江少年儿童": ("浙少",),
    "中国少年儿童": ("中少",),
    "少年儿童": ("少儿",),
    "上海译文": ("译文",),
    "生活读书新知三联": ("三联",),
    "商务印书馆": ("商务",),
    "中华": ("中华书局",),
}
_SHORT_NAMES = sorted({s for names in PUBLISHER_SHORT_NAMES.values() for s in names}, key=len)
# "三联版", "人文社的", "译文出版社": the short name stands alone for the terms.
_SHORT_NAME_MARK = re.compile(
    rf"({'|'.join(reversed(_SHORT_NAMES))})(?:出版社的|出版社|社的|社|版的|版)"
)


def publisher_aliases(core: str) -> tuple[str, ...]:
    """Short names of a publisher, from its core (publisher_core)."""
    return PUBLISHER_SHORT_NAMES.get(core.replace(" ", ""), ())


def mark_short_names(normalised: str) -> str:
    """A publisher's short name with 版/社 after it stands alone: "三联版乡土中国" →
    "三联 乡土中国"."""
    return _SHORT_NAME_MARK.sub(r" \1 ", normalised).strip()


# ---------------------------------------------------------------------------------------------
# Names: role words after a name

_ROLE_TAIL = re.compile(r"(?:编著|主编|编译|编选|编绘|选编|原著|著作|口述|整理|著|编|译|绘|等)$")
ROLE_WORDS = frozenset(
    ["著", "编", "译", "绘", "等", "编著", "主编", "编译", "编选", "编绘", "选编", "原著", "整理"]
)


def role_tail(compact_run: str) -> int:
    """How many characters at the end of a run are a role word after a name of 2+ characters."""
    match = _ROLE_TAIL.search(compact_run)
    return len(match.group()) if match and match.start() >= 2 else 0


def strip_role(compact_name: str) -> str:
    """A name without the role word after it ("余华著" → "余华"); unchanged when nothing or
    too little would be left."""
    bare = _ROLE_TAIL.sub("", compact_name)
    return bare if len(bare) >= 2 else compact_name
