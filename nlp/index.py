"""Filling the search index (storage/search_tables.py) from records.

``index_records`` is called inside the writer's transaction (the importer, catalogue edits), so
the index changes atomically with the records. It deletes a record's rows and writes them again:
re-indexing is idempotent and an edited title loses its old terms.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp import segment
from nlp.normalize import (
    author_names,
    name_parts,
    normalize_many,
    script_runs,
    strip_publisher_suffix,
)
from nlp.pinyin import pinyin_keys
from nlp.recognise import isbn13, normalize_call_number, normalize_clc
from storage.models import Record
from storage.search_tables import KEY_LENGTH, TERM_LENGTH, SearchKey, SearchTerm

__all__ = [
    "FIELD_WEIGHTS",
    "Field",
    "KeyKind",
    "document_keys",
    "document_terms",
    "documents",
    "index_records",
    "rebuild_index",
    "stats",
    "terms_of",
]

RECORDS = cast(Table, Record.__table__)
TERMS = cast(Table, SearchTerm.__table__)
KEYS = cast(Table, SearchKey.__table__)

CHUNK = 2000  # records per statement group (IN lists stay well under both databases' limits)
# Keys that also teach jieba the library's vocabulary: titles, author names, series.
_LIBRARY_WORD_KINDS = frozenset("tas")


class Field:
    """Bits of ``search_terms.fields``."""

    TITLE = 1
    SUBTITLE = 2
    AUTHOR = 4
    TRANSLATOR = 8
    SERIES = 16
    ORIGINAL = 32
    PUBLISHER = 64


# How much a match in each field counts (the best field of a term wins).
FIELD_WEIGHTS: dict[int, float] = {
    Field.TITLE: 1.0,
    Field.SUBTITLE: 0.8,
    Field.AUTHOR: 0.9,
    Field.TRANSLATOR: 0.5,
    Field.SERIES: 0.7,
    Field.ORIGINAL: 0.8,
    Field.PUBLISHER: 0.6,
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


@dataclass
class IndexStats:
    """Time spent indexing in this process (the benchmark reports it apart from the import)."""

    records: int = 0
    seconds: float = 0.0


stats = IndexStats()


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


def _prepare(rows: Sequence[Any]) -> list[_Prepared]:
    texts: list[str | None] = []
    shapes: list[tuple[int, int, int]] = []
    for row in rows:
        names = author_names(row.authors)
        surnames = [parts[-1] for parts in (name_parts(n) for n in names) if len(parts) > 1]
        translators = author_names(row.translators)
        title_subtitle = f"{row.title} {row.subtitle}" if row.subtitle else None
        texts += [row.title, title_subtitle, row.subtitle, row.series, row.original_title]
        texts += [row.publisher, *names, *surnames, *translators]
        shapes.append((len(names), len(surnames), len(translators)))
    done = normalize_many(texts)
    out: list[_Prepared] = []
    at = 0
    for row, (n_names, n_surnames, n_translators) in zip(rows, shapes, strict=True):
        title, title_subtitle, subtitle, series, original, publisher = done[at : at + 6]
        at += 6
        names = done[at : at + n_names]
        at += n_names
        surnames = done[at : at + n_surnames]
        at += n_surnames
        translators = done[at : at + n_translators]
        at += n_translators
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
            )
        )
    return out


def document_terms(doc: _Prepared) -> dict[str, int]:
    """term → field bits for one record."""
    terms: dict[str, int] = {}

    def add(text: str, bit: int) -> None:
        for term in terms_of(text):
            terms[term] = terms.get(term, 0) | bit

    add(doc.title, Field.TITLE)
    add(doc.subtitle, Field.SUBTITLE)
    for name in doc.authors:
        add(name, Field.AUTHOR)
    for name in doc.translators:
        add(name, Field.TRANSLATOR)
    add(doc.series, Field.SERIES)
    add(doc.original, Field.ORIGINAL)
    add(doc.publisher, Field.PUBLISHER)
    return terms


def document_keys(doc: _Prepared) -> set[tuple[str, str]]:
    """(kind, key) pairs for one record."""
    keys: set[tuple[str, str]] = set()

    def add(kind: str, key: str) -> None:
        if key:
            keys.add((kind, key[:KEY_LENGTH]))

    add(KeyKind.TITLE, doc.title.replace(" ", ""))
    add(KeyKind.TITLE, doc.title_subtitle.replace(" ", ""))
    full, initials = pinyin_keys(doc.title)
    for key in full:
        add(KeyKind.PINYIN, key)
    for key in initials:
        add(KeyKind.INITIALS, key)
    for name in doc.authors:
        add(KeyKind.AUTHOR, name.replace(" ", ""))
    for surname in doc.surnames:
        if len(surname) >= 2:
            add(KeyKind.AUTHOR, surname.replace(" ", ""))
    add(KeyKind.ORIGINAL, doc.original.replace(" ", ""))
    add(KeyKind.SERIES, doc.series.replace(" ", ""))
    add(KeyKind.ISBN, isbn13(doc.isbn) or "")
    add(KeyKind.CALL_NUMBER, normalize_call_number(doc.call_number))
    add(KeyKind.CLC, normalize_clc(doc.clc))
    return keys


def documents(rows: Sequence[Any]) -> list[tuple[int, dict[str, int], set[tuple[str, str]]]]:
    """(pk, terms, keys) for rows with the Record column names (id, title, authors, ...)."""
    return [(doc.pk, document_terms(doc), document_keys(doc)) for doc in _prepare(rows)]


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
)


async def _insert(session: AsyncSession, table: Table, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        # Tuples straight to the driver: a third faster than SQLAlchemy's dict executemany,
        # which matters at a million rows.
        columns = ", ".join(c.name for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        await connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows
        )
    else:
        names = [c.name for c in table.columns]
        await session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])


async def _index_chunk(session: AsyncSession, pks: Sequence[int], *, fresh: bool) -> int:
    if not fresh:
        await session.execute(delete(TERMS).where(TERMS.c.record_pk.in_(pks)))
        await session.execute(delete(KEYS).where(KEYS.c.record_pk.in_(pks)))
    result = await session.execute(
        select(*[RECORDS.c[name] for name in _COLUMNS]).where(RECORDS.c.id.in_(pks))
    )
    term_rows: list[tuple[str, int, int]] = []
    key_rows: list[tuple[str, str, int]] = []
    words: list[str] = []
    docs = documents(result.all())
    for pk, terms, keys in docs:
        term_rows.extend((term, pk, bits) for term, bits in terms.items())
        for kind, key in keys:
            key_rows.append((kind, key, pk))
            if kind in _LIBRARY_WORD_KINDS:
                words.append(key)
    # Sorted inserts touch each B-tree page once per chunk instead of at random.
    term_rows.sort()
    key_rows.sort()
    await _insert(session, TERMS, term_rows)
    await _insert(session, KEYS, key_rows)
    segment.add_library_words(words)
    return len(docs)


async def index_records(session: AsyncSession, record_pks: Iterable[int]) -> int:
    """(Re)index these records inside the caller's transaction; returns how many were indexed.

    Records that no longer exist are simply dropped from the index.
    """
    started = time.perf_counter()
    pks = sorted(set(record_pks))
    count = 0
    for chunk in _chunks(pks, CHUNK):
        count += await _index_chunk(session, chunk, fresh=False)
    stats.records += count
    stats.seconds += time.perf_counter() - started
    return count


async def rebuild_index(session: AsyncSession) -> int:
    """Drop and rebuild the whole index from the records table; returns the number of records."""
    started = time.perf_counter()
    await session.execute(delete(TERMS))
    await session.execute(delete(KEYS))
    result = await session.execute(select(RECORDS.c.id).order_by(RECORDS.c.id))
    pks = [pk for (pk,) in result]
    count = 0
    for chunk in _chunks(pks, CHUNK):
        count += await _index_chunk(session, chunk, fresh=True)
    stats.records += count
    stats.seconds += time.perf_counter() - started
    return count
