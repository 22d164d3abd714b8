"""The search evaluation set: queries generated from the shared catalogue plus hand-written ones.

Every query comes with its kind and the record_ids that count as a correct answer (the relevant
set). Generation is deterministic (fixed seed, sorted inputs), so two runs give the same set.

Relevant sets: for a title-based query, every record whose title normalises to the same string
(editions, traditional/simplified spellings); for an author, every record by that author; for an
ISBN, call number or series, every record carrying it; for a CLC class, every record in it or its
subclasses. Grouping uses nlp.normalize.compact (NFKC, t2s, case, punctuation): "解憂雜貨店" and
"解忧杂货店" are the same title whoever searches for it.

Generated kinds pick their sources at random but fairly: partial titles use a fragment found in
at most three distinct titles (a fragment shared by hundreds of titles has no right answer), a
title word plus publisher is kept when at most five titles share the pair,
initials use titles of four or more characters (students abbreviate long titles; "hlm"-style
three-letter ones are among the hand-written queries), homophones replace one character with a
different common character read the same way.

    .venv/bin/python benchmarks/eval_queries.py [--per-kind 30] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nlp.normalize import compact, normalize  # noqa: E402  (needs the repo on sys.path when run directly)
from sandbox.shared_data import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
CATALOGUES = [SHARED / "catalogue" / "books_6k.csv", SHARED / "catalogue" / "books_75k.csv"]
HANDWRITTEN = Path(__file__).with_name("eval") / "handwritten.jsonl"
SEED = 20251127
PER_KIND = 30

KINDS = [
    "exact_title",
    "partial_title",
    "book_marks",
    "author",
    "author_no_prefix",
    "author_plus_title_word",
    "title_plus_publisher",
    "traditional",
    "fullwidth_noise",
    "pinyin_full",
    "pinyin_spaced",
    "pinyin_initials",
    "homophone",
    "isbn13",
    "isbn_hyphen",
    "isbn10",
    "isbn_fullwidth",
    "original_title",
    "series",
    "call_number",
    "clc_class",
    # Round two (issue 12): subjects, summaries, forgiving pinyin, near misses.
    "subject",
    "summary_phrase",
    "pinyin_tones",
    "pinyin_slip",
    "author_pinyin",
    "author_pinyin_title",
    "surname_pinyin_title",
    "title_char_missing",
    "title_char_added",
    "title_chars_swapped",
    "series_volume",
    "isbn_typo",
    "misspelt_title",
]
FIRST_ROUND = KINDS[: KINDS.index("subject")]
# Kinds judged by precision@5 (every hit must be relevant), not by one relevant hit in the top 5.
PRECISION_KINDS = frozenset({"subject"})
# Kinds where a "did you mean" suggestion counts as finding the book when nothing matched.
SUGGESTION_KINDS = frozenset({"isbn_typo", "misspelt_title"})

_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_PREFIX = re.compile(r"^\s*[\[\(（【〔［][^\]\)）】〕］]{1,6}[\]\)）】〕］]\s*")
_ROLE = re.compile(r"\s*(?:编著|主编|著|编|译|等)$")
_PUBLISHER_TAIL = re.compile(
    r"(?:出版(?:有限责任|股份有限|有限)?(?:公司|集团|社)|有限(?:责任)?公司|书局|书店)$"
)
_CLC_PREFIX = re.compile(r"^(?:[A-Z]|T[A-Z])\d+(?:\.\d+)?$")


@dataclass
class Book:
    record_id: str
    title: str
    author: str
    publisher: str
    isbn: str
    series: str
    original_title: str
    clc: str
    call_number: str
    tags: list[str] = field(default_factory=list)
    summary: str = ""
    title_key: str = ""
    author_key: str = ""
    translator: str = ""
    pub_date: str = ""


@dataclass
class EvalQuery:
    kind: str
    query: str
    relevant: list[str]
    source: str = "generated"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "query": self.query,
            "relevant": self.relevant,
            "source": self.source,
            "note": self.note,
        }


def load_books(paths: Iterable[Path] = CATALOGUES) -> list[Book]:
    books = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                book = Book(
                    record_id=row["record_id"],
                    title=row["title"].strip(),
                    author=(row.get("author") or "").strip(),
                    publisher=(row.get("publisher") or "").strip(),
                    isbn=(row.get("isbn") or "").strip(),
                    series=(row.get("series") or "").strip(),
                    original_title=(row.get("original_title") or "").strip(),
                    clc=(row.get("clc") or "").strip(),
                    call_number=(row.get("call_number") or "").strip(),
                    tags=[t.strip() for t in (row.get("tags") or "").split(";") if t.strip()],
                    summary=(row.get("summary") or "").strip(),
                    translator=(row.get("translator") or "").strip(),
                    pub_date=(row.get("pub_date") or "").strip(),
                )
                book.title_key = compact(book.title)
                book.author_key = compact(book.author)
                books.append(book)
    return books


def first_author(statement: str) -> tuple[str, str]:
    """(name as printed, name without the nationality note) of the first author."""
    printed = _ROLE.sub("", statement.split(" / ")[0].split("/")[0].strip()).strip()
    return printed, _PREFIX.sub("", printed).strip()


def publisher_short(publisher: str) -> str:
    core = _PUBLISHER_TAIL.sub("", publisher.strip())
    return core[:4] if len(core) >= 2 else ""


def isbn10_of(isbn13: str) -> str | None:
    if not (len(isbn13) == 13 and isbn13.startswith("978")):
        return None
    core = isbn13[3:12]
    total = sum((10 - i) * int(c) for i, c in enumerate(core))
    check = (11 - total % 11) % 11
    return core + ("X" if check == 10 else str(check))


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


class Generator:
    def __init__(self, books: list[Book], seed: int = SEED) -> None:
        self.books = books
        self.rng = random.Random(seed)
        self.by_title: dict[str, set[str]] = defaultdict(set)
        for book in books:
            self.by_title[book.title_key].add(book.record_id)
        self.titles = sorted(self.by_title)
        self._s2t: Any = None
        self._pinyin: Any = None
        self._jieba: Any = None
        self._homophones: dict[str, list[str]] | None = None
        self._spoken: dict[str, tuple[str, str, str]] | None = None
        self._by_id = {book.record_id: book for book in books}

    # -- helpers -------------------------------------------------------------------------------

    def sample(self, pool: list[Book], n: int) -> list[Book]:
        pool = sorted(pool, key=lambda b: b.record_id)
        return self.rng.sample(pool, min(n, len(pool)))

    def title_group(self, book: Book) -> list[str]:
        return sorted(self.by_title[book.title_key])

    def by_author(self, name_key: str) -> set[str]:
        return {b.record_id for b in self.books if name_key and name_key in b.author_key}

    def words(self, title: str) -> list[str]:
        if self._jieba is None:
            import jieba

            self._jieba = jieba
        return sorted({w for w in self._jieba.cut(title) if len(w) >= 2 and _HAN.match(w)})

    def pinyin(self, title: str) -> list[str]:
        if self._pinyin is None:
            from pypinyin import lazy_pinyin

            self._pinyin = lazy_pinyin
        result: list[str] = self._pinyin(title)
        return result

    def traditional(self, text: str) -> str:
        if self._s2t is None:
            import opencc

            self._s2t = opencc.OpenCC("s2t")
        result: str = self._s2t.convert(text)
        return result

    def homophones(self) -> dict[str, list[str]]:
        """Toneless reading → common title characters with only that reading."""
        if self._homophones is None:
            from pypinyin import Style, pinyin

            counts: dict[str, int] = defaultdict(int)
            for book in self.books:
                for ch in book.title_key:
                    if "\u4e00" <= ch <= "\u9fff":
                        counts[ch] += 1
            table: dict[str, list[str]] = defaultdict(list)
            for ch in sorted(counts):
                if counts[ch] < 20:
                    continue  # a slip produces a common character
                readings = pinyin(ch, style=Style.NORMAL, heteronym=True)[0]
                if len(set(readings)) == 1:
                    table[readings[0]].append(ch)
            self._homophones = dict(table)
        return self._homophones

    def han_titles(self, low: int, high: int) -> list[Book]:
        return [b for b in self.books if _HAN.match(b.title) and low <= len(b.title) <= high]

    # -- kinds ---------------------------------------------------------------------------------

    def generate(self, per_kind: int = PER_KIND) -> list[EvalQuery]:
        out: list[EvalQuery] = []
        for kind in KINDS:
            made = getattr(self, f"_{kind}")(per_kind)
            out.extend(made)
        return out

    def _titled(self, kind: str, n: int, make: Any, pool: list[Book] | None = None) -> list[Any]:
        pool = pool if pool is not None else [b for b in self.books if 0 < len(b.title_key) <= 40]
        out = []
        for book in self.sample(pool, n * 3):
            query = make(book)
            if query:
                out.append(EvalQuery(kind, query, self.title_group(book), note=book.title))
            if len(out) == n:
                break
        return out

    def _exact_title(self, n: int) -> list[EvalQuery]:
        return self._titled("exact_title", n, lambda b: b.title)

    def _book_marks(self, n: int) -> list[EvalQuery]:
        return self._titled("book_marks", n, lambda b: f"《{b.title}》")

    def _partial_title(self, n: int) -> list[EvalQuery]:
        def make(book: Book) -> str | None:
            # Fragments of one run of characters: nobody types across the title's punctuation.
            runs = re.findall(r"[\u4e00-\u9fff]+", normalize(book.title))
            spans = sorted(
                {
                    run[i : i + size]
                    for run in runs
                    for size in (2, 3, 4)
                    for i in range(len(run) - size + 1)
                    if run[i : i + size] != book.title_key
                }
            )
            self.rng.shuffle(spans)
            for fragment in spans[:12]:
                holders = 0
                for title in self.titles:
                    if fragment in title:
                        holders += 1
                        if holders > 3:
                            break
                if holders <= 3:
                    return fragment
            return None

        pool = [b for b in self.books if len(b.title_key) >= 5 and _HAN.search(b.title_key)]
        return self._titled("partial_title", n, make, pool)

    def _traditional(self, n: int) -> list[EvalQuery]:
        def make(book: Book) -> str | None:
            converted = self.traditional(book.title)
            return converted if converted != book.title else None

        return self._titled("traditional", n, make)

    def _fullwidth_noise(self, n: int) -> list[EvalQuery]:
        noise = [" ", "，", "！", "·", "  ", "、", "。"]

        def make(book: Book) -> str | None:
            text = fullwidth(book.title)
            if len(text) >= 2:
                at = self.rng.randrange(1, len(text))
                text = text[:at] + self.rng.choice(noise) + text[at:]
            return f" {text}{self.rng.choice(noise)} "

        return self._titled("fullwidth_noise", n, make)

    def _pinyin_full(self, n: int) -> list[EvalQuery]:
        return self._titled(
            "pinyin_full", n, lambda b: "".join(self.pinyin(b.title)), self.han_titles(2, 12)
        )

    def _pinyin_spaced(self, n: int) -> list[EvalQuery]:
        return self._titled(
            "pinyin_spaced", n, lambda b: " ".join(self.pinyin(b.title)), self.han_titles(2, 12)
        )

    def _pinyin_initials(self, n: int) -> list[EvalQuery]:
        return self._titled(
            "pinyin_initials",
            n,
            lambda b: "".join(p[0] for p in self.pinyin(b.title)),
            self.han_titles(4, 12),
        )

    def _homophone(self, n: int) -> list[EvalQuery]:
        table = self.homophones()

        def make(book: Book) -> str | None:
            readings = self.pinyin(book.title)
            positions = list(range(len(book.title)))
            self.rng.shuffle(positions)
            for at in positions:
                others = [c for c in table.get(readings[at], []) if c != book.title[at]]
                if not others:
                    continue
                query = book.title[:at] + self.rng.choice(others) + book.title[at + 1 :]
                if compact(query) not in self.by_title:
                    return query
            return None

        return self._titled("homophone", n, make, self.han_titles(3, 10))

    def _author_queries(self, kind: str, n: int, with_prefix_only: bool) -> list[EvalQuery]:
        pool = [b for b in self.books if b.author]
        if with_prefix_only:
            pool = [b for b in pool if _PREFIX.match(b.author)]
        out = []
        for book in self.sample(pool, n * 3):
            printed, bare = first_author(book.author)
            key = compact(bare)
            if len(key) < 2:
                continue
            query = bare if with_prefix_only else printed
            out.append(EvalQuery(kind, query, sorted(self.by_author(key)), note=book.author))
            if len(out) == n:
                break
        return out

    def _author(self, n: int) -> list[EvalQuery]:
        return self._author_queries("author", n, with_prefix_only=False)

    def _author_no_prefix(self, n: int) -> list[EvalQuery]:
        return self._author_queries("author_no_prefix", n, with_prefix_only=True)

    def _author_plus_title_word(self, n: int) -> list[EvalQuery]:
        out = []
        for book in self.sample([b for b in self.books if b.author], n * 4):
            _, bare = first_author(book.author)
            key = compact(bare)
            words = self.words(book.title)
            if len(key) < 2 or not words:
                continue
            word = self.rng.choice(words)
            relevant = sorted(
                r
                for r in self.by_title[book.title_key]
                if r in self.by_author(key) or r == book.record_id
            )
            out.append(
                EvalQuery("author_plus_title_word", f"{bare} {word}", relevant, note=book.title)
            )
            if len(out) == n:
                break
        return out

    def _title_plus_publisher(self, n: int) -> list[EvalQuery]:
        out = []
        for book in self.sample([b for b in self.books if b.publisher], n * 4):
            short = publisher_short(book.publisher)
            words = self.words(book.title)
            if not short or not words:
                continue
            word = self.rng.choice(words)
            # Skip pairs shared by more than five titles ("研究 北京大学"): no right answer.
            short_key = compact(short)
            sharing = {
                b.title_key
                for b in self.books
                if word in b.title_key and compact(b.publisher).startswith(short_key)
            }
            if len(sharing) > 5:
                continue
            publisher_key = compact(book.publisher)
            relevant = sorted(
                b.record_id
                for b in self.books
                if b.title_key == book.title_key and compact(b.publisher) == publisher_key
            )
            out.append(
                EvalQuery(
                    "title_plus_publisher",
                    f"{word} {short}",
                    relevant,
                    note=f"{book.title} / {book.publisher}",
                )
            )
            if len(out) == n:
                break
        return out

    def _isbn(self, kind: str, n: int, make: Any) -> list[EvalQuery]:
        by_isbn: dict[str, list[str]] = defaultdict(list)
        for book in self.books:
            if book.isbn:
                by_isbn[book.isbn].append(book.record_id)
        out = []
        for book in self.sample([b for b in self.books if len(b.isbn) == 13], n * 2):
            query = make(book.isbn)
            if query:
                out.append(EvalQuery(kind, query, sorted(by_isbn[book.isbn]), note=book.title))
            if len(out) == n:
                break
        return out

    def _isbn13(self, n: int) -> list[EvalQuery]:
        return self._isbn("isbn13", n, lambda i: i)

    def _isbn_hyphen(self, n: int) -> list[EvalQuery]:
        return self._isbn("isbn_hyphen", n, lambda i: f"{i[:3]}-{i[3]}-{i[4:8]}-{i[8:12]}-{i[12]}")

    def _isbn10(self, n: int) -> list[EvalQuery]:
        return self._isbn("isbn10", n, isbn10_of)

    def _isbn_fullwidth(self, n: int) -> list[EvalQuery]:
        forms = [
            lambda i: fullwidth(i),
            lambda i: "ISBN " + fullwidth(f"{i[:3]}-{i[3:]}"),
            lambda i: fullwidth(f"ISBN{i}"),
        ]
        return self._isbn("isbn_fullwidth", n, lambda i: self.rng.choice(forms)(i))

    def _original_title(self, n: int) -> list[EvalQuery]:
        pool = [
            b for b in self.books if b.original_title and re.search("[A-Za-z]{3}", b.original_title)
        ]
        out = []
        for book in self.sample(pool, n):
            key = compact(book.original_title)
            relevant = sorted(
                b.record_id
                for b in self.books
                if compact(b.original_title) == key or b.title_key == key
            )
            case = self.rng.choice(["as is", "lower", "upper"])
            query = {
                "as is": book.original_title,
                "lower": book.original_title.lower(),
                "upper": book.original_title.upper(),
            }[case]
            out.append(EvalQuery("original_title", query, relevant, note=book.title))
        return out

    def _series(self, n: int) -> list[EvalQuery]:
        by_series: dict[str, list[str]] = defaultdict(list)
        for book in self.books:
            if book.series:
                by_series[compact(book.series)].append(book.record_id)
        pool = [b for b in self.books if len(compact(b.series)) >= 2]
        return [
            EvalQuery("series", b.series, sorted(by_series[compact(b.series)]), note=b.title)
            for b in self.sample(pool, n)
        ]

    def _call_number(self, n: int) -> list[EvalQuery]:
        by_number: dict[str, list[str]] = defaultdict(list)
        for book in self.books:
            if book.call_number:
                by_number[book.call_number.upper()].append(book.record_id)
        pool = [b for b in self.books if b.call_number]
        return [
            EvalQuery(
                "call_number", b.call_number, sorted(by_number[b.call_number.upper()]), note=b.title
            )
            for b in self.sample(pool, n)
        ]

    def _clc_class(self, n: int) -> list[EvalQuery]:
        pool = [b for b in self.books if b.clc]
        out = []
        for book in self.sample(pool, n):
            clc = book.clc.upper()
            prefixes = [clc[:i] for i in range(1, len(clc) + 1) if _CLC_PREFIX.match(clc[:i])]
            if not prefixes:
                continue
            klass = self.rng.choice(prefixes)
            relevant = sorted(b.record_id for b in pool if b.clc.upper().startswith(klass))
            out.append(EvalQuery("clc_class", klass, relevant, note=book.clc))
        return out

    # -- round two -----------------------------------------------------------------------------

    def _subject(self, n: int) -> list[EvalQuery]:
        """A tag, bare or in the wrappers students type; relevant: every book with that tag."""
        by_tag: dict[str, set[str]] = defaultdict(set)
        for book in self.books:
            for tag in book.tags:
                by_tag[tag].add(book.record_id)
        tags = sorted(t for t, ids in by_tag.items() if len(ids) >= 5 and _HAN.match(t))
        wrappers = ["{}", "有没有{}的书", "关于{}的书", "我想借{}的书", "帮我找一下{}", "{}"]
        out = []
        for _ in range(n):
            tag = self.rng.choice(tags)
            query = self.rng.choice(wrappers).format(tag)
            out.append(EvalQuery("subject", query, sorted(by_tag[tag]), note=tag))
        return out

    def _summary_phrase(self, n: int) -> list[EvalQuery]:
        """Six to ten characters of one clause of a summary, found in at most two summaries."""
        pool = [b for b in self.books if len(b.summary) >= 30]
        keyed = [(b, compact(b.summary)) for b in pool]
        out = []
        for book in self.sample(pool, n * 3):
            clauses = [c for c in re.findall(r"[\u4e00-\u9fff]{6,}", book.summary)]
            if not clauses:
                continue
            clause = self.rng.choice(clauses)
            size = min(len(clause), self.rng.randint(6, 10))
            at = self.rng.randrange(0, len(clause) - size + 1)
            phrase = clause[at : at + size]
            holders = {b.record_id for b, text in keyed if phrase in text}
            if len(holders) > 2:
                continue
            relevant = set(self.title_group(book)) | holders
            out.append(EvalQuery("summary_phrase", phrase, sorted(relevant), note=book.title))
            if len(out) == n:
                break
        return out

    def _pinyin_tones(self, n: int) -> list[EvalQuery]:
        from pypinyin import Style, lazy_pinyin

        def make(book: Book) -> str:
            toned = lazy_pinyin(book.title, style=Style.TONE3, neutral_tone_with_five=True)
            return "".join(toned) if self.rng.random() < 0.7 else " ".join(toned)

        return self._titled("pinyin_tones", n, make, self.han_titles(2, 10))

    def _pinyin_slip(self, n: int) -> list[EvalQuery]:
        """Full pinyin with one of the usual slips (z/zh, n/l, an/ang, ...) in one syllable."""
        slips = [
            (r"^zh", "z"), (r"^ch", "c"), (r"^sh", "s"), (r"^z(?!h)", "zh"), (r"^c(?!h)", "ch"),
            (r"^s(?!h)", "sh"), (r"^n", "l"), (r"^l", "n"), (r"^f", "h"), (r"^h", "f"),
            (r"^r", "l"), (r"ang$", "an"), (r"an$", "ang"), (r"eng$", "en"), (r"en$", "eng"),
            (r"ing$", "in"), (r"in$", "ing"),
        ]  # fmt: skip

        def make(book: Book) -> str | None:
            syllables = self.pinyin(book.title)
            order = list(range(len(syllables)))
            self.rng.shuffle(order)
            for at in order:
                options = [(a, b) for a, b in slips if re.search(a, syllables[at])]
                if not options:
                    continue
                pattern, repl = self.rng.choice(options)
                changed = list(syllables)
                changed[at] = re.sub(pattern, repl, syllables[at])
                return "".join(changed)
            return None

        return self._titled("pinyin_slip", n, make, self.han_titles(3, 10))

    def _chinese_authors(self, n: int) -> list[tuple[Book, str]]:
        """(book, name) for books whose first author is a 2-4 character Chinese name."""
        spoken = self.spoken_names()
        pool = [b for b in self.books if b.record_id in spoken]
        return [(b, first_author(b.author)[1]) for b in self.sample(pool, n)]

    def spoken_names(self) -> dict[str, tuple[str, str, str]]:
        """record_id → (surname, given name, initials) in pinyin of 2-4 character Chinese names."""
        if self._spoken is None:
            self._spoken = {}
            for book in self.books:
                _, bare = first_author(book.author)
                if _HAN.match(bare) and 2 <= len(bare) <= 4:
                    surname, given = self._name_pinyin(bare)
                    initials = "".join(p[0] for p in self.pinyin(bare))
                    self._spoken[book.record_id] = (surname, given, initials)
        return self._spoken

    def _answers(self, word: str, test: Any) -> int:
        """How many distinct titles by authors passing ``test`` contain ``word``."""
        return len(
            {self._by_id[r].title_key for r, spoken in self.spoken_names().items() if test(spoken)}
            & {b.title_key for b in self.books if word in b.title_key}
        )

    def _name_pinyin(self, name: str) -> tuple[str, str]:
        cut = 2 if len(name) == 4 else 1
        return "".join(self.pinyin(name[:cut])), "".join(self.pinyin(name[cut:]))

    def _author_pinyin(self, n: int) -> list[EvalQuery]:
        """An author in full pinyin, spaced pinyin or (three-character names) initials; initials
        only when at most three authors share them (a query with a right answer)."""
        sharing: dict[str, set[str]] = defaultdict(set)
        for record_id, (_, _, initials) in self.spoken_names().items():
            sharing[initials].add(first_author(self._by_id[record_id].author)[1])
        out = []
        for _, name in self._chinese_authors(n * 2):
            surname, given = self._name_pinyin(name)
            forms = [surname + given, f"{surname} {given}"]
            initials = "".join(p[0] for p in self.pinyin(name))
            if len(name) == 3 and len(sharing[initials]) <= 3:
                forms.append(initials)
            query = self.rng.choice(forms)
            out.append(
                EvalQuery("author_pinyin", query, sorted(self.by_author(compact(name))), note=name)
            )
            if len(out) == n:
                break
        return out

    def _pinyin_author_with_word(self, kind: str, n: int, surname_only: bool) -> list[EvalQuery]:
        out = []
        for book, name in self._chinese_authors(n * 4):
            words = self.words(book.title)
            if not words:
                continue
            surname, given = self._name_pinyin(name)
            who = surname if surname_only else surname + given
            word = self.rng.choice(words)
            # Skip pairs shared by more than three titles ("wang 科学"): no right answer.
            if surname_only:
                shared = self._answers(word, lambda s, who=who: s[0] == who)
            else:
                shared = self._answers(word, lambda s, who=who: s[0] + s[1] == who)
            if shared > 3:
                continue
            relevant = sorted(
                r for r in self.by_title[book.title_key] if r in self.by_author(compact(name))
            )
            out.append(EvalQuery(kind, f"{who} {word}", relevant, note=f"{name} {book.title}"))
            if len(out) == n:
                break
        return out

    def _author_pinyin_title(self, n: int) -> list[EvalQuery]:
        return self._pinyin_author_with_word("author_pinyin_title", n, surname_only=False)

    def _surname_pinyin_title(self, n: int) -> list[EvalQuery]:
        return self._pinyin_author_with_word("surname_pinyin_title", n, surname_only=True)

    def _near_miss(self, kind: str, n: int, make: Any) -> list[EvalQuery]:
        def checked(book: Book) -> str | None:
            query: str | None = make(book)
            return query if query and compact(query) not in self.by_title else None

        return self._titled(kind, n, checked, self.han_titles(4, 10))

    def _title_char_missing(self, n: int) -> list[EvalQuery]:
        def make(book: Book) -> str:
            at = self.rng.randrange(len(book.title))
            return book.title[:at] + book.title[at + 1 :]

        return self._near_miss("title_char_missing", n, make)

    def _title_char_added(self, n: int) -> list[EvalQuery]:
        common = "的一是了不在人有我他这中大来上个们到说和"

        def make(book: Book) -> str:
            at = self.rng.randrange(1, len(book.title))
            return book.title[:at] + self.rng.choice(common) + book.title[at:]

        return self._near_miss("title_char_added", n, make)

    def _title_chars_swapped(self, n: int) -> list[EvalQuery]:
        def make(book: Book) -> str | None:
            at = self.rng.randrange(len(book.title) - 1)
            a, b = book.title[at], book.title[at + 1]
            if a == b:
                return None
            return book.title[:at] + b + a + book.title[at + 2 :]

        return self._near_miss("title_chars_swapped", n, make)

    def _series_volume(self, n: int) -> list[EvalQuery]:
        """Numbered volumes ("盗墓笔记3"): the series name with the volume said another way."""
        numerals = "一二三四五六七八九"
        roman = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"]
        volumes: dict[str, dict[int, Book]] = defaultdict(dict)
        for book in self.books:
            match = re.fullmatch(r"([\u4e00-\u9fff]{2,})([1-9])", book.title_key)
            if match:
                volumes[match.group(1)][int(match.group(2))] = book
        series = sorted(base for base, by_number in volumes.items() if len(by_number) >= 2)
        out = []
        for base in self.rng.sample(series, min(n, len(series))):
            number, book = self.rng.choice(sorted(volumes[base].items()))
            query = self.rng.choice(
                [
                    f"{base}{number}",
                    f"{base}第{numerals[number - 1]}册",
                    f"{base}{numerals[number - 1]}",
                    f"{base} {roman[number - 1]}",
                    f"{base}第{number}卷",
                ]
            )
            out.append(EvalQuery("series_volume", query, self.title_group(book), note=book.title))
        return out

    def _isbn_typo(self, n: int) -> list[EvalQuery]:
        """An ISBN-13 with one digit mistyped (so its check digit fails)."""
        from stdnum import isbn

        def make(code: str) -> str | None:
            for _ in range(10):
                at = self.rng.randrange(3, 13)
                typo = code[:at] + str(self.rng.randrange(10)) + code[at + 1 :]
                if typo != code and not isbn.is_valid(typo):
                    return typo
            return None

        return self._isbn("isbn_typo", n, make)

    def _misspelt_title(self, n: int) -> list[EvalQuery]:
        """A long title with two characters replaced by others read differently."""
        common = "的一是了不在人有我他这中大来上个们到说和"

        def make(book: Book) -> str:
            chars = list(book.title)
            for at in self.rng.sample(range(len(chars)), 2):
                chars[at] = self.rng.choice([c for c in common if c != chars[at]])
            return "".join(chars)

        pool = self.han_titles(7, 14)
        return self._titled(
            "misspelt_title",
            n,
            lambda b: q if compact(q := make(b)) not in self.by_title else None,
            pool,
        )

    # -- hand-written --------------------------------------------------------------------------

    def resolve(self, spec: dict[str, Any]) -> set[str]:
        """The relevant set of a hand-written query's ``expect``."""
        candidates: set[str] | None = None

        def narrow(ids: set[str]) -> None:
            nonlocal candidates
            candidates = ids if candidates is None else candidates & ids

        if "title" in spec:
            narrow(set(self.by_title.get(compact(spec["title"]), set())))
        if "author" in spec:
            narrow(self.by_author(compact(spec["author"])))
        if "publisher" in spec:
            key = compact(spec["publisher"])
            narrow({b.record_id for b in self.books if key in compact(b.publisher)})
        if "isbn" in spec:
            narrow({b.record_id for b in self.books if b.isbn == spec["isbn"]})
        if "series" in spec:
            key = compact(spec["series"])
            narrow({b.record_id for b in self.books if compact(b.series) == key})
        if "original_title" in spec:
            key = compact(spec["original_title"])
            narrow(
                {
                    b.record_id
                    for b in self.books
                    if compact(b.original_title) == key or b.title_key == key
                }
            )
        if "call_number" in spec:
            value = spec["call_number"].upper()
            narrow({b.record_id for b in self.books if b.call_number.upper() == value})
        if "clc" in spec:
            value = spec["clc"].upper()
            narrow({b.record_id for b in self.books if b.clc.upper().startswith(value)})
        return candidates or set()

    def handwritten(self, path: Path = HANDWRITTEN) -> list[EvalQuery]:
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            item = json.loads(line)
            relevant = self.resolve(item["expect"])
            if not relevant:
                raise ValueError(f"hand-written query has no relevant record: {item}")
            out.append(
                EvalQuery(item["kind"], item["query"], sorted(relevant), source="handwritten")
            )
        return out


def build_eval_set(per_kind: int = PER_KIND, seed: int = SEED) -> list[EvalQuery]:
    generator = Generator(load_books(), seed)
    queries = generator.generate(per_kind) + generator.handwritten()
    for query in queries:
        if "\n" in query.query or "\r" in query.query:
            raise ValueError(f"query with a line break: {query.query!r}")
    return queries


def write_queries(queries: list[EvalQuery], out: Path | None) -> None:
    """One JSON line per query, to ``out`` or stdout; the count per kind on stderr."""
    lines = [json.dumps(q.as_json(), ensure_ascii=False) for q in queries]
    if out:
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for q in queries:
        counts[q.kind] += 1
    print(f"{len(queries)} queries: {dict(counts)}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=PER_KIND)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    queries = build_eval_set(args.per_kind, args.seed)
    write_queries(queries, args.out)


if __name__ == "__main__":
    main()
