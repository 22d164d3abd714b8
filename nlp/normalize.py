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
