"""Filling the search index (storage/search_tables.py) from records.

``Indexer.index_records`` is called inside the writer's transaction (the importer, catalogue
edits), so the index changes atomically with the records. It deletes a record's rows and writes
them again: re-indexing is idempotent and an edited title loses its old terms. The search engine
owns one Indexer (nlp.search.SearchEngine.indexer); the importer gets it injected.

Besides titles, names, series and publishers, a record is indexed by its subjects (tags and CLC
class names, nlp.subjects), its summary (weighted low), the pinyin of its authors'
names (full, initials, surname and given name), a folded pinyin of its title (nlp.pinyin.
fuzzy_pinyin), the sorted characters of its title (two swapped characters still match) and
the title with each one character left out (``KeyKind.DELETION``: a title typed with a character
missing, added, swapped or wrong is one equality lookup away, whatever its other characters).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.normalize import (
    author_names,
    has_number,
    name_parts,
    normalize_many,
    numbers_canonical,
    publisher_aliases,
    script_runs,
    strip_publisher_suffix,
)
from nlp.pinyin import Pinyin, fuzzy_pinyin, has_han, initials_of
from nlp.recognise import isbn13, normalize_call_number, normalize_clc
from nlp.segment import Segmenter
from nlp.subjects import ClassNames, split_tags
from storage.bulk import insert_rows
from storage.models import Copy, Record
from storage.search_tables import KEY_LENGTH, TERM_LENGTH, SearchKey, SearchMeta, SearchTerm

__all__ = [
    "CATALOGUE_TABLES",
    "FIELD_WEIGHTS",
    "INDEX_TABLES",
    "Field",
    "IndexStats",
    "Indexer",
    "KeyKind",
    "anagram",
    "analyze",
    "deletions",
    "subject_key",
    "terms_of",
]

RECORDS = cast(Table, Record.__table__)
TERMS = cast(Table, SearchTerm.__table__)
KEYS = cast(Table, SearchKey.__table__)
INDEX_TABLES = (TERMS.name, KEYS.name)
# Raise it whenever what the index holds for a record changes (new key kinds or terms, another
# normalisation): an index written by older code is then rebuilt at start-up (Indexer.refresh).
INDEX_VERSION = "3"
# One writer of the index at a time on PostgreSQL (SQLite's BEGIN IMMEDIATE already makes one):
# a start-up refresh beside an import, or two workers starting together, would write the same rows.
INDEX_LOCK = 0x53485849  # "SHXI"
# What a catalogue import bulk-loads: the statistics and the VACUUM after it cover these.
CATALOGUE_TABLES = (RECORDS.name, cast(Table, Copy.__table__).name, *INDEX_TABLES)


class _ChunkRows(NamedTuple):
    records: int
    terms: list[tuple[str, int, int]]
    keys: list[tuple[str, str, int]]
    words: list[str]  # for the segmenter


CHUNK = 2000  # records per statement group (IN lists stay well under both databases' limits)
# Keys that also teach jieba the library's vocabulary: titles, author names, series.
_LIBRARY_WORD_KINDS = frozenset("tas")
SUMMARY_CHARS = 2000  # summaries are short (median 117 characters); a runaway one is cut
MAX_SUBJECT_RANK = 9  # subject keys carry the subject's place among the record's subjects
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "司徒",
        "长孙",
        "宇文",
        "夏侯",
        "端木",
        "独孤",
    ]
)


class Field:
    """Bits of ``search_terms.fields``."""

    TITLE = 1
    SUBTITLE = 2
    AUTHOR = 4
    TRANSLATOR = 8
    SERIES = 16
    ORIGINAL = 32
    PUBLISHER = 64
    SUBJECT = 128
    SUMMARY = 256
    GIVEN_NAME = 512  # the pinyin of an author's given name alone ("liu cixin" → cixin)


# How much a match in each field counts (the best field of a term wins).
FIELD_WEIGHTS: dict[int, float] = {
    Field.TITLE: 1.0,
    Field.SUBTITLE: 0.8,
    Field.AUTHOR: 0.9,
    Field.TRANSLATOR: 0.5,
    Field.SERIES: 0.7,
    Field.ORIGINAL: 0.8,
    Field.PUBLISHER: 0.6,
    Field.SUBJECT: 0.6,
    Field.SUMMARY: 0.25,
    Field.GIVEN_NAME: 0.5,
}


class KeyKind:
    """Values of ``search_keys.kind``."""

    TITLE = "t"  # compact normalised title (and title + subtitle)
    PINYIN = "p"  # full pinyin of the title, up to two readings
    INITIALS = "i"  # pinyin initials of the title
    AUTHOR = "a"  # an author's compact name, and the surname part of transliterated names
    ORIGINAL = "o"  # original-language title
    SERIES = "s"
    ISBN = "b"
    CALL_NUMBER = "n"
    CLC = "c"
    SUBJECT = "g"  # "科幻#0": a subject and its rank among the record's subjects (0 = central)
    FUZZY = "f"  # title pinyin with the usual slips folded (nlp.pinyin.fuzzy_pinyin)
    ANAGRAM = "x"  # the title's characters, sorted
    AUTHOR_PINYIN = "q"  # a Chinese author name's full pinyin
    AUTHOR_INITIALS = "j"  # ... and its initials
    DELETION = "d"  # the compact title with one character left out (DELETION_LENGTHS long)
    NUMBERS = "u"  # a title with a number, every number in digits (normalize.numbers_canonical)


def subject_key(subject: str, rank: int) -> str:
    """``#`` never occurs in a normalised key: a scan of the prefix "科幻#" reads central books
    first."""
    return f"{subject}#{min(rank, MAX_SUBJECT_RANK)}"


def anagram(compact_title: str) -> str:
    return "".join(sorted(compact_title))


# Titles this long (compact) get deletion keys: shorter ones would collide with every other
# short title, and longer ones are found by their many rare bigrams anyway. About 9 keys a title.
DELETION_LENGTHS = range(4, 21)


def deletions(compact: str) -> set[str]:
    """The string with each one of its characters left out (a symmetric-deletion neighbourhood:
    two strings one edit apart share one of these, or one is among the other's)."""
    return {compact[:i] + compact[i + 1 :] for i in range(len(compact))}


def _name_split(name: str) -> tuple[str, str] | None:
    """(surname, given name) of a Chinese (or Japanese) name written in Han characters."""
    if not 2 <= len(name) <= 4 or not all("\u4e00" <= ch <= "\u9fff" for ch in name):
        return None
    cut = 2 if len(name) == 4 or name[:2] in COMPOUND_SURNAMES else 1
    return name[:cut], name[cut:]


@dataclass
class IndexStats:
    """Time spent indexing by one Indexer (the benchmark reports it apart from the import)."""

    records: int = 0
    seconds: float = 0.0


def terms_of(normalised: str) -> Iterator[str]:
    """Index terms of normalised text: CJK bigrams (a lone character stands alone), Latin words."""
    for cjk, run in script_runs(normalised):
        if not cjk or len(run) == 1:
            yield run[:TERM_LENGTH]
        else:
            for i in range(len(run) - 1):
                yield run[i : i + 2]


@dataclass(slots=True)
class _Prepared:
    """A record's fields, normalised (one OpenCC call per chunk of records)."""

    pk: int
    title: str
    title_subtitle: str  # "" without a subtitle
    subtitle: str
    authors: list[str]
    surnames: list[str]
    translators: list[str]
    series: str
    original: str
    publisher: str
    isbn: str | None
    clc: str | None
    call_number: str | None
    subjects: list[str]  # tags, then class names, the most central first
    summary: str


def _prepare(rows: Sequence[Any], classes: ClassNames) -> list[_Prepared]:
    texts: list[str | None] = []
    shapes: list[tuple[int, int, int, int]] = []
    for row in rows:
        names = author_names(row.authors)
        surnames = [parts[-1] for parts in (name_parts(n) for n in names) if len(parts) > 1]
        translators = author_names(row.translators)
        subjects = split_tags(row.tags) + classes.path(row.clc)
        title_subtitle = f"{row.title} {row.subtitle}" if row.subtitle else None
        summary = (row.summary or "")[:SUMMARY_CHARS]
        texts += [row.title, title_subtitle, row.subtitle, row.series, row.original_title]
        texts += [row.publisher, summary, *names, *surnames, *translators, *subjects]
        shapes.append((len(names), len(surnames), len(translators), len(subjects)))
    done = normalize_many(texts)
    out: list[_Prepared] = []
    at = 0
    for row, (n_names, n_surnames, n_translators, n_subjects) in zip(rows, shapes, strict=True):
        title, title_subtitle, subtitle, series, original, publisher, summary = done[at : at + 7]
        at += 7
        names = done[at : at + n_names]
        at += n_names
        surnames = done[at : at + n_surnames]
        at += n_surnames
        translators = done[at : at + n_translators]
        at += n_translators
        subjects = done[at : at + n_subjects]
        at += n_subjects
        out.append(
            _Prepared(
                pk=row.id,
                title=title,
                title_subtitle=title_subtitle,
                subtitle=subtitle,
                authors=names,
                surnames=surnames,
                translators=translators,
                series=series,
                original=original,
                publisher=strip_publisher_suffix(publisher) if publisher else "",
                isbn=row.isbn,
                clc=row.clc,
                call_number=row.call_number,
                subjects=[s for s in dict.fromkeys(subjects) if s],
                summary=summary,
            )
        )
    return out


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_COLUMNS = (
    "id",
    "title",
    "subtitle",
    "authors",
    "translators",
    "publisher",
    "series",
    "original_title",
    "isbn",
    "clc",
    "call_number",
    "tags",
    "summary",
)


async def analyze(session: AsyncSession, *tables: str) -> None:
    """Refresh the planner's statistics after a bulk load (PostgreSQL chooses plans by them;
    right after an import they still describe the empty tables)."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return  # SQLite's plans here do not need statistics (and its ANALYZE reads everything)
    names = tables or CATALOGUE_TABLES
    for name in names:
        await connection.exec_driver_sql(f"ANALYZE {name}")


class Indexer:
    """Writes records' terms and keys; one per search engine (it keeps the pinyin caches)."""

    def __init__(
        self,
        *,
        pinyin: Pinyin | None = None,
        segmenter: Segmenter | None = None,
        classes: ClassNames | None = None,
    ) -> None:
        self.pinyin = pinyin or Pinyin()
        self.segmenter = segmenter  # taught the new titles when it is loaded
        self.classes = classes or ClassNames()
        self.stats = IndexStats()

    # -- one record ------------------------------------------------------------------------

    def documents(
        self, rows: Sequence[Any]
    ) -> list[tuple[int, dict[str, int], set[tuple[str, str]]]]:
        """(pk, terms, keys) for rows with the Record column names (id, title, authors, ...)."""
        return [
            (doc.pk, self.document_terms(doc), self.document_keys(doc))
            for doc in _prepare(rows, self.classes)
        ]

    def _name_pinyin(self, name: str) -> tuple[str, str, tuple[str, str]] | None:
        """(full, initials, (surname, given name)) pinyin of a Chinese author name."""
        split = _name_split(name.replace(" ", ""))
        if split is None:
            return None
        surname, given = (self.pinyin.syllables(part, phrases=False) for part in split)
        spoken = ("".join(surname), "".join(given))
        return "".join(spoken), initials_of(surname + given), spoken

    def document_terms(self, doc: _Prepared) -> dict[str, int]:
        """term → field bits for one record."""
        terms: dict[str, int] = {}

        def add(text: str, bit: int) -> None:
            for term in terms_of(text):
                terms[term] = terms.get(term, 0) | bit

        def add_name(name: str, bit: int) -> None:
            add(name, bit)
            if " " in name and has_han(name):
                # A transliterated name typed without its dots: "卡勒德胡赛尼" has 德胡 too.
                add(name.replace(" ", ""), bit)

        add(doc.title, Field.TITLE)
        add(doc.subtitle, Field.SUBTITLE)
        for name in doc.authors:
            add_name(name, Field.AUTHOR)
            spoken = self._name_pinyin(name)
            if spoken is not None:
                full, initials, (surname, given) = spoken
                add(f"{full} {initials} {surname}", Field.AUTHOR)
                add(given, Field.GIVEN_NAME)
        for name in doc.translators:
            add_name(name, Field.TRANSLATOR)
        add(doc.series, Field.SERIES)
        add(doc.original, Field.ORIGINAL)
        add(doc.publisher, Field.PUBLISHER)
        add(" ".join(publisher_aliases(doc.publisher)), Field.PUBLISHER)  # 人民文学 → 人文
        for subject in doc.subjects:
            add(subject, Field.SUBJECT)
        add(doc.summary, Field.SUMMARY)
        return terms

    def _title_keys(self, doc: _Prepared, add: Callable[[str, str], None]) -> None:
        title = doc.title.replace(" ", "")
        add(KeyKind.TITLE, title)
        add(KeyKind.TITLE, doc.title_subtitle.replace(" ", ""))
        full, initials = self.pinyin.keys(doc.title)
        for key in full:
            add(KeyKind.PINYIN, key)
            add(KeyKind.FUZZY, fuzzy_pinyin(key))
        for key in initials:
            add(KeyKind.INITIALS, key)
        if len(title) >= 3 and has_han(title):
            add(KeyKind.ANAGRAM, anagram(title))
        if len(title) in DELETION_LENGTHS:
            for key in deletions(title):
                add(KeyKind.DELETION, key)
        if has_number(title):
            add(KeyKind.NUMBERS, numbers_canonical(title))
            if doc.title_subtitle:
                add(KeyKind.NUMBERS, numbers_canonical(doc.title_subtitle.replace(" ", "")))

    def document_keys(self, doc: _Prepared) -> set[tuple[str, str]]:
        """(kind, key) pairs for one record."""
        keys: set[tuple[str, str]] = set()

        def add(kind: str, key: str) -> None:
            if key:
                keys.add((kind, key[:KEY_LENGTH]))

        self._title_keys(doc, add)
        for name in doc.authors:
            add(KeyKind.AUTHOR, name.replace(" ", ""))
            spoken = self._name_pinyin(name)
            if spoken is not None:
                add(KeyKind.AUTHOR_PINYIN, spoken[0])
                add(KeyKind.AUTHOR_INITIALS, spoken[1])
        for surname in doc.surnames:
            if len(surname) >= 2:
                add(KeyKind.AUTHOR, surname.replace(" ", ""))
        for rank, subject in enumerate(doc.subjects):
            add(KeyKind.SUBJECT, subject_key(subject.replace(" ", ""), rank))
        add(KeyKind.ORIGINAL, doc.original.replace(" ", ""))
        add(KeyKind.SERIES, doc.series.replace(" ", ""))
        add(KeyKind.ISBN, isbn13(doc.isbn) or "")
        add(KeyKind.CALL_NUMBER, normalize_call_number(doc.call_number))
        add(KeyKind.CLC, normalize_clc(doc.clc))
        return keys

    # -- writing ---------------------------------------------------------------------------

    async def _fetch(self, session: AsyncSession, pks: Sequence[int], *, fresh: bool) -> list[Any]:
        if not fresh:
            await session.execute(delete(TERMS).where(TERMS.c.record_pk.in_(pks)))
            await session.execute(delete(KEYS).where(KEYS.c.record_pk.in_(pks)))
        result = await session.execute(
            select(*[RECORDS.c[name] for name in _COLUMNS]).where(RECORDS.c.id.in_(pks))
        )
        return list(result.all())

    def _rows(self, records: Sequence[Any]) -> _ChunkRows:
        """The index rows of these records, sorted (pure CPU: runs in a worker thread)."""
        term_rows: list[tuple[str, int, int]] = []
        key_rows: list[tuple[str, str, int]] = []
        words: list[str] = []
        for pk, terms, keys in self.documents(records):
            term_rows.extend((term, pk, bits) for term, bits in terms.items())
            for kind, key in keys:
                key_rows.append((kind, key, pk))
                if kind in _LIBRARY_WORD_KINDS:
                    words.append(key)
        # Sorted inserts touch each B-tree page once per chunk instead of at random.
        term_rows.sort()
        key_rows.sort()
        return _ChunkRows(len(records), term_rows, key_rows, words)

    async def _write(self, session: AsyncSession, rows: _ChunkRows) -> None:
        await insert_rows(session, TERMS, rows.terms)
        await insert_rows(session, KEYS, rows.keys)
        if self.segmenter is not None:
            self.segmenter.add_library_words(rows.words)

    async def _index(self, session: AsyncSession, pks: Sequence[int], *, fresh: bool) -> int:
        """Index ``pks`` chunk by chunk. The rows are worked out in a thread, so the event loop
        stays free for other updates meanwhile. On PostgreSQL one chunk's rows are worked out
        while the server writes the previous one's: its work and Python's overlap on two cores
        instead of taking turns. SQLite writes in this process and binds under the GIL, so
        there the two would only slow each other down: it writes each chunk before the next."""
        await _lock_index(session)
        overlap = (await session.connection()).dialect.name == "postgresql"
        count = 0
        pending: _ChunkRows | None = None  # worked out, not yet written
        for chunk in _chunks(pks, CHUNK):
            records = await self._fetch(session, chunk, fresh=fresh)
            working = asyncio.ensure_future(asyncio.to_thread(self._rows, records))
            try:
                if pending is not None:
                    await self._write(session, pending)
                    pending = None
            except BaseException:
                # Never leave the thread's work behind: wait for it, then fail as the write did.
                await asyncio.wait([working])
                if not working.cancelled():
                    working.exception()  # retrieved, so asyncio does not log it again
                raise
            rows = await working
            count += rows.records
            if overlap:
                pending = rows
            else:
                await self._write(session, rows)
        if pending is not None:
            await self._write(session, pending)
        return count

    async def index_records(self, session: AsyncSession, record_pks: Iterable[int]) -> int:
        """(Re)index these records inside the caller's transaction; returns how many were
        indexed. Records that no longer exist are simply dropped from the index."""
        started = time.perf_counter()
        await _lock_index(session)
        # Into an empty index (a first import): everything in it is this code's, so it is current.
        first = (
            await session.scalar(select(KEYS.c.record_pk).limit(1)) is None
            and await session.scalar(select(SearchMeta.name).where(SearchMeta.name == "version"))
            is None
        )
        count = await self._index(session, sorted(set(record_pks)), fresh=False)
        if first:
            await _set_version(session)
        self.stats.records += count
        self.stats.seconds += time.perf_counter() - started
        return count

    async def rebuild_index(self, session: AsyncSession) -> int:
        """Drop and rebuild the whole index from the records table; returns the number of
        records. The statistics are refreshed after."""
        started = time.perf_counter()
        await _lock_index(session)
        await session.execute(delete(TERMS))
        await session.execute(delete(KEYS))
        result = await session.execute(select(RECORDS.c.id).order_by(RECORDS.c.id))
        pks = [pk for (pk,) in result]
        count = await self._index(session, pks, fresh=True)
        await analyze(session, *INDEX_TABLES)
        await _set_version(session)
        self.stats.records += count
        self.stats.seconds += time.perf_counter() - started
        return count

    async def stale(self, session: AsyncSession) -> bool:
        """Whether records are indexed by code that indexed differently: read only, so a bot
        starting while the desk or an import holds SQLite's write lock is not held up."""
        stored = await session.scalar(select(SearchMeta.value).where(SearchMeta.name == "version"))
        if stored == INDEX_VERSION:
            return False
        return await session.scalar(select(RECORDS.c.id).limit(1)) is not None

    async def refresh(self, session: AsyncSession) -> int | None:
        """Rebuild an index written by code that indexed differently (or by a version that kept
        no version); returns the number of records rebuilt, or None when it was current."""
        await _lock_index(session)  # the second of two workers starting together finds it done
        stored = await session.scalar(select(SearchMeta.value).where(SearchMeta.name == "version"))
        if stored == INDEX_VERSION:
            return None
        if await session.scalar(select(RECORDS.c.id).limit(1)) is None:
            await _set_version(session)  # nothing to index yet: what gets indexed is current
            return 0
        return await self.rebuild_index(session)


async def _lock_index(session: AsyncSession) -> None:
    """Held to the end of the caller's transaction; taken again in it, it is taken at once."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INDEX_LOCK})


async def _set_version(session: AsyncSession) -> None:
    await session.execute(delete(SearchMeta).where(SearchMeta.name == "version"))
    session.add(SearchMeta(name="version", value=INDEX_VERSION))
    await session.flush()
