"""Catalogue search: recognisers first (ISBN, call number, CLC class), then free text.

Free text is answered from two sources, both read with indexed lookups only:

- whole-string keys (``search_keys``): exact and prefix range scans on the normalised title, its
  pinyin and initials, author names, series and original title, plus the pinyin of a Chinese
  query against title pinyin (homophone slips: 解优杂货店 → jieyouzahuodian → 解忧杂货店);
- the inverted index (``search_terms``): the query's character bigrams and Latin words. Bigrams
  inside one jieba word must all match; bigrams straddling two words are optional, so
  "东野圭吾解忧" needs 东野/野圭/圭吾/解忧 but not 吾解. Only rare terms' posting lists are
  fetched whole; common terms are probed for the candidates only, and when every required term
  is common (or the rare ones alone give too many candidates) the database intersects them,
  rarest first. No query reads a long posting list.

Three round trips: (1) key hits, document frequencies and rare postings; (2) common-term probes,
title keys and loan counts of the candidates (with the display columns when there are few);
(3) the page's display columns and copy counts, when (2) did not bring them.

Before all that the query loses the wrappers students put around what they want (有没有…,
我想借…, …这本书, 关于…的书), typed pinyin loses its tone digits, and a trailing volume
(盗墓笔记第三册, 亚人3, 失乐园下册) is split off to pick that volume of the series first.
Subjects (tags, CLC class names) are keys read central-first; the folded pinyin of the query
(z/zh, n/l, an/ang, ...) and the sorted characters of a Chinese query (two swapped) are keys too.
A title one edit away (a character missing, added, swapped or wrong) is found by equality on
the titles' deletion keys (the title less one character) against the query and its own
deletions, however common its characters are, and every candidate's title is compared with
the query (``one_edit``). When an intersection of common terms stops at MAX_CANDIDATES it is
a sample by record number, so the records of the query's rare terms are kept before it.
An ISBN with a wrong check digit, and a text that matches nothing, come back with
``suggestions`` (the catalogue's ISBNs one digit away; the closest titles).

Everything lives in a ``SearchEngine`` built once per process (the assembly function, the CLI) and
passed to whoever searches or indexes: it owns jieba (nlp.segment.Segmenter), the pinyin caches
and the indexer, and runs its statements on the driver's connection (storage.sqlite_inloop's,
asyncpg's), one statement text per shape whatever the length of its lists (see "Index reads").

Candidates (a few hundred at most) are scored in Python by tier: exact title (100) > full
pinyin (95) > series (90) > author (88) > original title (86) > title prefix (80) > homophone
(78) > original-title or pinyin prefix (76) > initials (74) > one edit away (71-73) > title
contains the query (70) > one character wrong (66) > series prefix (60) > all terms matched
(50-61, by field weights and whether each part of the query matched within one field) >
partial matches (20-45). Ties go to the more borrowed record
(``Record.loan_count``), then to the lower record pk, so the order is total and paging stable.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.index import DELETION_LENGTHS, FIELD_WEIGHTS, Indexer, KeyKind, anagram, deletions
from nlp.isbn import one_digit_away
from nlp.normalize import (
    ROLE_WORDS,
    has_number,
    mark_short_names,
    normalize,
    normalize_query,
    numbers_canonical,
    publisher_suffixes,
    role_tail,
    script_runs,
    split_year,
    strip_role,
    year_of,
)
from nlp.pinyin import Pinyin, fuzzy_pinyin, has_han, strip_tones
from nlp.recognise import Recognised, recognise
from nlp.segment import Segmenter
from nlp.subjects import CLASS_WORDS, TAG_WORDS, ClassNames
from storage.models import CopyStatus
from storage.search_tables import KEY_LENGTH, TERM_LENGTH, SearchKey

__all__ = [
    "MAX_TOTAL",
    "Hit",
    "SearchEngine",
    "SearchResult",
    "Suggestion",
    "in_volume_order",
    "parse_volume",
    "query_units",
    "strip_wrappers",
]

KEYS = cast(Table, SearchKey.__table__)

MAX_TOTAL = 200  # matches reported at most (``SearchResult.total`` is capped here)
KEY_FETCH = 200  # rows read per exact key lookup (an author's books, a series)
PREFIX_FETCH = 100  # rows read per key prefix scan
ENOUGH_EXACT = 30  # this many exact key hits make term matches pointless (they rank below)
CLASS_FETCH = 2000  # records read for a CLC class listing before ranking
DF_CAP = 500  # posting lists are counted up to this length
RARE_DF = 150  # terms with at most this many postings are fetched whole; others probed
RARE_BUDGET = 600  # ... fewer per term when the query has many terms (rare_limit)
NEAR_FETCH = 60  # rows read per near-miss key lookup (one edit away from the query)
NEAR_LENGTHS = range(DELETION_LENGTHS.start - 1, DELETION_LENGTHS.stop + 1)  # query lengths
PROBE_TERMS = 6  # common terms probed among the candidates, the rarest first; the rest ignored
MAX_UNITS = 12  # terms looked up per query
MAX_CANDIDATES = 80  # records scored per query (besides key hits)
RICH_CANDIDATES = 60  # up to this many candidates, their display columns come in the same trip
MIN_PARTIAL = 0.34  # share of the query's weight a partial match needs
IDF_SCALE = 100_000.0
# Copies that no longer count as holdings.
GONE = (CopyStatus.WITHDRAWN.value, CopyStatus.LOST.value)


@dataclass(frozen=True, slots=True)
class Hit:
    record_pk: int
    record_id: str
    title: str
    subtitle: str | None  # tells the volumes of one work apart in a result list
    author: str | None
    publisher: str | None
    pub_date: str | None
    call_number: str | None
    clc: str | None
    score: float
    on_shelf: int  # copies on the shelf now
    copies: int  # copies held (withdrawn and lost copies not counted)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A "did you mean": a catalogue title close to a query that found nothing."""

    record_pk: int
    record_id: str
    title: str
    author: str | None
    isbn: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str  # the normalised query actually searched (at most 100 characters)
    kind: str  # "empty" | "isbn" | "call_number" | "clc" | "text"
    total: int  # matches, capped at MAX_TOTAL
    hits: list[Hit]
    suggestions: list[Suggestion] = field(default_factory=list)  # only when hits is empty


MAX_SUGGESTIONS = 3
WORK_LISTS: dict[str, tuple[str, ...]] = {
    # Subject words that name a handful of works rather than a tag or a class.
    "四大名著": ("红楼梦", "西游记", "三国演义", "水浒传"),
}

# Wrappers around what a student wants: "有没有三体", "我想借一下活着这本书", "关于旅行的书".
_WRAP_HEAD = re.compile(
    r"^(?:请问|你好|老师)?(?:图书馆)?(?:有没有|有无|有|我想借|我想找|我想看|我要借|我要找|想借|"
    r"想找|帮我找一下|帮我找找|帮我找|帮忙找一下|帮忙找|找一下|找找|借一下|搜一下|搜索|查一下|"
    r"查找|推荐一些|推荐几本|推荐)(?:一下|一本|一些|几本|本)?(?:关于)?"
)
_WRAP_TAIL = re.compile(
    r"(?:这本书|这本|那本书|这套书|这套|一书|的书籍|的书|方面的书|类的书|的小说|吗|呢|啊|吧)+$"
)
_ABOUT = re.compile(r"^关于(.+?)(?:的|方面的|类的)?(?:书籍|书|小说)?$")


def strip_wrappers(compact_query: str) -> str:
    """The wanted part of a compact Chinese query; unchanged when nothing would be left."""
    text = _WRAP_HEAD.sub("", compact_query, count=1)
    text = _WRAP_TAIL.sub("", text)
    about = _ABOUT.fullmatch(text)
    if about:
        text = about.group(1)
    return text if len(text) >= 2 or (text and not has_han(text)) else compact_query


_NUMERALS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ROMAN = {
    "i": 1,
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "v": 5,
    "vi": 6,
    "vii": 7,
    "viii": 8,
    "ix": 9,
    "x": 10,
}
_PARTS = {"上": -1, "中": -2, "下": -3}  # 上册/中册/下册 (negative: not a number)
_VOLUME_TAIL = re.compile(
    r"^(.+?)(?:之|第)?(\d{1,3}|[一二两三四五六七八九十]{1,3}|(?<![a-z])[ivx]{1,4}|[上中下])"
    r"(?:册|卷|部|集|季|辑|本)?$"
)
_VOLUME_HEAD = re.compile(
    r"^(?:之|第)?(\d{1,3}|[一二两三四五六七八九十]{1,3}|[ivx]{1,4}(?![a-z])|[上中下])(?:册|卷|部|集|季|辑)?"
)
_VOLUME_INSIDE = re.compile(r"第(\d{1,3}|[一二两三四五六七八九十]{1,3})(?:册|卷|部|集|季|辑)")


def _volume_number(mark: str) -> int | None:
    if mark.isdigit():
        return int(mark)
    if mark in _PARTS:
        return _PARTS[mark]
    if mark in _ROMAN:
        return _ROMAN[mark]
    if all(ch in _NUMERALS or ch == "十" for ch in mark):
        if mark == "十":
            return 10
        if "十" in mark:
            tens, _, ones = mark.partition("十")
            return _NUMERALS.get(tens, 1) * 10 + _NUMERALS.get(ones, 0)
        return _NUMERALS.get(mark) if len(mark) == 1 else None
    return None


def parse_volume(compact_query: str) -> tuple[str, int] | None:
    """(series or title, volume) of a query ending in a volume: "盗墓笔记第三册" → ("盗墓笔记", 3);
    上/中/下 are -1/-2/-3. None when there is no volume or too little in front of it."""
    match = _VOLUME_TAIL.match(compact_query)
    if not match:
        return None
    base, token = match.group(1), match.group(2)
    volume = _volume_number(token)
    if volume is None or len(base) < 2 or (base.isascii() and not token.isdigit()):
        return None
    return base, volume


def title_volume(title: str, base: str) -> int | None:
    """The volume a title holds after ``base`` ("盗墓笔记3" → 3, "失乐园iii秘密花开了" → 3)."""
    at = title.find(base)
    if at < 0:
        return None
    rest = title[at + len(base) :]
    match = _VOLUME_HEAD.match(rest) or _VOLUME_INSIDE.search(rest)  # "毛泽东选集第二卷"
    if match:
        return _volume_number(match.group(1))
    # "盗墓笔记8大结局下": the part mark at the end.
    return _PARTS.get(rest[-1:]) if rest else 0


# ---------------------------------------------------------------------------------------------
# Query analysis


@dataclass(frozen=True, slots=True)
class Unit:
    """A term to look up; a record matches "all terms" when it has every required unit."""

    term: str
    required: bool
    chunk: int = 0  # which run of the query it comes from ("危险 北京联合": 0 and 1)


def query_units(normalised: str, segmenter: Segmenter) -> list[Unit]:
    """Index terms of a normalised query, marked required or optional (see the module doc)."""
    text = publisher_suffixes(normalised) or normalised
    found: dict[str, bool] = {}
    chunk_of: dict[str, int] = {}

    def add(term: str, required: bool, chunk: int) -> None:
        found[term] = found.get(term, False) or required
        chunk_of.setdefault(term, chunk)

    runs = list(script_runs(text))
    if len(runs) > 1:
        # "爱 摩福斯特 主编": a role word standing alone says nothing about the book.
        runs = [(cjk, run) for cjk, run in runs if not (cjk and run in ROLE_WORDS)] or runs
    for chunk, (cjk, run) in enumerate(runs):
        if not cjk:
            add(run[:TERM_LENGTH], True, chunk)
            continue
        if len(run) == 1:
            # A lone character among other words ("生活 读") is weak evidence: optional.
            add(run, len(runs) == 1, chunk)
            continue
        word_of: list[int] = []  # index of the jieba word each character belongs to
        single: list[bool] = []
        for n, word in enumerate(segmenter.cut(run)):
            word_of.extend([n] * len(word))
            single.extend([len(word) == 1] * len(word))
        # A role word after a name ("黛比珀尔译", "余华 主编"): its bigrams are optional.
        role_at = len(run) - role_tail(run)
        for i in range(len(run) - 1):
            same_word = word_of[i] == word_of[i + 1]
            required = (same_word or (single[i] and single[i + 1])) and i + 1 < role_at
            add(run[i : i + 2], required, chunk)
    units = [Unit(t, r, chunk_of[t]) for t, r in found.items()]
    units.sort(key=lambda u: not u.required)  # stable: required first, in query order
    return units[:MAX_UNITS]


def _successor(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (code points)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(last + 1)


@dataclass(frozen=True, slots=True)
class _Lookup:
    kind: str
    value: str
    exact_tier: float
    prefix_tier: float | None  # None: exact only
    role: str = ""  # "subject": tier by the subject's rank; "volume": the query's volume first
    # "near": one edit away, scored by _near_tier. With ``values``, the key is any of them.
    values: tuple[str, ...] = ()


# A query naming a subject lists the books whose main subject it is first (above an exact title
# of that name), then those where it is the second subject, and so on.
SUBJECT_TIER = 101.0
SUBJECT_STEP = 2.0
SUBJECT_FLOOR = 84.0
VOLUME_TIER = 99.0  # the asked volume of a series, just below an exact title


def _subject_lookups(q: str) -> list[_Lookup]:
    subject = TAG_WORDS.get(q, q)
    out = [_Lookup(KeyKind.SUBJECT, f"{subject}#", SUBJECT_TIER, SUBJECT_TIER, "subject")]
    out.extend(_Lookup(KeyKind.TITLE, title, 92.0, None) for title in WORK_LISTS.get(q, ()))
    return out


def _pinyin_lookups(q: str, pinyin: Pinyin) -> list[_Lookup]:
    spoken = strip_tones(q)  # "hong2lou2meng4", "hónglóumèng": only pinyin keys see it toneless
    if spoken.isascii() and spoken.isalnum() and not spoken.isdigit():
        out = [
            _Lookup(KeyKind.PINYIN, spoken, 95.0, 76.0 if len(spoken) >= 4 else None),
            _Lookup(KeyKind.AUTHOR_PINYIN, spoken, 88.0, None),
        ]
        if len(spoken) >= 2:
            out.append(_Lookup(KeyKind.INITIALS, spoken, 74.0, 40.0 if len(spoken) >= 4 else None))
            out.append(_Lookup(KeyKind.AUTHOR_INITIALS, spoken, 73.0, None))
        if len(spoken) >= 4:
            out.append(_Lookup(KeyKind.FUZZY, fuzzy_pinyin(spoken), 77.0, None))
        return out
    if not (has_han(q) and len(q) >= 2):
        return []
    out = []
    # Pinyin typed among the characters ("云gāngshi窟", "张xue良"): read as a whole, toneless.
    spoken = pinyin.compact(q)
    if not spoken.isascii():  # tone marks only: tone digits are a title's numbers here
        spoken = strip_tones(spoken)
    spoken = spoken[:KEY_LENGTH]
    initials = _mixed_initials(q, pinyin)
    if initials:  # "j忧杂货店", "张x良y赵四小姐": the letters are initials
        out.append(_Lookup(KeyKind.INITIALS, initials, 74.0, None))
    if spoken and spoken.isascii():
        out.append(_Lookup(KeyKind.PINYIN, spoken, 78.0, 45.0 if len(q) >= 3 else None))
        # Below "the title contains the query": a folded reading is a guess.
        out.append(_Lookup(KeyKind.FUZZY, fuzzy_pinyin(spoken), 68.0, None))
    if len(q) >= 3:
        out.append(_Lookup(KeyKind.ANAGRAM, anagram(q), 73.0, None))
    return out


def _mixed_initials(q: str, pinyin: Pinyin) -> str | None:
    """The initials of a query mixing characters with consonants typed for the others."""
    runs = list(script_runs(q))
    latin = [run for cjk, run in runs if not cjk]
    if not latin or len(latin) == len(runs) or len(q) < 3:
        return None
    if not all(run.isalpha() and not any(v in run for v in "aeiouv") for run in latin):
        return None
    out = []
    for cjk, run in runs:
        out.append("".join(s[:1] for s in pinyin.syllables(run)) if cjk else run)
    return "".join(out)[:KEY_LENGTH]


def _near_lookups(q: str) -> list[_Lookup]:
    """A title one edit away from the query (a character missing, added, swapped or wrong):
    the titles' deletion keys equal to the query or to one of its deletions, and the titles
    equal to one of its deletions. Equality lookups: they do not care how common the other
    characters are."""
    if not (NEAR_LENGTHS.start <= len(q) < NEAR_LENGTHS.stop) or q.isdigit():
        return []
    if q.isascii() and len(q) < 5:
        return []  # short Latin: initials and words, not misspelt titles
    out = [_Lookup(KeyKind.DELETION, q, 0.0, None, "near")]
    if len(q) >= 4:
        shorter = tuple(sorted(deletions(q)))
        # Always as many values (repeats change nothing): one statement text for every query
        # length, so PostgreSQL's prepared statements are reused.
        shorter += shorter[-1:] * (NEAR_LENGTHS.stop - 1 - len(shorter))
        out.append(_Lookup(KeyKind.DELETION, "", 0.0, None, "near", shorter))
        out.append(_Lookup(KeyKind.TITLE, "", 0.0, None, "near", shorter))
    return out


def _lookups(q: str, pinyin: Pinyin, volume: tuple[str, int] | None) -> list[_Lookup]:
    """Key lookups for a compact query, with the score tier of an exact and a prefix match."""
    q = q[:KEY_LENGTH]
    # A short Latin query is more likely initials ("hlm") than the start of a Latin title.
    short_latin = q.isascii() and len(q) <= 3
    out = [
        _Lookup(KeyKind.TITLE, q, 100.0, None if short_latin else 80.0),
        _Lookup(KeyKind.ORIGINAL, q, 86.0, 76.0 if len(q) >= 3 else None),
        _Lookup(KeyKind.SERIES, q, 90.0, 60.0 if len(q) >= 2 else None),
        _Lookup(KeyKind.AUTHOR, q, 88.0, None),
    ]
    bare = strip_role(q)
    if bare != q:  # "余华著", "黛比珀尔译"
        out.append(_Lookup(KeyKind.AUTHOR, bare, 88.0, None))
    if has_number(q):  # "36计" for 三十六计, "三体2" for 三体Ⅱ, "一九八四" for 1984
        canonical = numbers_canonical(q)
        out.append(_Lookup(KeyKind.NUMBERS, canonical, 97.0, 79.0 if len(canonical) >= 3 else None))
    out += _pinyin_lookups(q, pinyin)
    out += _near_lookups(q)
    if len(q) >= 2 and not q.isdigit():
        out += _subject_lookups(q)
    if volume is not None:
        base = volume[0][:KEY_LENGTH]
        out.append(_Lookup(KeyKind.TITLE, base, VOLUME_TIER, VOLUME_TIER, "volume"))
        out.append(_Lookup(KeyKind.SERIES, base, VOLUME_TIER, None, "volume"))
    return out


# ---------------------------------------------------------------------------------------------
# Index reads
#
# Plain SQL text, compiled once per statement shape and run on the driver's own connection:
# SQLAlchemy's execute costs several driver calls per statement and builds a Row per row; the
# SQLite connection's ``execute_fetchall`` is one call and asyncpg's ``fetch`` one round trip, rows
# as tuples (records). ``IN :name`` lists are one parameter (SQLite: a JSON array read by
# json_each; PostgreSQL: ``= ANY`` of an array), so a statement's text does not change with the
# length of a list: SQLite's statement cache and asyncpg's prepared statements are reused.
# The SQL is otherwise portable (SQLite and PostgreSQL).

_NAME = re.compile(r"(?<![:\w]):(\w+)")


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    names: tuple[str, ...]  # PostgreSQL: the parameter of each $n; SQLite binds by name
    lists: frozenset[str]


def _compile(sql: str, lists: Sequence[str], *, sqlite: bool) -> _Statement:
    for name in lists:
        many = f"IN (SELECT value FROM json_each(:{name}))" if sqlite else f"= ANY(:{name})"  # noqa: S608 - a parameter name
        sql = sql.replace(f"IN :{name}", many)
    if sqlite:
        return _Statement(sql, (), frozenset(lists))
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _Statement(_NAME.sub(number, sql), tuple(names), frozenset(lists))


@dataclass(slots=True)
class _Reader:
    """Runs the search's read statements on the caller's connection through the driver itself;
    rows come as tuples. SQLite: inside the unit of work's transaction (begun with the
    connection). PostgreSQL: inside it once SQLAlchemy has begun it (lazily, at its first
    statement); before that each read sees what is committed, which is all a search needs."""

    driver: Any  # storage.sqlite_inloop.InLoopConnection or asyncpg.Connection
    sqlite: bool
    statements: dict[Any, _Statement]

    @classmethod
    async def of(cls, session: AsyncSession, statements: dict[Any, _Statement]) -> _Reader:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        return cls(raw.driver_connection, connection.dialect.name == "sqlite", statements)

    async def fetch(
        self, shape: Any, build: Callable[[], str], params: dict[str, Any], *lists: str
    ) -> Sequence[Sequence[Any]]:
        key = (self.sqlite, shape)
        statement = self.statements.get(key)
        if statement is None:
            statement = self.statements[key] = _compile(build(), lists, sqlite=self.sqlite)
        if self.sqlite:
            bound = {
                name: json.dumps(value, ensure_ascii=False) if name in statement.lists else value
                for name, value in params.items()
            }
            return cast(
                Sequence[Sequence[Any]], await self.driver.execute_fetchall(statement.sql, bound)
            )
        rows = await self.driver.fetch(statement.sql, *[params[n] for n in statement.names])
        return cast(Sequence[Sequence[Any]], rows)


def _mode(lookup: _Lookup) -> str:
    if lookup.values:
        return "in"
    return "eq" if lookup.prefix_tier is None else "range"


def rare_limit(terms: int) -> int:
    """Postings per term fetched whole: fewer for long queries, so rows stay within a budget."""
    return max(30, min(RARE_DF, RARE_BUDGET // max(terms, 1)))


@dataclass(slots=True)
class _FirstPass:
    key_hits: list[tuple[int, str, int]]  # (lookup number, key, record_pk)
    df: dict[str, int]  # term → posting-list length, capped at DF_CAP
    postings: dict[int, dict[str, int]]  # record_pk → term → field bits, for rare terms


async def _first_pass(
    reader: _Reader, lookups: Sequence[_Lookup], terms: Sequence[str]
) -> _FirstPass:
    """One round trip: key hits, document frequencies, and the postings of the rare terms.

    Each lookup is an index range scan (or an equality) capped at KEY_FETCH rows. A document
    frequency counts at most DF_CAP index entries. A term's postings come back only when it has
    at most RARE_DF of them (the count, a CTE, is evaluated once for both).
    """
    modes = tuple(_mode(lookup) for lookup in lookups)
    shape = ("first", modes, len(terms))
    rare = rare_limit(len(terms))

    def build() -> str:
        parts = []
        for n, mode in enumerate(modes):
            where, fetch = {
                "in": (f"key IN :v{n}", NEAR_FETCH),
                "eq": (f"key = :v{n}", KEY_FETCH),
                "range": (f"key >= :v{n} AND key < :w{n}", PREFIX_FETCH),
            }[mode]
            parts.append(
                f"SELECT * FROM (SELECT {n} AS n, key, record_pk, 0 AS bits FROM search_keys "  # noqa: S608 - generated placeholders and constants; values are bound
                f"WHERE kind = :k{n} AND {where} ORDER BY key, record_pk LIMIT {fetch}) AS l{n}"
            )
        # A term's posting-list length is counted once (a CTE used twice is materialised on
        # both databases): it is reported and decides whether the postings come back.
        counts = [
            f"c{n} AS (SELECT count(*) AS df FROM (SELECT 1 FROM search_terms "  # noqa: S608 - generated placeholders and constants; values are bound
            f"WHERE term = :t{n} LIMIT {DF_CAP}) AS x{n})"
            for n in range(len(terms))
        ]
        for n in range(len(terms)):
            parts.append(f"SELECT {-1 - n}, NULL, (SELECT df FROM c{n}), 0")  # noqa: S608 - generated placeholders and constants; values are bound
            parts.append(
                f"SELECT {-1001 - n}, NULL, record_pk, fields FROM search_terms "  # noqa: S608 - generated placeholders and constants; values are bound
                f"WHERE term = :t{n} AND (SELECT df FROM c{n}) <= {rare}"
            )
        head = f"WITH {', '.join(counts)} " if counts else ""
        return head + " UNION ALL ".join(parts)

    params: dict[str, Any] = {}
    for n, lookup in enumerate(lookups):
        params[f"k{n}"] = lookup.kind
        params[f"v{n}"] = list(lookup.values) if lookup.values else lookup.value
        if modes[n] == "range":
            params[f"w{n}"] = _successor(lookup.value)
    for n, term in enumerate(terms):
        params[f"t{n}"] = term
    found = _FirstPass([], {}, {})
    lists = [f"v{n}" for n, mode in enumerate(modes) if mode == "in"]
    for n, key, value, bits in await reader.fetch(shape, build, params, *lists):
        if n >= 0:
            found.key_hits.append((n, key, value))
        elif n > -1001:
            found.df[terms[-1 - n]] = int(value)
        else:
            found.postings.setdefault(value, {})[terms[-1001 - n]] = bits
    return found


# Display columns of a hit, with its copy counts. The copy subqueries filter on record_pk only:
# a filter on copies.status could tempt SQLite (without ANALYZE statistics) into reading every
# copy through the status index.
_DISPLAY = (  # noqa: S608 - generated placeholders and constants; values are bound
    "r.record_id, r.title, r.authors, r.publisher, r.pub_date, r.call_number, r.clc, "
    "(SELECT coalesce(sum(CASE WHEN c.status = '{shelf}' THEN 1 ELSE 0 END), 0) "
    "FROM copies c WHERE c.record_pk = r.id), "
    "(SELECT coalesce(sum(CASE WHEN c.status IN ({gone}) THEN 0 ELSE 1 END), 0) "
    "FROM copies c WHERE c.record_pk = r.id), r.subtitle"
).format(shelf=CopyStatus.ON_SHELF.value, gone=", ".join(f"'{g}'" for g in GONE))
_DISPLAY_COLUMNS = 10
Display = tuple[Any, ...]  # the _DISPLAY columns of one record


async def _second_pass(
    reader: _Reader,
    common: Sequence[str],
    probe: Sequence[int],
    candidates: Iterable[int],
) -> tuple[
    list[tuple[str, int, int]],
    dict[int, tuple[str, int]],
    dict[int, Display],
    dict[int, tuple[str, int | None]],
]:
    """One round trip: the common terms' postings among ``probe``, and for every candidate its
    compact title key and loan count (records that no longer exist drop out), and its title
    with the subtitle (the volume is often there: 平凡的世界 第二部) and year.

    With few candidates their display columns come along too, which saves the page query.
    """
    pks = sorted(candidates)
    rich = len(pks) <= RICH_CANDIDATES
    display = _DISPLAY if rich else ", ".join(["NULL"] * _DISPLAY_COLUMNS)
    titles = (
        f"SELECT 1 AS tag, k.key, k.record_pk, r.loan_count, r.pub_date, {display} "  # noqa: S608 - generated placeholders and constants; values are bound
        "FROM search_keys k "
        "JOIN records r ON r.id = k.record_pk WHERE k.kind = :kind AND k.record_pk IN :pks"
    )
    params: dict[str, Any] = {"kind": KeyKind.TITLE, "pks": pks}
    nulls = ", NULL" * _DISPLAY_COLUMNS
    if common and probe:
        # One equality per term (not ``term IN :list``): PostgreSQL's generic plan for two lists
        # reads every term of each probed record through the record_pk index.
        params["probe"] = list(probe)
        params.update({f"c{n}": term for n, term in enumerate(common)})

        def build() -> str:
            probes = " ".join(
                f"UNION ALL SELECT 0, term, record_pk, fields, NULL{nulls} FROM search_terms "  # noqa: S608 - generated placeholders and constants; values are bound
                f"WHERE term = :c{n} AND record_pk IN :probe"
                for n in range(len(common))
            )
            return f"{titles} {probes}"

        rows = await reader.fetch(
            ("second+probe", rich, len(common)), build, params, "pks", "probe"
        )
    else:
        rows = await reader.fetch(("second", rich), lambda: titles, params, "pks")
    postings: list[tuple[str, int, int]] = []
    info: dict[int, tuple[str, int]] = {}
    shown: dict[int, Display] = {}
    whole: dict[int, tuple[str, int | None]] = {}
    for row in rows:
        tag, key, pk, value = row[0], row[1], row[2], row[3]
        if tag == 0:
            postings.append((key, pk, value))
            continue
        known = info.get(pk)
        if known is None or len(key) < len(known[0]):  # title alone, not title + subtitle
            info[pk] = (key, value or 0)
        if pk not in whole or len(key) > len(whole[pk][0]):
            whole[pk] = (key, year_of(row[4]))
        if rich:
            shown[pk] = tuple(row[5:])
    return postings, info, shown, whole


async def _records_with_all(reader: _Reader, terms: Sequence[str]) -> list[int]:
    """Records having every one of these (common) terms: the first term's list, probed."""

    def build() -> str:
        # A scalar subquery, not EXISTS: PostgreSQL turns EXISTS into a join that reads and
        # sorts the other terms' whole posting lists; this probes the primary key per record.
        probes = "".join(
            f" AND (SELECT 1 FROM search_terms o{n} "  # noqa: S608 - generated placeholders and constants; values are bound
            f"WHERE o{n}.term = :t{n} AND o{n}.record_pk = d.record_pk) IS NOT NULL"
            for n in range(1, len(terms))
        )
        return (
            f"SELECT d.record_pk FROM search_terms d WHERE d.term = :t0{probes} "  # noqa: S608 - generated placeholders and constants; values are bound
            f"ORDER BY d.record_pk LIMIT {MAX_CANDIDATES}"
        )

    params = {f"t{n}": term for n, term in enumerate(terms)}
    rows = await reader.fetch(("all", len(terms)), build, params)
    return [row[0] for row in rows]


FIELD_MASK = 1023
_FIELD_WEIGHT = [
    max((w for bit, w in FIELD_WEIGHTS.items() if bits & bit), default=0.0)
    for bits in range(FIELD_MASK + 1)
]


@dataclass(slots=True)
class _TermMatches:
    """Which units each candidate has, and the weights to score them."""

    weights: dict[str, float]  # live unit → weight
    required: frozenset[str]  # live required units
    matches: dict[int, dict[str, int]]  # record_pk → unit → field bits
    common: list[str]  # live units whose postings were not fetched whole
    chunks: list[list[str]]  # live units by query run
    total: float = 0.0
    chunk_of: dict[str, int] = field(default_factory=dict)
    chunk_weight: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.total = sum(self.weights.values())
        for n, chunk in enumerate(self.chunks):
            for term in chunk:
                self.chunk_of[term] = n
            self.chunk_weight.append(sum(self.weights[t] for t in chunk))

    def coverage(self, pk: int) -> tuple[bool, float, float]:
        """(has every required unit, weighted share of the query matched, share of the query
        whose runs each match within one field)."""
        matched = self.matches.get(pk)
        if not matched or not self.total:
            return False, 0.0, 0.0
        weights, chunk_of = self.weights, self.chunk_of
        got = 0.0
        together = [FIELD_MASK] * len(self.chunks)
        seen = [0] * len(self.chunks)
        for term, bits in matched.items():
            got += weights[term] * _FIELD_WEIGHT[bits & FIELD_MASK]
            n = chunk_of[term]
            together[n] &= bits
            seen[n] += 1
        # "思维 中国人民": 中国人民 all in the publisher beats 中国人 in the title + 人民 elsewhere.
        coherent = sum(
            weight
            for weight, chunk, bits, count in zip(
                self.chunk_weight, self.chunks, together, seen, strict=True
            )
            if bits and count == len(chunk)
        )
        return self.required.issubset(matched), got / self.total, coherent / self.total


async def _term_candidates(
    reader: _Reader, units: Sequence[Unit], first: _FirstPass
) -> _TermMatches | None:
    """Candidates from the rare terms' postings (or, when every term is common, from an
    intersection in SQL), pruned to MAX_CANDIDATES; common terms are probed later."""
    df = first.df
    live = [u for u in units if df.get(u.term, 0) > 0]
    if not live:
        return None
    required = [u for u in live if u.required] or live
    weights = {
        u.term: math.log1p(IDF_SCALE / df[u.term]) * (1.0 if u in required else 0.25) for u in live
    }
    rare = rare_limit(len(units))
    common = sorted((u.term for u in live if df[u.term] > rare), key=lambda t: (df[t], t))
    if len(common) > PROBE_TERMS:
        # The commonest terms carry little weight; probing them all would cost more than the
        # rest of the query. They no longer count.
        ignored = set(common[PROBE_TERMS:])
        common = common[:PROBE_TERMS]
        live = [u for u in live if u.term not in ignored]
        required = [u for u in required if u.term not in ignored] or live
        weights = {t: w for t, w in weights.items() if t not in ignored}
    matches = {pk: dict(m) for pk, m in first.postings.items()}
    intersected: set[int] = set()
    whole = True  # the intersection is every record with those terms, not a sample of them
    every_required_common = bool(common) and all(u.term in common for u in required)
    if every_required_common or (len(matches) > MAX_CANDIDATES and len(required) > 1):
        # Intersect the required terms in SQL, the rarest first: when they are all common, or
        # when the rare ones alone give too many candidates to keep ("青春" has 138 books, the
        # ones from 中国电影出版社 must not be cut at random).
        terms = [u.term for u in sorted(required, key=lambda u: (df[u.term], u.term))][:4]
        pks = await _records_with_all(reader, terms)
        if not pks and every_required_common:
            pks = await _records_with_all(reader, terms[:1])  # partial matches, then
            whole = False
        whole = whole and len(pks) < MAX_CANDIDATES
        for pk in pks:
            matches.setdefault(pk, {})
        intersected.update(pks)
    if len(matches) > MAX_CANDIDATES:
        # By field too: a summary match must not crowd a title match out of the candidates.
        weight_of = {
            pk: sum(weights[t] * _FIELD_WEIGHT[bits & FIELD_MASK] for t, bits in m.items())
            for pk, m in matches.items()
        }
        # Records with every required term first, unless they are only the first ones of a
        # longer list (by record number, i.e. at random): then a rare term's records, which
        # are specific to the query (a title with a character wrong or missing), go first.
        ranked = sorted(
            matches, key=lambda pk: (whole and pk not in intersected, -weight_of[pk], pk)
        )
        matches = {pk: matches[pk] for pk in ranked[:MAX_CANDIDATES]}
    chunks: dict[int, list[str]] = {}
    for u in live:
        chunks.setdefault(u.chunk, []).append(u.term)
    return _TermMatches(
        weights, frozenset(u.term for u in required), matches, common, list(chunks.values())
    )


# ---------------------------------------------------------------------------------------------
# Ranking


def _ratio_bonus(query_len: int, key_len: int, scale: float) -> float:
    # Coarse (tenths) so that near-equal titles tie and popularity decides.
    return scale * round(query_len / max(key_len, 1), 1)


def _order(scores: dict[int, float], loans: dict[int, int]) -> list[tuple[int, float]]:
    ranked = sorted(scores.items(), key=lambda item: (-item[1], -loans.get(item[0], 0), item[0]))
    return [(pk, round(score, 3)) for pk, score in ranked[:MAX_TOTAL]]


def _volume_key(title: str) -> tuple[str, int]:
    """(the work, the volume's place) of a compact title (with its subtitle): "三体ii" →
    ("三体", 2), "人世间上部" → ("人世间", 1), "平凡的世界第二部" → ("平凡的世界", 2); a title
    without a volume is itself (volume 0, before any numbered one: "三体" before "三体ii")."""
    found = parse_volume(title)
    if found is None:
        return title, 0
    base, volume = found
    return base, -volume if volume < 0 else volume


def in_volume_order(
    ranked: list[tuple[int, float]], titles: dict[int, str]
) -> list[tuple[int, float]]:
    """Among records of equal score, the volumes of one work in volume order (刘慈欣: 三体,
    三体Ⅱ, 三体Ⅲ; 人世间 上部, 中部, 下部). Each work keeps the places its volumes had; other
    records do not move. ``titles``: compact title + subtitle by record."""
    out = list(ranked)
    start = 0
    while start < len(out):
        end = start
        while end < len(out) and out[end][1] == out[start][1]:
            end += 1
        if end - start > 1:
            works: dict[str, list[int]] = {}
            keys: dict[int, tuple[str, int]] = {}
            for at in range(start, end):
                keys[at] = _volume_key(titles.get(out[at][0], ""))
                works.setdefault(keys[at][0], []).append(at)
            for places in works.values():
                if len(places) > 1 and any(keys[at][1] for at in places):
                    order = sorted(range(len(places)), key=lambda i: (keys[places[i]][1], i))
                    members = [out[places[i]] for i in order]
                    for at, hit in zip(places, members, strict=True):
                        out[at] = hit
        start = end
    return out


@dataclass(slots=True)
class _Scores:
    scores: dict[int, float] = field(default_factory=dict)
    near: dict[int, float] = field(default_factory=dict)  # below the bar: "did you mean" material

    def offer(self, pk: int, score: float) -> None:
        if score > self.scores.get(pk, 0.0):
            self.scores[pk] = score


def _overlap(q: str, title: str) -> float:
    """Share of characters two short strings have in common (a cheap likeness, 0..1)."""
    if not q or not title:
        return 0.0
    return len(set(q) & set(title)) / max(len(set(q)), len(set(title)))


def _series_order(title: str, base: str) -> float:
    """A little less for each later volume, so a series lists in volume order."""
    volume = title_volume(title, base)
    if volume is None:
        return 0.0
    return 0.5 * (1.0 - min(max(volume, 0), 499) / 500.0)


def _score_key_hits(
    found: _Scores,
    first: _FirstPass,
    lookups: Sequence[_Lookup],
    info: dict[int, tuple[str, int]],
    q: str,
    volume: tuple[str, int] | None,
) -> None:
    for n, key, pk in first.key_hits:
        if pk not in info:
            continue
        lookup = lookups[n]
        title = info[pk][0]
        if lookup.role == "near":
            continue  # every candidate's title is compared with the query (_near_tier)
        if lookup.role == "subject":
            rank = int(key.rpartition("#")[2] or 0) if key.startswith(lookup.value) else 9
            found.offer(pk, max(SUBJECT_FLOOR, lookup.exact_tier - SUBJECT_STEP * rank))
        elif lookup.role == "volume" and volume is not None:
            base, wanted = volume
            if title_volume(title, base) == wanted:
                found.offer(pk, VOLUME_TIER)
        elif key == lookup.value:
            bonus = 0.0
            if lookup.kind in (KeyKind.PINYIN, KeyKind.FUZZY) and lookup.exact_tier < 90:
                # Homophone: prefer the title sharing the most characters with the query.
                bonus = sum(a == b for a, b in zip(title, q, strict=False)) / max(len(q), 1)
            elif lookup.kind == KeyKind.SERIES:
                bonus = _series_order(title, q)
            found.offer(pk, lookup.exact_tier + bonus)
        elif lookup.prefix_tier is not None:
            found.offer(pk, lookup.prefix_tier + _ratio_bonus(len(lookup.value), len(key), 5.0))


# A title one edit away from the query: above "every term matched" (50-61), below "the title
# contains the query" (70) when only a character is wrong (the query may be a real phrase
# that a title merely resembles), above it otherwise; less for short queries, where one
# character is a large part of the title.
NEAR_TIERS = {"swapped": 73.0, "missing": 72.0, "added": 71.0, "wrong": 66.0}
NEAR_SHORT = 6.0  # off the tier for a query of NEAR_LENGTHS.start characters


def one_edit(q: str, title: str) -> str | None:
    """How ``title`` differs from ``q`` by one edit: "missing" (the query lacks one of its
    characters), "added", "swapped" (two neighbours) or "wrong"; None otherwise."""
    short, long_ = sorted((q, title), key=len)
    if len(long_) - len(short) > 1 or q == title:
        return None
    at = next((i for i, (a, b) in enumerate(zip(short, long_, strict=False)) if a != b), len(short))
    if len(long_) > len(short):
        if short[at:] != long_[at + 1 :]:
            return None
        return "missing" if long_ is title else "added"
    if q[at + 1 :] == title[at + 1 :]:
        return "wrong"
    if q[at + 2 :] == title[at + 2 :] and q[at] == title[at + 1] and q[at + 1] == title[at]:
        return "swapped"
    return None


def _near_tier(q: str, title: str) -> float:
    edit = one_edit(q, title)
    if edit is None:
        return 0.0
    return NEAR_TIERS[edit] - (NEAR_SHORT if len(q) <= NEAR_LENGTHS.start else 0.0)


@dataclass(frozen=True, slots=True)
class _Query:
    q: str  # compact, without the wrappers
    normalised: str  # what the terms come from
    volume: tuple[str, int] | None
    lookups: list[_Lookup]
    years: range | None = None  # "活着 2012", "八十年代的红楼梦": editions of those years first
    latin: tuple[str, ...] = ()  # Latin words beside characters ("hlm 曹雪芹"): maybe pinyin


YEAR_BONUS = 5.0  # a record of the year the query names, over its equals
YEAR_MISS = 25.0  # ... and one with the year nowhere (date, title, publisher) below the rest


def _analyse(normalised: str, pinyin: Pinyin) -> _Query:
    """The query read field by field: the wrappers around it go, a year at either end is the
    edition's year, a publisher's short name stands alone ("三联版" → 三联), and what is left
    is looked up as title, author, series, pinyin... ("余华著" also as the name 余华)."""
    typed = normalised.replace(" ", "")
    q = strip_wrappers(typed)
    if q != typed:
        normalised = q
    years = None
    terms = normalised
    dated = split_year(normalised)
    if dated is not None:
        normalised, years = dated
        q = normalised.replace(" ", "")
        # A single year stays a term: it may be in the title or the publisher's name after all.
        terms = f"{normalised} {years.start}" if len(years) == 1 else normalised
    normalised = mark_short_names(terms)
    volume = parse_volume(q)
    lookups = _lookups(q, pinyin, volume)
    if q != typed:  # a title that looks wrapped ("我想借你一双眼睛") or dated ("2001太空漫游")
        lookups.append(_Lookup(KeyKind.TITLE, typed[:KEY_LENGTH], 100.0, 80.0))
        lookups.append(_Lookup(KeyKind.SERIES, typed[:KEY_LENGTH], 90.0, None))
    runs = list(script_runs(normalised))
    latin: tuple[str, ...] = ()
    if any(cjk for cjk, _ in runs):
        latin = tuple(run for cjk, run in runs if not cjk and run.isalpha() and len(run) >= 2)
    return _Query(q, normalised, volume, lookups, years, latin)


def _score_terms(
    found: _Scores, terms: _TermMatches, info: dict[int, tuple[str, int]], q: str
) -> None:
    for pk in terms.matches:
        if pk not in info:
            continue
        complete, share, coherent = terms.coverage(pk)
        if complete:
            found.offer(pk, 50.0 + 8.0 * share + 3.0 * coherent)
        elif share >= MIN_PARTIAL:
            # A character added or missing: the title sharing most characters goes first.
            like = _overlap(q, info[pk][0])
            found.offer(pk, 20.0 + 22.0 * share + 3.0 * coherent + 4.0 * like)
        elif share > 0:
            found.near[pk] = share


PINYIN_PART_BONUS = 6.0  # a Latin word of the query read as the title's pinyin or initials
PINYIN_PART_CANDIDATES = 40  # ... tried on this many of the best candidates


def _prefer(
    found: _Scores,
    whole: dict[int, tuple[str, int | None]],
    query: _Query,
    pinyin: Pinyin,
    terms: _TermMatches | None,
) -> None:
    """Records satisfying the query's other parts first: the year or decade it names (as the
    edition's date, or as a word of the record: "富人 2009" with 2009 in the publisher's
    name), and Latin words beside characters that are the title's pinyin or initials
    ("hlm 曹雪芹")."""
    if query.years is not None:
        word = str(query.years.start)
        for pk, score in found.scores.items():
            if whole[pk][1] in query.years:
                found.scores[pk] = score + YEAR_BONUS
            elif terms is None or word not in terms.matches.get(pk, {}):
                found.scores[pk] = score - YEAR_MISS
    if query.latin and found.scores:
        best = sorted(found.scores, key=lambda pk: -found.scores[pk])[:PINYIN_PART_CANDIDATES]
        for pk in best:
            spoken = pinyin.syllables(whole[pk][0], phrases=False)
            full, initials = "".join(spoken), "".join(s[:1] for s in spoken)
            if all(word in initials or word in full for word in query.latin):
                found.scores[pk] += PINYIN_PART_BONUS


async def _text_search(
    reader: _Reader, normalised: str, pinyin: Pinyin, segmenter: Segmenter
) -> tuple[list[tuple[int, float]], dict[int, Display], list[int]]:
    """(ranked matches, display columns already read, "did you mean" when nothing matched)."""
    query = _analyse(normalised, pinyin)
    q, lookups = query.q, query.lookups
    units = query_units(query.normalised, segmenter)
    first = await _first_pass(reader, lookups, [u.term for u in units])
    exact = sum(
        1 for n, key, _ in first.key_hits if key == lookups[n].value and lookups[n].role != "near"
    )
    terms = None
    if units and exact < ENOUGH_EXACT:
        terms = await _term_candidates(reader, units, first)

    candidates = {pk for _, _, pk in first.key_hits}
    probe: list[int] = []
    if terms is not None:
        candidates.update(terms.matches)
        probe = sorted(terms.matches)
    if not candidates:
        return [], {}, await _closest(reader, q, pinyin, {})
    postings, info, shown, whole = await _second_pass(
        reader, terms.common if terms is not None else [], probe, candidates
    )
    if terms is not None:
        for term, pk, bits in postings:
            terms.matches[pk][term] = bits

    found = _Scores()
    _score_key_hits(found, first, lookups, info, q, query.volume)
    for pk, (title, _) in info.items():
        if len(q) >= 2 and q in title:
            found.offer(pk, 70.0 + _ratio_bonus(len(q), len(title), 5.0))
        elif len(q) >= NEAR_LENGTHS.start:
            found.offer(pk, _near_tier(q, title))
    if terms is not None:
        _score_terms(found, terms, info, q)
    loans = {pk: loans for pk, (_, loans) in info.items()}
    _prefer(found, whole, query, pinyin, terms)
    if found.scores:
        titles = {pk: title for pk, (title, _) in whole.items()}
        return in_volume_order(_order(found.scores, loans), titles), shown, []
    near = {pk: info[pk][0] for pk in found.near}
    return [], shown, await _closest(reader, q, pinyin, near)


CLOSEST_FETCH = 30  # titles read per prefix scan for "did you mean"
MIN_LIKENESS = 0.5  # how alike (characters or pinyin, 0..1) a suggested title must be


async def _closest(reader: _Reader, q: str, pinyin: Pinyin, near: dict[int, str]) -> list[int]:
    """Titles most like a query that matched nothing: those sharing a term with it, starting
    with its first two characters, or with the pinyin of its first two syllables (folded too),
    ranked by likeness of characters or pinyin."""
    if len(q) < 2:
        return []
    if has_han(q):
        spoken = pinyin.syllables(q)
        start = "".join(spoken[:2]) if len(spoken) >= 2 else ""
    else:  # typed pinyin: its first letters stand for the first syllables
        spoken, start = [q], q[:6]
    # Titles starting like the query: its first four characters (few titles), then two.
    scans = [(KeyKind.TITLE, q[:4])] if len(q) >= 5 else []
    scans.append((KeyKind.TITLE, q[:2]))
    if start.isascii() and start.isalpha() and len(start) >= 3:
        scans += [(KeyKind.PINYIN, start), (KeyKind.FUZZY, fuzzy_pinyin(start))]

    def build() -> str:
        return " UNION ALL ".join(
            f"SELECT * FROM (SELECT t.record_pk, t.key FROM search_keys k JOIN search_keys t "  # noqa: S608 - generated placeholders and constants; values are bound
            f"ON t.record_pk = k.record_pk AND t.kind = :title WHERE k.kind = :k{n} "
            f"AND k.key >= :v{n} AND k.key < :w{n} ORDER BY k.key, k.record_pk "
            f"LIMIT {CLOSEST_FETCH}) AS c{n}"
            for n in range(len(scans))
        )

    params: dict[str, Any] = {"title": KeyKind.TITLE}
    for n, (kind, value) in enumerate(scans):
        params.update({f"k{n}": kind, f"v{n}": value, f"w{n}": _successor(value)})
    titles = dict(near)
    for pk, title in await reader.fetch(("closest", len(scans)), build, params):
        if pk not in titles or len(title) < len(titles[pk]):
            titles[pk] = title
    typed = "".join(spoken)
    likeness: dict[int, float] = {}
    for pk, title in titles.items():
        chars = SequenceMatcher(None, q, title).ratio()
        sounds = SequenceMatcher(None, typed, pinyin.compact(title)).ratio()
        best = max(chars, sounds)
        if best >= MIN_LIKENESS:
            likeness[pk] = best
    return [pk for pk, _ in _order(likeness, {})[:MAX_SUGGESTIONS]]


async def _structured(reader: _Reader, found: Recognised) -> list[tuple[int, float]]:
    if not found.value:
        return []  # ISBN-shaped with a wrong check digit
    kind = {"isbn": KeyKind.ISBN, "call_number": KeyKind.CALL_NUMBER, "clc": KeyKind.CLC}[
        found.kind
    ]
    # ISBN: equality. Call numbers: the exact one, else those it begins (volume marks like
    # "(2)"). Classes: the class and its subclasses. All are one range scan on the key.
    params = {"kind": kind, "lo": found.value, "hi": _successor(found.value)}
    rows = await reader.fetch(
        "structured",
        lambda: (
            "SELECT k.key, k.record_pk, r.loan_count FROM search_keys k "  # noqa: S608 - generated placeholders and constants; values are bound
            "JOIN records r ON r.id = k.record_pk WHERE k.kind = :kind AND k.key >= :lo "
            f"AND k.key < :hi ORDER BY k.key, k.record_pk LIMIT {CLASS_FETCH}"
        ),
        params,
    )
    exact = [row for row in rows if row[0] == found.value]
    if found.kind == "isbn" or (found.kind == "call_number" and exact):
        rows = exact
    scores = {pk: 100.0 if key == found.value else 90.0 for key, pk, _ in rows}
    return _order(scores, {pk: loans or 0 for _, pk, loans in rows})


async def _hits(
    reader: _Reader, page: Sequence[tuple[int, float]], shown: dict[int, Display]
) -> list[Hit]:
    if not page:
        return []
    if not all(pk in shown for pk, _ in page):
        rows = await reader.fetch(
            "hits",
            lambda: f"SELECT r.id, {_DISPLAY} FROM records r WHERE r.id IN :pks",  # noqa: S608 - generated placeholders and constants; values are bound
            {"pks": [pk for pk, _ in page]},
            "pks",
        )
        shown = {row[0]: tuple(row[1:]) for row in rows}
    hits = []
    for pk, score in page:
        row = shown.get(pk)
        if row is None:
            continue
        hits.append(
            Hit(
                record_pk=pk,
                record_id=row[0],
                title=row[1],
                subtitle=row[9],
                author=row[2],
                publisher=row[3],
                pub_date=row[4],
                call_number=row[5],
                clc=row[6],
                score=score,
                on_shelf=int(row[7]),
                copies=int(row[8]),
            )
        )
    return hits


# ---------------------------------------------------------------------------------------------
# Public API


# One query for each common statement shape (Chinese of 2, 3, 4+ characters, pinyin, a volume,
# a wrapped subject, two runs, ISBN, class, call number).
WARM_UP_QUERIES = (
    "预热",
    "预热吧",
    "预热程序",
    "预热程序设计与实践",
    "yure",
    "yurechengxu",
    "yrcx",
    "预热3",
    "预热程序第三册",
    "有没有预热的书",
    "预热 程序",
    "Python预热",
    "9787544270878",
    "9787544270879",
    "I247.5",
    "I247.5/Y75",
)


class SearchEngine:
    """The catalogue's search: built once per process and passed to whoever searches or
    indexes (handlers get it from the dispatcher as ``search``; the importer as ``indexer``).

    ``cache_dir`` holds jieba's dictionary cache; ``clc_source`` a CLC tree (json or csv) for
    class names, else the project's own table of main classes.
    """

    def __init__(self, *, cache_dir: Path, clc_source: Path | None = None) -> None:
        self.segmenter = Segmenter(cache_dir)
        self.pinyin = Pinyin()
        self.indexer = Indexer(
            pinyin=self.pinyin, segmenter=self.segmenter, classes=ClassNames(clc_source)
        )
        self._statements: dict[Any, _Statement] = {}
        self._warm = False

    async def warm_up(self, session: AsyncSession) -> float:
        """Load jieba, OpenCC and pypinyin and teach jieba the library's words; returns seconds.

        Runs once (search calls it on first use); a service calls it at start-up so the first
        reader does not wait ~2 s. Then it runs WARM_UP_QUERIES.
        """
        started = time.perf_counter()
        if not self._warm:
            self.segmenter.load()
            normalize("預熱")
            self.pinyin.compact("预热")
            rows = await session.execute(
                select(KEYS.c.key).where(
                    KEYS.c.kind.in_((KeyKind.TITLE, KeyKind.AUTHOR, KeyKind.SERIES))
                )
            )
            self.segmenter.add_library_words(key for (key,) in rows)
            self._warm = True
            # The statement shapes most queries use: prepared now (PostgreSQL) and in SQLite's
            # statement cache, so the first readers do not pay for it.
            for query in WARM_UP_QUERIES:
                await self.search(session, query)
        return time.perf_counter() - started

    async def index_records(self, session: AsyncSession, record_pks: Iterable[int]) -> int:
        return await self.indexer.index_records(session, record_pks)

    async def rebuild_index(self, session: AsyncSession) -> int:
        return await self.indexer.rebuild_index(session)

    async def search(
        self, session: AsyncSession, query: str, *, limit: int = 10, offset: int = 0
    ) -> SearchResult:
        """Search the catalogue; hits ``offset .. offset+limit`` of at most MAX_TOTAL, best
        first. Never raises on odd input: empty, huge, emoji-only or SQL/FTS-looking queries
        just give few or no hits. ``query`` in the result is the normalised text searched.
        """
        if not self._warm:
            await self.warm_up(session)
        reader = await _Reader.of(session, self._statements)
        limit = max(0, min(int(limit), MAX_TOTAL))
        offset = max(0, int(offset))
        normalised = normalize_query(query or "")
        if not normalised:
            return SearchResult(query="", kind="empty", total=0, hits=[])
        kind = "text"
        ranked: list[tuple[int, float]] = []
        shown: dict[int, Display] = {}
        near: list[int] = []
        found = recognise(query.strip()[:100])
        if found is None and normalised.replace(" ", "") in CLASS_WORDS:
            found = Recognised("clc", CLASS_WORDS[normalised.replace(" ", "")])
        if found is not None:
            ranked = await _structured(reader, found)
            if found.kind == "isbn" and not found.value:
                near = await _isbn_neighbours(reader, query)
            # An ISBN or call number that is not in the catalogue finds nothing: a text search
            # on "I247.5/S77" would only match stray digits. A class code may also be a word.
            if ranked or found.kind != "clc":
                kind = found.kind
        if kind == "text":
            ranked, shown, near = await _text_search(
                reader, normalised, self.pinyin, self.segmenter
            )
        page = ranked[offset : offset + limit]
        hits = await _hits(reader, page, shown)
        suggestions = [] if ranked else await _suggestions(reader, near)
        return SearchResult(
            query=normalised, kind=kind, total=len(ranked), hits=hits, suggestions=suggestions
        )


async def _isbn_neighbours(reader: _Reader, query: str) -> list[int]:
    """Records whose ISBN is one digit (or one swap) away from a mistyped one."""
    candidates = one_digit_away(query.strip()[:100])
    if not candidates:
        return []
    rows = await reader.fetch(
        "isbn-near",
        lambda: (
            "SELECT k.record_pk FROM search_keys k JOIN records r ON r.id = k.record_pk "  # noqa: S608 - generated placeholders and constants; values are bound
            "WHERE k.kind = :kind AND k.key IN :keys ORDER BY r.loan_count DESC, k.record_pk "
            f"LIMIT {MAX_SUGGESTIONS}"
        ),
        {"kind": KeyKind.ISBN, "keys": candidates},
        "keys",
    )
    return [row[0] for row in rows]


async def _suggestions(reader: _Reader, pks: Sequence[int]) -> list[Suggestion]:
    if not pks:
        return []
    rows = await reader.fetch(
        "suggest",
        lambda: "SELECT id, record_id, title, authors, isbn FROM records WHERE id IN :pks",
        {"pks": list(pks)},
        "pks",
    )
    by_pk = {row[0]: row for row in rows}
    return [
        Suggestion(pk, by_pk[pk][1], by_pk[pk][2], by_pk[pk][3], by_pk[pk][4])
        for pk in pks
        if pk in by_pk
    ]
