"""Round three (issue 21): query shapes that no earlier issue named, made from catalogue fields.

Each shape combines what a record holds (title, author, translator, publisher, year, series,
subjects) and writes it the way people do: fields in any order, with or without spaces or
punctuation, names with any bracket, role word or transliteration dot, numbers in another
notation, pinyin mixed into characters, traditional characters. Nothing here is copied from a
test case: every query is built from a record picked at random, and a combination that does not
single out a handful of titles is skipped (it has no right answer).

The shapes have their own seed (SHAPES_SEED): tune on one, report on another
(``benchmarks/search.py --shapes-seed N``).

    .venv/bin/python benchmarks/shapes.py [--per-kind 30] [--seed N] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.eval_queries import (  # noqa: E402
    Book,
    EvalQuery,
    Generator,
    first_author,
    load_books,
    write_queries,
)
from nlp.normalize import compact  # noqa: E402

SHAPES_SEED = 20261206
SHAPE_KINDS = [
    "title_author_any_order",
    "author_written_otherwise",
    "latin_name_any_order",
    "translator_and_title",
    "publisher_short_name",
    "title_and_year",
    "numbers_other_notation",
    "pinyin_mixed_in",
    "subject_and_author",
    "series_and_title_word",
    "traditional_combination",
    "initials_and_author",
    "title_and_decade",
    "original_title_and_author",
]

# What people call the big publishers (the generator's own list, written from common usage).
PUBLISHER_SHORT = {
    "人民文学出版社": ["人文", "人民文学"],
    "生活·读书·新知三联书店": ["三联"],
    "生活.读书.新知三联书店": ["三联"],
    "三联书店": ["三联"],
    "商务印书馆": ["商务"],
    "上海译文出版社": ["译文", "上海译文"],
    "中华书局": ["中华"],
    "译林出版社": ["译林"],
    "外语教学与研究出版社": ["外研社", "外研"],
    "人民邮电出版社": ["人邮"],
    "机械工业出版社": ["机工"],
    "电子工业出版社": ["电子工业"],
    "清华大学出版社": ["清华"],
    "北京大学出版社": ["北大"],
    "中国人民大学出版社": ["人大"],
    "华东师范大学出版社": ["华东师大", "华师大"],
    "浙江少年儿童出版社": ["浙少"],
    "中国少年儿童出版社": ["中少"],
    "作家出版社": ["作家"],
    "上海人民出版社": ["上海人民"],
}
_BRACKETS = [("[", "]"), ("(", ")"), ("（", "）"), ("【", "】"), ("〔", "〕"), ("", " "), ("", "")]
_DOTS = ["·", ".", "•", "・", " ", ""]
_ROLES = ["著", " 著", "编", " 主编", "译", " 译", " 绘"]
_SEPARATORS = ["", " ", "  ", "，", " / ", "、"]
_NOTE = re.compile(r"^\s*[\[\(（【〔［]\s*([\u4e00-\u9fff]{1,5})\s*[\]\)）】〕］]\s*")
_NAME_DOT = re.compile(r"[·•・.．]")
_LATIN_NAME = re.compile(r"[A-Za-z][A-Za-z.\-']*(?:\s+[A-Za-z][A-Za-z.\-']*){1,3}")
_DIGITS = "零一二三四五六七八九"
_TONES = {"a": "āáǎà", "e": "ēéěè", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔù"}


def year_of(pub_date: str) -> int | None:
    match = re.match(r"\s*((?:19|20)\d\d)", pub_date)
    return int(match.group(1)) if match else None


def chinese_number(n: int) -> str:
    """36 → 三十六, 100 → 一百, 2019 → 两千零一十九 (positional, as people say it)."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        digit = n // value % 10
        if digit:
            if zero and out:
                out += "零"
            out += ("两" if digit == 2 and value >= 1000 else _DIGITS[digit]) + unit
            zero = False
        elif out:
            zero = True
    if n % 10:
        out += ("零" if zero else "") + _DIGITS[n % 10]
    return out


def digit_by_digit(n: int) -> str:
    """2019 → 二〇一九 (years are read digit by digit)."""
    return "".join("〇" if d == "0" else _DIGITS[int(d)] for d in str(n))


def with_tone(syllable: str, tone: int) -> str:
    for vowel in "aeoiu":
        if vowel in syllable:
            return syllable.replace(vowel, _TONES[vowel][tone], 1)
    return syllable


class ShapeGenerator(Generator):
    def generate(self, per_kind: int = 30) -> list[EvalQuery]:
        out: list[EvalQuery] = []
        for kind in SHAPE_KINDS:
            out.extend(getattr(self, f"_{kind}")(per_kind))
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def _join(self, parts: list[str]) -> str:
        self.rng.shuffle(parts)
        return self._pick(_SEPARATORS).join(parts)

    def _titles_where(self, test: object) -> set[str]:
        return {b.title_key for b in self.books if test(b)}  # type: ignore[operator]

    def _named(self, book: Book) -> str | None:
        """The first author's name without note and role; None when it is too short."""
        _, bare = first_author(book.author)
        return bare if len(compact(bare)) >= 2 else None

    def _short_title(self, book: Book) -> str | None:
        """The title, or a word of it when the title is long."""
        if 2 <= len(book.title_key) <= 8:
            return book.title
        words = self.words(book.title)
        return self._pick(words) if words else None

    # -- kinds ---------------------------------------------------------------------------------

    def _title_author_any_order(self, n: int) -> list[EvalQuery]:
        """Title (or a word of it) and author: "余华活着", "活着，余华", "[美]胡赛尼 追风筝"."""
        out: list[EvalQuery] = []
        for book in self.sample([b for b in self.books if b.author], n * 4):
            name, part = self._named(book), self._short_title(book)
            if not name or not part:
                continue
            printed = first_author(book.author)[0] if self.rng.random() < 0.3 else name
            key, part_key = compact(name), compact(part)
            sharing = self._titles_where(
                lambda b, k=key, p=part_key: p in b.title_key and k in b.author_key
            )
            if len(sharing) > 3:
                continue
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and key in b.author_key
            )
            query = self._join([printed, part])
            out.append(EvalQuery("title_author_any_order", query, relevant, note=book.title))
            if len(out) == n:
                break
        return out

    def _author_written_otherwise(self, n: int) -> list[EvalQuery]:
        """An author's name with the note in another bracket (or none), another dot, a role."""
        pool = [b for b in self.books if b.author and (_NOTE.match(b.author) or "·" in b.author)]
        out: list[EvalQuery] = []
        for book in self.sample(pool, n * 3):
            name = self._named(book)
            if not name:
                continue
            note = _NOTE.match(book.author)
            written = _NAME_DOT.sub(lambda _m: self._pick(_DOTS), name)
            if note and self.rng.random() < 0.7:
                left, right = self._pick(_BRACKETS)
                written = f"{left}{note.group(1)}{right}{written}"
            if self.rng.random() < 0.5:
                written += self._pick(_ROLES)
            relevant = sorted(self.by_author(compact(name)))
            if not relevant or compact(written) == compact(name):
                continue
            out.append(EvalQuery("author_written_otherwise", written, relevant, note=book.author))
            if len(out) == n:
                break
        return out

    def _latin_name_any_order(self, n: int) -> list[EvalQuery]:
        """A Latin author name with its words in another order and any case."""
        out: list[EvalQuery] = []
        pool = [b for b in self.books if _LATIN_NAME.search(b.author)]
        for book in self.sample(pool, n * 3):
            match = _LATIN_NAME.search(book.author)
            assert match is not None
            words = [w for w in re.split(r"[\s.]+", match.group()) if len(w) >= 2]
            if len(words) < 2:
                continue
            key_words = [compact(w) for w in words]
            relevant = sorted(
                b.record_id for b in self.books if all(w in b.author_key for w in key_words)
            )
            if not relevant or len(relevant) > 30:
                continue
            reordered = words[-1:] + words[:-1]
            case = self._pick(["lower", "upper", "title", "as is"])
            text = " ".join(reordered)
            text = {"lower": text.lower(), "upper": text.upper(), "title": text.title()}.get(
                case, text
            )
            if self.rng.random() < 0.3:
                text = text.replace(" ", ", ", 1)
            out.append(EvalQuery("latin_name_any_order", text, relevant, note=book.author))
            if len(out) == n:
                break
        return out

    def _translator_and_title(self, n: int) -> list[EvalQuery]:
        """A translator with the title or a word of it ("杨绛 堂吉诃德", "堂吉诃德杨绛译")."""
        out: list[EvalQuery] = []
        pool = [b for b in self.books if b.translator]
        for book in self.sample(pool, n * 4):
            translator = re.split(r"\s*[/、,，;；]\s*", book.translator)[0].strip()
            translator = _NOTE.sub("", translator).strip()
            part = self._short_title(book)
            key = compact(translator)
            if len(key) < 2 or not part:
                continue
            part_key = compact(part)
            sharing = {
                b.title_key
                for b in self.books
                if part_key in b.title_key and key in compact(b.translator)
            }
            if len(sharing) > 3:
                continue
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and key in compact(b.translator)
            )
            who = translator + (self._pick(["译", " 译", ""]) if self.rng.random() < 0.5 else "")
            out.append(
                EvalQuery(
                    "translator_and_title", self._join([who, part]), relevant, note=book.title
                )
            )
            if len(out) == n:
                break
        return out

    def _publisher_short_name(self, n: int) -> list[EvalQuery]:
        """A title word and the publisher as people say it ("活着 人文", "三联版乡土中国")."""
        out: list[EvalQuery] = []
        pool = [b for b in self.books if b.publisher.strip() in PUBLISHER_SHORT]
        for book in self.sample(pool, n * 4):
            part = self._short_title(book)
            if not part:
                continue
            publisher = compact(book.publisher)
            part_key = compact(part)
            sharing = {
                b.title_key
                for b in self.books
                if part_key in b.title_key and compact(b.publisher) == publisher
            }
            if len(sharing) > 3:
                continue
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and compact(b.publisher) == publisher
            )
            short = self._pick(PUBLISHER_SHORT[book.publisher.strip()])
            short += self._pick(["", "", "版", "社", "出版社的"])
            query = self._join([short, part])
            out.append(EvalQuery("publisher_short_name", query, relevant, note=book.publisher))
            if len(out) == n:
                break
        return out

    def _title_and_year(self, n: int) -> list[EvalQuery]:
        """A title in several editions, with the year of one ("活着 2012", "二〇一二年版活着")."""
        years: dict[str, set[int]] = defaultdict(set)
        for b in self.books:
            year = year_of(b.pub_date)
            if year:
                years[b.title_key].add(year)
        pool = [b for b in self.books if len(years.get(b.title_key, ())) >= 2]
        out: list[EvalQuery] = []
        for book in self.sample(pool, n * 2):
            year = year_of(book.pub_date)
            part = self._short_title(book)
            if year is None or not part or compact(part) != book.title_key:
                continue
            written = self._pick(
                [str(year), f"{year}年", f"{year}年版", f"{digit_by_digit(year)}年", f"{year}版"]
            )
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and year_of(b.pub_date) == year
            )
            query = self._join([part, written])
            out.append(EvalQuery("title_and_year", query, relevant, note=book.pub_date))
            if len(out) == n:
                break
        return out

    def _numbers_other_notation(self, n: int) -> list[EvalQuery]:
        """A title with a number, the number written another way ("三十六计" → "36计")."""
        arabic = re.compile(r"(?<![\d.])(\d{1,4})(?![\d.])")
        # A Chinese number is one where people would write digits: after 第, or before a measure
        # word ("三十六计", "第二部"), not a numeral inside a word ("花千骨", "三纲六纪").
        chinese = re.compile(
            r"(?<=第)[一二两三四五六七八九十百千]+|[一二两三四五六七八九十百千]+(?=[个部册卷种天年次计"
            r"岁件位条本堂首封招章节课日周月季])"
        )
        out: list[EvalQuery] = []
        pool = [
            b
            for b in self.books
            if 2 <= len(b.title_key) <= 16
            and (arabic.search(b.title) or chinese.search(b.title))
            and re.search("[\u4e00-\u9fff]", b.title)
        ]
        for book in self.sample(pool, n * 6):
            query = None
            found = arabic.search(book.title)
            if found and int(found.group(1)) > 0:
                value = int(found.group(1))
                spoken = digit_by_digit(value) if value >= 1000 else chinese_number(value)
                if self.rng.random() < 0.3:
                    spoken = "".join(chr(ord(c) + 0xFEE0) for c in found.group(1))
                query = book.title[: found.start()] + spoken + book.title[found.end() :]
            else:
                word = chinese.search(book.title)
                value = _chinese_value(word.group()) if word else None
                if word and value is not None and value >= 2:
                    query = book.title[: word.start()] + str(value) + book.title[word.end() :]
            if not query or compact(query) == book.title_key:
                continue
            out.append(
                EvalQuery("numbers_other_notation", query, self.title_group(book), note=book.title)
            )
            if len(out) == n:
                break
        return out

    def _pinyin_mixed_in(self, n: int) -> list[EvalQuery]:
        """Some characters of a title typed as pinyin (with or without tones) or initials."""
        out: list[EvalQuery] = []
        for book in self.sample(self.han_titles(3, 10), n * 2):
            readings = self.pinyin(book.title)
            if len(readings) != len(book.title):
                continue
            count = self.rng.randint(1, max(1, len(book.title) // 2))
            at = sorted(self.rng.sample(range(len(book.title)), count))
            style = self._pick(["syllable", "syllable", "tone", "initial"])
            chars = list(book.title)
            for i in at:
                spoken = readings[i]
                if style == "tone":
                    spoken = with_tone(spoken, self.rng.randrange(4))
                elif style == "initial":
                    spoken = spoken[0]
                chars[i] = spoken
            query = "".join(chars)
            if style == "initial" and len(at) == len(book.title):
                continue
            out.append(EvalQuery("pinyin_mixed_in", query, self.title_group(book), note=book.title))
            if len(out) == n:
                break
        return out

    def _subject_and_author(self, n: int) -> list[EvalQuery]:
        """A subject tag and an author ("科幻 刘慈欣", "东野圭吾推理"): any book of theirs on it."""
        out: list[EvalQuery] = []
        by_author_count: dict[str, int] = defaultdict(int)
        for b in self.books:
            by_author_count[compact(first_author(b.author)[1])] += 1
        pool = [b for b in self.books if b.tags and b.author]
        for book in self.sample(pool, n * 4):
            name = self._named(book)
            if not name or by_author_count[compact(name)] < 3:
                continue
            tag = self._pick(book.tags)
            key = compact(name)
            relevant = sorted(
                b.record_id for b in self.books if key in b.author_key and tag in b.tags
            )
            if not 1 <= len(relevant) <= 40:
                continue
            out.append(EvalQuery("subject_and_author", self._join([name, tag]), relevant, note=tag))
            if len(out) == n:
                break
        return out

    def _series_and_title_word(self, n: int) -> list[EvalQuery]:
        """A series name and a word of the title ("哈利波特 密室", "新经典文库 百年孤独")."""
        out: list[EvalQuery] = []
        pool = [b for b in self.books if len(compact(b.series)) >= 2]
        for book in self.sample(pool, n * 4):
            words = self.words(book.title)
            if not words:
                continue
            word = self._pick(words)
            series = compact(book.series)
            if word in series:
                continue
            relevant = sorted(
                b.record_id
                for b in self.books
                if compact(b.series) == series and word in b.title_key
            )
            if not 1 <= len(relevant) <= 5:
                continue
            query = self._join([book.series, word])
            out.append(EvalQuery("series_and_title_word", query, relevant, note=book.title))
            if len(out) == n:
                break
        return out

    def _traditional_combination(self, n: int) -> list[EvalQuery]:
        """Title and author, both in traditional characters, in any order."""
        made = self._title_author_any_order(n * 2)
        out: list[EvalQuery] = []
        for item in made:
            converted = self.traditional(item.query)
            if converted == item.query:
                continue
            out.append(
                EvalQuery("traditional_combination", converted, item.relevant, note=item.note)
            )
            if len(out) == n:
                break
        return out

    def _initials_and_author(self, n: int) -> list[EvalQuery]:
        """The title's pinyin initials and the author ("jyzhd 东野圭吾", "曹雪芹hlm")."""
        out: list[EvalQuery] = []
        for book in self.sample([b for b in self.han_titles(3, 10) if b.author], n * 3):
            name = self._named(book)
            if not name:
                continue
            initials = "".join(p[0] for p in self.pinyin(book.title))
            key = compact(name)
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and key in b.author_key
            )
            query = self._join([name, initials])
            out.append(EvalQuery("initials_and_author", query, relevant, note=book.title))
            if len(out) == n:
                break
        return out

    def _title_and_decade(self, n: int) -> list[EvalQuery]:
        """A title held in editions of several decades, with the decade of one ("红楼梦 80年代",
        "九十年代的围城", "2000年代 活着")."""
        decades: dict[str, set[int]] = defaultdict(set)
        for b in self.books:
            year = year_of(b.pub_date)
            if year:
                decades[b.title_key].add(year // 10 * 10)
        pool = [b for b in self.books if len(decades.get(b.title_key, ())) >= 2]
        out: list[EvalQuery] = []
        for book in self.sample(pool, n * 2):
            year = year_of(book.pub_date)
            if year is None or not 2 <= len(book.title_key) <= 12:
                continue
            decade = year // 10 * 10
            forms = [
                f"{decade}年代",
                f"{decade % 100:02d}年代",
                f"{chinese_number(decade % 100)}年代",
            ]
            if decade < 2000:
                forms.append(f"{decade % 100}年代的")
            written = self._pick(forms)
            if written.startswith("00") or written.startswith("零"):
                written = f"{decade}年代"
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and (year_of(b.pub_date) or 0) // 10 * 10 == decade
            )
            parts = [written, book.title] if written.endswith("的") else [book.title, written]
            query = self._pick([" ", ""]).join(parts)
            out.append(EvalQuery("title_and_decade", query, relevant, note=book.pub_date))
            if len(out) == n:
                break
        return out

    def _original_title_and_author(self, n: int) -> list[EvalQuery]:
        """The original title with the author's Chinese name ("The Kite Runner 胡赛尼")."""
        pool = [b for b in self.books if b.author and re.search("[A-Za-z]{3}", b.original_title)]
        out: list[EvalQuery] = []
        for book in self.sample(pool, n * 3):
            name = self._named(book)
            if not name or not re.search("[\u4e00-\u9fff]", name):
                continue
            surname = _NAME_DOT.split(name)[-1].strip()
            who = surname if len(surname) >= 2 and self.rng.random() < 0.5 else name
            key, original = compact(who), compact(book.original_title)
            relevant = sorted(
                b.record_id
                for b in self.books
                if compact(b.original_title) == original and key in b.author_key
            )
            if not relevant:
                continue
            text = self._pick([book.original_title, book.original_title.lower()])
            out.append(
                EvalQuery(
                    "original_title_and_author", self._join([text, who]), relevant, note=book.title
                )
            )
            if len(out) == n:
                break
        return out


def _chinese_value(word: str) -> int | None:
    """三十六 → 36, 一百 → 100, 两千 → 2000; None for what is not a plain number."""
    digits = {c: i for i, c in enumerate(_DIGITS)} | {"两": 2, "〇": 0}
    units = {"十": 10, "百": 100, "千": 1000}
    total, current = 0, None
    for ch in word:
        if ch in digits:
            if current is not None:
                return None
            current = digits[ch]
        elif ch in units:
            total += (1 if current is None else current) * units[ch]
            current = None
        else:
            return None
    return total + (current or 0)


def build_shapes(per_kind: int = 30, seed: int = SHAPES_SEED) -> list[EvalQuery]:
    return ShapeGenerator(load_books(), seed).generate(per_kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=30)
    parser.add_argument("--seed", type=int, default=SHAPES_SEED)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    queries = build_shapes(args.per_kind, args.seed)
    write_queries(queries, args.out)


if __name__ == "__main__":
    main()
