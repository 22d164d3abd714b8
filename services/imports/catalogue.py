"""Catalogue and reader-roster importers.

Files are read by services.imports.files (CSV in UTF-8 or GB18030/GBK, Excel sheets, Chinese
headers) or services.imports.marc (CNMARC, ISO 2709 or MARCXML); each row is checked by its model in
services.imports.rows. Both importers read and validate the whole file before writing anything.
They work in the caller's session and unit of work: they flush but never commit or open a
transaction, so the import (search index and audit entry included) is committed, or rolled back,
with the rest of the caller's transaction. In the default mode any bad row rejects the file
(``ImportRejected`` lists every problem with its line, sheet row or record number) before anything
is written; with ``skip_bad`` the good rows go in and the report lists the skipped ones. Imports
are idempotent: records are keyed by ``record_id`` (a file without control numbers gets stable
ones, see ``stable_record_id``), readers by ``card_no``, and only rows whose values changed are
written.

Speed matters (an 81k-title catalogue must load in seconds), so the writes are bulk Core
statements in chunks, and the existing rows are loaded up front in one query per table and
compared in Python. Being Core statements, the writes do not refresh ORM objects the caller loaded
earlier in the same session.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.index import Indexer, analyze
from services.audit import record_audit
from services.i18n import t
from services.imports.files import (
    FileFormat,
    ImportFileError,
    ImportRejected,
    RowProblem,
    TableFile,
    Unit,
    check_import_file,
    detect_format,
    open_table,
    problems_by_line,
    read_bytes,
    role_words,
)
from services.imports.marc import MarcHoldings, marc_table
from services.imports.rows import MAX_COPIES_PER_ROW, CatalogueRow, ReaderRow, cells, row_reasons
from storage.bulk import insert_rows
from storage.models import Copy, CopyStatus, Reader, Record, utcnow

__all__ = [
    "MAX_COPIES_PER_ROW",
    "CatalogueReport",
    "ImportFileError",
    "ImportRejected",
    "MarcHoldings",
    "ReaderReport",
    "RowProblem",
    "check_import_file",
    "generated_barcode",
    "import_catalogue",
    "import_readers",
    "open_catalogue",
    "stable_record_id",
]

RECORDS = cast(Table, Record.__table__)
COPIES = cast(Table, Copy.__table__)
READERS = cast(Table, Reader.__table__)

CHUNK_ROWS = 2000
_SPACES = re.compile(r"\s+")


def generated_barcode(record_pk: int, n: int) -> str:
    """The barcode of the n-th (1-based) copy minted for a record that came without barcodes."""
    return f"G{record_pk:08d}-{n}"


# CSV column -> Record attribute, in the order the field tuples are compared.
_CATALOGUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("isbn", "isbn"),
    ("title", "title"),
    ("subtitle", "subtitle"),
    ("author", "authors"),
    ("translator", "translators"),
    ("publisher", "publisher"),
    ("pub_date", "pub_date"),
    ("clc", "clc"),
    ("call_number", "call_number"),
    ("series", "series"),
    ("original_title", "original_title"),
    ("tags", "tags"),
    ("summary", "summary"),
)
RECORD_FIELDS: tuple[str, ...] = tuple(attr for _, attr in _CATALOGUE_COLUMNS)
_TITLE_INDEX = RECORD_FIELDS.index("title")
_ISBN_INDEX = RECORD_FIELDS.index("isbn")
_TAGS_INDEX = RECORD_FIELDS.index("tags")

READER_FIELDS: tuple[str, ...] = ("name", "role", "grade", "class_name", "office")


def _max_length(table: Table, column: str) -> int | None:
    return getattr(table.c[column].type, "length", None)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class CatalogueReport:
    rows: int = 0  # data rows (or MARC records) read from the file
    records_created: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    copies_added: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    # Over-long values cut to the column size; the row was still imported.
    truncated: list[RowProblem] = field(default_factory=list)
    elapsed_s: float = 0.0
    source: str = ""  # what was read: format, encoding or sheet
    unknown_columns: tuple[str, ...] = ()  # headers that map to no column: not imported
    generated_ids: bool = False  # the file had no control numbers; stable ids were derived
    unit: Unit = Unit.LINE  # what ``rows`` counts: MARC files count records


@dataclass(slots=True)
class ReaderReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    elapsed_s: float = 0.0
    source: str = ""
    unknown_columns: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Catalogue: reading and checking


def open_catalogue(
    path: Path, *, sheet: str | None = None, holdings: MarcHoldings | None = None
) -> TableFile:
    """A catalogue file of any supported format as canonical rows (MARC by content or extension)."""
    data = read_bytes(path)
    kind = detect_format(path, data[:4096])
    if kind in (FileFormat.ISO2709, FileFormat.MARCXML):
        if sheet is not None:
            raise ImportFileError(t("import.sheet_not_excel"))
        return marc_table(path, data, kind, holdings or MarcHoldings())
    return open_table(path, "catalogue", ("title",), sheet=sheet, data=data)


def _identity_text(value: str | None) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value or "")).strip().lower()


def stable_record_id(
    isbn: str | None, title: str, author: str | None, publisher: str | None
) -> str:
    """A record id for a file without control numbers, the same on every import of the book.

    From the (normalised, 13-digit) ISBN when there is one, else from title + author + publisher
    with case, width and spacing folded, so a re-export with other spacing still matches.
    """
    if isbn:
        return f"isbn:{isbn}"
    key = "\x1f".join(_identity_text(v) for v in (title, author, publisher))
    return "bib:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


class _CatalogueRow(NamedTuple):
    line: int
    record_id: str
    values: tuple[str | None, ...]  # in RECORD_FIELDS order
    barcodes: tuple[str, ...] | None  # None: mint ``copies`` barcodes
    copies: int
    location: str | None = None


@dataclass(slots=True)
class _ParsedCatalogue:
    rows: list[_CatalogueRow]
    problems: dict[int, list[str]]  # line -> reasons
    truncated: list[RowProblem]
    row_count: int
    # Indexes into RECORD_FIELDS of the columns the file has: a column left out of the file
    # says nothing, so it must not blank out what an earlier import stored.
    present: tuple[int, ...] = ()
    unit: Unit = Unit.LINE
    source: str = ""
    unknown: tuple[str, ...] = ()
    generated_ids: bool = False


class _CatalogueChecker:
    """The checks across rows: duplicate record ids (or merged copy rows) and barcodes."""

    def __init__(self, parsed: _ParsedCatalogue) -> None:
        self.parsed = parsed
        self.limits = [_max_length(RECORDS, attr) for attr in RECORD_FIELDS]
        self.position: dict[str, int] = {}  # record id -> index in parsed.rows
        self.first_line_of_barcode: dict[str, int] = {}

    def add(self, line: int, record_id: str, row: CatalogueRow) -> list[str]:
        values = self._values(line, row)
        reasons = self._barcode_reasons(line, row.barcodes)
        if reasons:
            return reasons
        new = _CatalogueRow(line, record_id, values, row.barcodes, row.copies, row.location)
        at = self.position.get(record_id)
        if at is None:
            self.position[record_id] = len(self.parsed.rows)
            self.parsed.rows.append(new)
            return []
        first = self.parsed.rows[at]
        merged = _merge_copy_rows(first, new)
        if merged is None:
            key = (
                "import.duplicate_generated_id"
                if self.parsed.generated_ids
                else ("import.duplicate_record_id")
            )
            return [t(key, record_id=record_id, line=first.line, title=row.title)]
        self.parsed.rows[at] = merged
        return []

    def _values(self, line: int, row: CatalogueRow) -> tuple[str | None, ...]:
        values: list[str | None] = [getattr(row, column) for column, _ in _CATALOGUE_COLUMNS]
        for i, limit in enumerate(self.limits):
            value = values[i]
            if limit is not None and value is not None and len(value) > limit:
                values[i] = value[:limit].rstrip()
                self.parsed.truncated.append(
                    RowProblem(
                        line,
                        t("import.truncated", column=_CATALOGUE_COLUMNS[i][0], limit=limit),
                        self.parsed.unit,
                    )
                )
        return tuple(values)

    def _barcode_reasons(self, line: int, barcodes: tuple[str, ...] | None) -> list[str]:
        reasons = []
        for barcode in barcodes or ():
            first = self.first_line_of_barcode.setdefault(barcode, line)
            if first != line:
                reasons.append(t("import.barcode_duplicate", barcode=barcode, line=first))
        return reasons


def _merge_copy_rows(first: _CatalogueRow, again: _CatalogueRow) -> _CatalogueRow | None:
    """Exports that list one row per copy repeat the book: merge them, or None if they differ."""
    if first.values != again.values:
        return None
    if first.barcodes is not None and again.barcodes is not None:
        return first._replace(
            barcodes=first.barcodes + again.barcodes,
            copies=len(first.barcodes) + len(again.barcodes),
        )
    if first.barcodes is None and again.barcodes is None:
        return first._replace(copies=min(first.copies + again.copies, MAX_COPIES_PER_ROW))
    return None


def _parse_catalogue(table: TableFile) -> _ParsedCatalogue:
    """Read and check every row that can be checked without the database."""
    has_ids = "record_id" in table.columns and table.unit is not Unit.RECORD
    parsed = _ParsedCatalogue(
        rows=[],
        problems={},
        truncated=[],
        row_count=0,
        present=tuple(
            i for i, (column, _) in enumerate(_CATALOGUE_COLUMNS) if column in table.columns
        ),
        unit=table.unit,
        source=table.source,
        unknown=table.unknown,
        generated_ids="record_id" not in table.columns,
    )
    checker = _CatalogueChecker(parsed)
    for raw in table.rows:
        parsed.row_count += 1
        if raw.problem:
            parsed.problems[raw.line] = [raw.problem]
            continue
        reasons: list[str] = []
        record_id = raw.values.get("record_id", "").strip()
        if has_ids and not record_id:
            reasons.append(t("import.missing_record_id"))
        try:
            row = CatalogueRow.model_validate(cells(raw.values))
        except ValidationError as exc:
            parsed.problems[raw.line] = reasons + row_reasons(exc)
            continue
        if reasons:
            parsed.problems[raw.line] = reasons
            continue
        if not record_id:
            parsed.generated_ids = True
            record_id = stable_record_id(row.isbn, row.title or "", row.author, row.publisher)
        reasons = checker.add(raw.line, record_id, row)
        if reasons:
            parsed.problems[raw.line] = reasons
    return parsed


async def import_catalogue(
    session: AsyncSession,
    path: Path,
    *,
    skip_bad: bool = False,
    progress: Callable[[int, int], None] | None = None,
    actor: str = "cli",
    sheet: str | None = None,
    holdings: MarcHoldings | None = None,
    indexer: Indexer | None = None,
) -> CatalogueReport:
    """Import a catalogue: CSV (UTF-8 or GB18030/GBK), an Excel sheet, or CNMARC records.

    Columns are the canonical ones of the shared data README or their Chinese headers (see
    services/imports/vocabulary.toml); ``sheet`` picks an Excel sheet (default: the first);
    ``holdings`` says where a MARC record keeps its copies (default 905 $b $d $e).
    The written records are indexed by ``indexer`` (the process's search engine's; a fresh one
    when not given), and the planner statistics refreshed after (PostgreSQL).
    ``progress(done, total)`` is called as rows are written (total = rows to import); ``actor``
    goes into the audit log. Runs in the caller's transaction and never commits.
    Raises ImportFileError, or ImportRejected (nothing written) unless ``skip_bad``.
    """
    started = time.perf_counter()
    parsed = _parse_catalogue(open_catalogue(path, sheet=sheet, holdings=holdings))
    report = CatalogueReport(
        rows=parsed.row_count,
        truncated=parsed.truncated,
        source=parsed.source,
        unknown_columns=parsed.unknown,
        generated_ids=parsed.generated_ids,
        unit=parsed.unit,
    )
    if parsed.problems and not skip_bad:
        # Still look at the database so the rejection lists barcode clashes too.
        owners = await _load_barcodes(session)
        existing_pks = await _load_record_pks(session)
        await _check_barcode_owners(session, parsed, owners, existing_pks)
        raise ImportRejected(problems_by_line(parsed.problems, parsed.unit))

    now = utcnow()
    # Loaded in the transaction that writes: the clash check and the writes see the same state.
    existing = await _load_records(session)
    owners = await _load_barcodes(session)
    await _check_barcode_owners(
        session, parsed, owners, {rid: pk for rid, (pk, _) in existing.items()}
    )
    if parsed.problems and not skip_bad:
        raise ImportRejected(problems_by_line(parsed.problems, parsed.unit))
    rows = [row for row in parsed.rows if row.line not in parsed.problems]
    report.skipped = problems_by_line(parsed.problems, parsed.unit)
    report.truncated = [p for p in parsed.truncated if p.line not in parsed.problems]

    touched: list[int] = []
    done = 0
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        touched.extend(await _write_records(session, chunk, parsed.present, existing, report, now))
        report.copies_added += await _write_copies(session, chunk, existing, owners, now)
        done += len(chunk)
        if progress is not None:
            progress(done, len(rows))
    # -- search index (nlp.index): the records written, then fresh statistics for the planner
    if touched:
        await (indexer or Indexer()).index_records(session, sorted(touched))
        await analyze(session)
    record_audit(
        session,
        actor,
        "import_catalogue",
        {
            "file": path.name,
            "rows": report.rows,
            "created": report.records_created,
            "updated": report.records_updated,
            "unchanged": report.records_unchanged,
            "copies_added": report.copies_added,
            "skipped": len(report.skipped),
            "truncated": len(report.truncated),
        },
        now=now,
    )
    await session.flush()
    report.elapsed_s = time.perf_counter() - started
    return report


async def _load_records(session: AsyncSession) -> dict[str, tuple[int, tuple[str | None, ...]]]:
    columns = [RECORDS.c[name] for name in RECORD_FIELDS]
    result = await session.execute(select(RECORDS.c.id, RECORDS.c.record_id, *columns))
    return {row[1]: (row[0], tuple(row[2:])) for row in result}


async def _load_record_pks(session: AsyncSession) -> dict[str, int]:
    result = await session.execute(select(RECORDS.c.record_id, RECORDS.c.id))
    return {record_id: pk for record_id, pk in result}


async def _load_barcodes(session: AsyncSession) -> dict[str, int]:
    result = await session.execute(select(COPIES.c.barcode, COPIES.c.record_pk))
    return {barcode: record_pk for barcode, record_pk in result}


async def _check_barcode_owners(
    session: AsyncSession,
    parsed: _ParsedCatalogue,
    owners: dict[str, int],
    record_pks: dict[str, int],
) -> None:
    """Flag rows whose barcodes already belong to another record in the database, naming that
    book by its title (and record id), never by an internal row number."""
    if not owners:
        return
    clashes: list[tuple[int, str, int]] = []
    for row in parsed.rows:
        if not row.barcodes:
            continue
        pk = record_pks.get(row.record_id)
        for barcode in row.barcodes:
            owner = owners.get(barcode)
            if owner is not None and owner != pk:
                clashes.append((row.line, barcode, owner))
    if not clashes:
        return
    books = {
        pk: (record_id, title)
        for pk, record_id, title in await session.execute(
            select(RECORDS.c.id, RECORDS.c.record_id, RECORDS.c.title).where(
                RECORDS.c.id.in_({owner for _, _, owner in clashes})
            )
        )
    }
    for line, barcode, owner in clashes:
        record_id, title = books.get(owner, ("", ""))
        parsed.problems.setdefault(line, []).append(
            t("import.barcode_owned", barcode=barcode, title=title, record_id=record_id)
        )


async def _write_records(
    session: AsyncSession,
    chunk: Sequence[_CatalogueRow],
    present: tuple[int, ...],
    existing: dict[str, tuple[int, tuple[str | None, ...]]],
    report: CatalogueReport,
    now: datetime,
) -> list[int]:
    """Insert new records and update changed ones; returns the pks written (for the index)."""
    touched: list[int] = []
    new = [row for row in chunk if row.record_id not in existing]
    new_ids = {row.record_id for row in new}
    if new:
        # Bulk-loaded (COPY on PostgreSQL), then the ids read back by the unique record_id.
        await insert_rows(
            session,
            RECORDS,
            [(row.record_id, *row.values, now, now) for row in new],
            ("record_id", *RECORD_FIELDS, "catalogued_at", "updated_at"),
        )
        result = await session.execute(
            select(RECORDS.c.id, RECORDS.c.record_id).where(
                RECORDS.c.record_id.in_([row.record_id for row in new])
            )
        )
        values_by_id = {row.record_id: row.values for row in new}
        for pk, record_id in result:
            existing[record_id] = (pk, values_by_id[record_id])
            touched.append(pk)
        report.records_created += len(new)

    # Group changed rows by which fields changed: one executemany per group, only those columns.
    groups: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for row in chunk:
        if row.record_id in new_ids:
            continue
        pk, old = existing[row.record_id]
        changed = tuple(i for i in present if old[i] != row.values[i])
        if not changed:
            report.records_unchanged += 1
            continue
        groups.setdefault(changed, []).append(
            {"pk": pk, **{f"v_{RECORD_FIELDS[i]}": row.values[i] for i in changed}}
        )
        existing[row.record_id] = (
            pk,
            tuple(row.values[i] if i in changed else v for i, v in enumerate(old)),
        )
        touched.append(pk)
        report.records_updated += 1
    for changed, params in groups.items():
        statement = (
            update(RECORDS)
            .where(RECORDS.c.id == bindparam("pk"))
            .values(
                {
                    RECORDS.c.updated_at: now,
                    **{
                        RECORDS.c[RECORD_FIELDS[i]]: bindparam(f"v_{RECORD_FIELDS[i]}")
                        for i in changed
                    },
                }
            )
        )
        await session.execute(statement, params)
    return touched


async def _write_copies(
    session: AsyncSession,
    chunk: Sequence[_CatalogueRow],
    existing: dict[str, tuple[int, tuple[str | None, ...]]],
    owners: dict[str, int],
    now: datetime,
) -> int:
    """Add the copies a row names (or the minted ones) that are not there yet; never delete."""
    values: list[tuple[Any, ...]] = []
    for row in chunk:
        pk = existing[row.record_id][0]
        wanted = (
            row.barcodes
            if row.barcodes is not None
            else [generated_barcode(pk, n) for n in range(1, row.copies + 1)]
        )
        for barcode in wanted:
            # Explicit barcodes owned elsewhere were rejected already; a minted one that someone
            # took by hand is simply not minted again.
            if barcode in owners:
                continue
            owners[barcode] = pk
            values.append((barcode, pk, row.location, CopyStatus.ON_SHELF.value, now))
    await insert_rows(
        session, COPIES, values, ("barcode", "record_pk", "location", "status", "created_at")
    )
    return len(values)


# ---------------------------------------------------------------------------------------------
# Readers


class _ReaderRow(NamedTuple):
    line: int
    card_no: str
    values: tuple[str | None, ...]  # in READER_FIELDS order; office None when no such column


@dataclass(slots=True)
class _ParsedRoster:
    rows: list[_ReaderRow]
    problems: dict[int, list[str]]
    row_count: int
    has_office: bool
    table: TableFile


def _parse_readers(table: TableFile, default_role: str | None) -> _ParsedRoster:
    parsed = _ParsedRoster([], {}, 0, "office" in table.columns, table)
    first_line_of_card: dict[str, int] = {}
    for raw in table.rows:
        parsed.row_count += 1
        if raw.problem:
            parsed.problems[raw.line] = [raw.problem]
            continue
        try:
            values = cells(raw.values)
            if values.get("role") is None and default_role is not None:
                values["role"] = default_role
            row = ReaderRow.model_validate(values)
        except ValidationError as exc:
            parsed.problems[raw.line] = row_reasons(exc)
            continue
        card_no = row.card_no or ""
        first = first_line_of_card.setdefault(card_no, raw.line)
        if first != raw.line:
            parsed.problems[raw.line] = [t("import.duplicate_card_no", card_no=card_no, line=first)]
            continue
        fields = tuple(getattr(row, name) for name in READER_FIELDS)
        parsed.rows.append(_ReaderRow(raw.line, card_no, fields))
    return parsed


async def import_readers(
    session: AsyncSession,
    path: Path,
    *,
    skip_bad: bool = False,
    actor: str = "cli",
    sheet: str | None = None,
    default_role: str | None = None,
) -> ReaderReport:
    """Import a reader roster (``card_no,name,role,grade,class_name``, optional ``office``).

    Readers are matched by card number; changed fields are updated; readers absent from the file
    are left alone (a roster is often one class or one grade). Runs in the caller's transaction
    and never commits. Raises ImportFileError, or ImportRejected (nothing written) unless
    ``skip_bad``. Reads CSV (UTF-8 or GB18030/GBK) or an Excel sheet (``sheet``, default the
    first), with English or Chinese headers (学号/借书证号, 姓名, 身份, 年级, 班级 …).
    ``default_role`` (a role word) is the role of rows without one: a school office's class list
    has no role column.
    """
    started = time.perf_counter()
    if default_role is not None and default_role.strip().lower() not in role_words():
        raise ImportFileError(t("import.unknown_default_role", role=default_role))
    required = ("card_no", "name") if default_role else ("card_no", "name", "role")
    table = open_table(path, "readers", required, sheet=sheet)
    parsed = _parse_readers(table, default_role.strip() if default_role else None)
    rows, problems, has_office = parsed.rows, parsed.problems, parsed.has_office
    if problems and not skip_bad:
        raise ImportRejected(problems_by_line(problems, table.unit))
    report = ReaderReport(
        rows=parsed.row_count,
        skipped=problems_by_line(problems, table.unit),
        source=table.source,
        unknown_columns=table.unknown,
    )
    # Without an office column the file says nothing about offices: don't clear them.
    compared = READER_FIELDS if has_office else READER_FIELDS[:-1]
    now = utcnow()
    result = await session.execute(
        select(READERS.c.id, READERS.c.card_no, *[READERS.c[n] for n in compared])
    )
    existing = {row[1]: (row[0], tuple(row[2:])) for row in result}
    new: list[dict[str, Any]] = []
    groups: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for row in rows:
        values = row.values[: len(compared)]
        if row.card_no not in existing:
            new.append(
                {
                    "card_no": row.card_no,
                    **dict(zip(compared, values, strict=True)),
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            existing[row.card_no] = (0, values)  # a later duplicate was rejected anyway
            continue
        pk, old = existing[row.card_no]
        if old == values:
            report.unchanged += 1
            continue
        changed = tuple(i for i, (a, b) in enumerate(zip(old, values, strict=True)) if a != b)
        groups.setdefault(changed, []).append(
            {"pk": pk, **{f"v_{compared[i]}": values[i] for i in changed}}
        )
    if new:
        await session.execute(insert(READERS), new)
    for changed, params in groups.items():
        await session.execute(
            update(READERS)
            .where(READERS.c.id == bindparam("pk"))
            .values(
                {
                    READERS.c.updated_at: now,
                    **{READERS.c[compared[i]]: bindparam(f"v_{compared[i]}") for i in changed},
                }
            ),
            params,
        )
    report.created = len(new)
    report.updated = sum(len(p) for p in groups.values())
    record_audit(
        session,
        actor,
        "import_readers",
        {
            "file": path.name,
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "skipped": len(report.skipped),
        },
        now=now,
    )
    await session.flush()
    report.elapsed_s = time.perf_counter() - started
    return report
