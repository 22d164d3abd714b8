"""Catalogue and reader-roster importers.

Both importers read the whole CSV file and validate every row before writing anything. They work in
the caller's session and unit of work: they flush but never commit or open a transaction, so the
import (search index and audit entry included) is committed, or rolled back, with the rest of the
caller's transaction. In the default mode any bad row rejects the file (``ImportRejected`` lists
every problem with its physical line number) before anything is written; with ``skip_bad`` the good
rows go in and the report lists the skipped ones. Imports are idempotent: records are keyed by
``record_id``, readers by ``card_no``, and only rows whose values changed are written.

Speed matters (an 81k-title catalogue must load in seconds), so the writes are bulk Core
statements in chunks, and the existing rows are loaded up front in one query per table and
compared in Python. Being Core statements, the writes do not refresh ORM objects the caller loaded
earlier in the same session.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.index import index_records
from nlp.isbn import looks_like_isbn, normalize_isbn
from services.i18n import t
from storage.models import AuditEntry, Copy, CopyStatus, Reader, Record, Role, utcnow

__all__ = [
    "MAX_COPIES_PER_ROW",
    "CatalogueReport",
    "ImportFileError",
    "ImportRejected",
    "ReaderReport",
    "RowProblem",
    "check_import_file",
    "generated_barcode",
    "import_catalogue",
    "import_readers",
]

RECORDS = cast(Table, Record.__table__)
COPIES = cast(Table, Copy.__table__)
READERS = cast(Table, Reader.__table__)

# A sanity bound: "copies" is typed by hand, and a stray "1000000" would mint a million barcodes.
MAX_COPIES_PER_ROW = 200
CHUNK_ROWS = 2000

# Undecodable UTF-8 bytes come back as lone surrogates (errors="surrogateescape").
_BROKEN_BYTES = re.compile("[\udc80-\udcff]")
_SUSPICIOUS = re.compile("[\x00\udc80-\udcff]")
# Barcodes the importer mints for rows that give only a copy count: G + record pk + "-" + n.
_GENERATED_BARCODE = re.compile(r"G\d{8,}-\d+")
_BARCODE_SPLIT = re.compile(r"[;；]")


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

# Input vocabulary, not messages: the words a roster may use for each role.
_ROLE_WORDS: dict[str, str] = {
    "student": Role.STUDENT.value,
    "学生": Role.STUDENT.value,
    "teacher": Role.TEACHER.value,
    "教师": Role.TEACHER.value,
    "老师": Role.TEACHER.value,
    "librarian": Role.LIBRARIAN.value,
    "图书管理员": Role.LIBRARIAN.value,
    "管理员": Role.LIBRARIAN.value,
    "馆员": Role.LIBRARIAN.value,
}
READER_FIELDS: tuple[str, ...] = ("name", "role", "grade", "class_name", "office")


def _max_length(table: Table, column: str) -> int | None:
    return getattr(table.c[column].type, "length", None)


# ---------------------------------------------------------------------------------------------
# Results and errors


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A problem with one row: ``line`` is the physical line where the row starts (1 = header)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return t("import.row_problem", line=self.line, reason=self.reason)


class ImportFileError(Exception):
    """The file cannot be imported at all (missing, empty, not UTF-8, broken CSV)."""


class ImportRejected(Exception):
    """The file has bad rows and nothing was written."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(t("import.rejected", count=len(self.problems)))


@dataclass(slots=True)
class CatalogueReport:
    rows: int = 0  # data rows read from the file
    records_created: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    copies_added: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    # Over-long values cut to the column size; the row was still imported.
    truncated: list[RowProblem] = field(default_factory=list)
    elapsed_s: float = 0.0


@dataclass(slots=True)
class ReaderReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    elapsed_s: float = 0.0


# ---------------------------------------------------------------------------------------------
# Reading CSV with physical line numbers


class _RawRow(NamedTuple):
    line: int
    fields: list[str]
    problem: str | None  # encoding or shape problem found while reading


class _CsvFile(NamedTuple):
    header_line: int
    columns: dict[str, int]  # lower-cased header name -> index
    rows: Iterator[_RawRow]


def check_import_file(path: Path) -> None:
    """Raise ImportFileError unless ``path`` is an existing regular file.

    The importers call it themselves; the CLI calls it first too, so a typo costs no database.
    """
    if not path.exists():
        raise ImportFileError(t("import.file_missing", path=path))
    if not path.is_file():
        raise ImportFileError(t("import.not_a_file", path=path))


@contextmanager
def _open_csv(path: Path, required: Sequence[str]) -> Iterator[_CsvFile]:
    """Open a CSV file, check its header, and stream its rows with their starting line numbers.

    The file is decoded with ``surrogateescape`` so one bad byte spoils one row, not the whole
    import; ``utf-8-sig`` drops a BOM (Excel writes one).
    """
    check_import_file(path)
    try:
        handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        # Not an OSError any more: the CLI reads OSError as "database unreachable".
        raise ImportFileError(
            t("import.unreadable", path=path, reason=exc.strerror or exc)
        ) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header: list[str] = []
            while not any(cell.strip() for cell in header):
                header = next(reader)
        except StopIteration:
            raise ImportFileError(t("import.empty_file", path=path)) from None
        except csv.Error as exc:
            raise ImportFileError(t("import.csv_error", line=reader.line_num, error=exc)) from None
        header_line = reader.line_num
        if _SUSPICIOUS.search("".join(header)):
            raise ImportFileError(t("import.not_utf8"))
        names = [cell.strip().lower() for cell in header]
        problems = []
        missing = [name for name in required if name not in names]
        if missing:
            problems.append(
                RowProblem(header_line, t("import.missing_columns", columns=_listed(missing)))
            )
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        if duplicated:
            problems.append(
                RowProblem(header_line, t("import.duplicate_columns", columns=_listed(duplicated)))
            )
        if problems:
            raise ImportRejected(problems)
        columns = {name: i for i, name in enumerate(names) if name}
        width = len(names)

        def rows() -> Iterator[_RawRow]:
            previous = reader.line_num
            seen = undecodable = 0
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    if seen > 1 and undecodable == seen:
                        # A GBK file with an ASCII header: say so once, not once per row.
                        raise ImportFileError(t("import.not_utf8")) from None
                    return
                except csv.Error as exc:
                    # The reader's state is unreliable after this: stop the whole file.
                    raise ImportFileError(
                        t("import.csv_error_aborted", line=previous + 1, error=exc)
                    ) from None
                line, previous = previous + 1, reader.line_num
                if not any(cell.strip() for cell in fields):
                    continue  # blank line
                seen += 1
                problem = None
                if len(fields) > width and any(cell.strip() for cell in fields[width:]):
                    problem = t("import.too_many_fields", fields=len(fields), width=width)
                else:
                    suspicious = _SUSPICIOUS.search("\x1f".join(fields))
                    if suspicious and _BROKEN_BYTES.match(suspicious.group()):
                        undecodable += 1
                        problem = t("import.undecodable")
                    elif suspicious:
                        problem = t("import.nul")
                yield _RawRow(line, fields, problem)

        yield _CsvFile(header_line, columns, rows())


def _listed(names: Sequence[str]) -> str:
    return t("import.list_separator").join(names)


def _getter(columns: dict[str, int], name: str) -> Callable[[list[str]], str]:
    index = columns.get(name)
    if index is None:
        return lambda _fields: ""
    return lambda fields: fields[index] if index < len(fields) else ""


def _clean(value: str) -> str | None:
    value = value.strip()
    return value or None


# ---------------------------------------------------------------------------------------------
# Catalogue


class _CatalogueRow(NamedTuple):
    line: int
    record_id: str
    values: tuple[str | None, ...]  # in RECORD_FIELDS order
    barcodes: tuple[str, ...] | None  # None: mint ``copies`` barcodes
    copies: int


@dataclass(slots=True)
class _ParsedCatalogue:
    rows: list[_CatalogueRow]
    problems: dict[int, list[str]]  # line -> reasons
    truncated: list[RowProblem]
    row_count: int
    # Indexes into RECORD_FIELDS of the columns the file has: a column left out of the file
    # says nothing, so it must not blank out what an earlier import stored.
    present: tuple[int, ...] = ()


def _parse_catalogue(path: Path) -> _ParsedCatalogue:
    """Read and check every row that can be checked without the database."""
    limits = [_max_length(RECORDS, attr) for attr in RECORD_FIELDS]
    record_id_limit = _max_length(RECORDS, "record_id") or 64
    barcode_limit = _max_length(COPIES, "barcode") or 40
    parsed = _ParsedCatalogue(rows=[], problems={}, truncated=[], row_count=0)
    first_line_of_record: dict[str, int] = {}
    first_line_of_barcode: dict[str, int] = {}

    with _open_csv(path, ("record_id", "title")) as csv_file:
        get_record_id = _getter(csv_file.columns, "record_id")
        get_copies = _getter(csv_file.columns, "copies")
        get_barcodes = _getter(csv_file.columns, "barcodes")
        getters = [_getter(csv_file.columns, column) for column, _ in _CATALOGUE_COLUMNS]
        parsed.present = tuple(
            i for i, (column, _) in enumerate(_CATALOGUE_COLUMNS) if column in csv_file.columns
        )
        for raw in csv_file.rows:
            parsed.row_count += 1
            line, fields = raw.line, raw.fields
            if raw.problem:
                parsed.problems[line] = [raw.problem]
                continue
            reasons: list[str] = []

            record_id = get_record_id(fields).strip()
            if not record_id:
                reasons.append(t("import.missing_record_id"))
            elif len(record_id) > record_id_limit:
                reasons.append(t("import.record_id_too_long", limit=record_id_limit))
            elif record_id in first_line_of_record:
                reasons.append(
                    t(
                        "import.duplicate_record_id",
                        record_id=record_id,
                        line=first_line_of_record[record_id],
                    )
                )
            else:
                first_line_of_record[record_id] = line

            values: list[str | None] = [_clean(get(fields)) for get in getters]
            if values[_TITLE_INDEX] is None:
                reasons.append(t("import.missing_title"))
            isbn_text = values[_ISBN_INDEX]
            if isbn_text is not None:
                isbn = normalize_isbn(isbn_text)
                if isbn is None:
                    reasons.append(
                        t("import.isbn_check_digit", isbn=isbn_text)
                        if looks_like_isbn(isbn_text)
                        else t("import.isbn_format", isbn=isbn_text)
                    )
                values[_ISBN_INDEX] = isbn
            tags = values[_TAGS_INDEX]
            if tags is not None:
                values[_TAGS_INDEX] = ";".join(
                    tag.strip() for tag in tags.split(";") if tag.strip()
                )
            for i, limit in enumerate(limits):
                value = values[i]
                if limit is not None and value is not None and len(value) > limit:
                    values[i] = value[:limit].rstrip()
                    parsed.truncated.append(
                        RowProblem(
                            line,
                            t("import.truncated", column=_CATALOGUE_COLUMNS[i][0], limit=limit),
                        )
                    )

            copies_text = get_copies(fields).strip()
            copies = 0
            if copies_text:
                if copies_text.isascii() and copies_text.isdigit():
                    copies = int(copies_text)
                    if copies > MAX_COPIES_PER_ROW:
                        reasons.append(
                            t("import.copies_too_many", copies=copies, limit=MAX_COPIES_PER_ROW)
                        )
                else:
                    reasons.append(t("import.copies_not_integer", copies=copies_text))

            barcodes: tuple[str, ...] | None = None
            barcode_cells = [b.strip() for b in _BARCODE_SPLIT.split(get_barcodes(fields))]
            if any(barcode_cells):
                barcodes = tuple(b for b in barcode_cells if b)
                seen_here: set[str] = set()
                for barcode in barcodes:
                    if barcode in seen_here:
                        reasons.append(t("import.barcode_repeated", barcode=barcode))
                    elif len(barcode) > barcode_limit:
                        reasons.append(
                            t("import.barcode_too_long", barcode=barcode, limit=barcode_limit)
                        )
                    elif _GENERATED_BARCODE.fullmatch(barcode):
                        reasons.append(t("import.barcode_reserved", barcode=barcode))
                    elif barcode in first_line_of_barcode:
                        reasons.append(
                            t(
                                "import.barcode_duplicate",
                                barcode=barcode,
                                line=first_line_of_barcode[barcode],
                            )
                        )
                    else:
                        first_line_of_barcode[barcode] = line
                    seen_here.add(barcode)
                copies = len(barcodes)

            if reasons:
                parsed.problems[line] = reasons
            else:
                parsed.rows.append(_CatalogueRow(line, record_id, tuple(values), barcodes, copies))
    return parsed


def _problems(by_line: dict[int, list[str]]) -> list[RowProblem]:
    separator = t("import.reason_separator")
    return [RowProblem(line, separator.join(reasons)) for line, reasons in sorted(by_line.items())]


async def import_catalogue(
    session: AsyncSession,
    path: Path,
    *,
    skip_bad: bool = False,
    progress: Callable[[int, int], None] | None = None,
    actor: str = "cli",
) -> CatalogueReport:
    """Import a canonical catalogue CSV (see the shared data README for the columns).

    ``progress(done, total)`` is called as rows are written (total = rows to import); ``actor``
    goes into the audit log. Runs in the caller's transaction and never commits.
    Raises ImportFileError, or ImportRejected (nothing written) unless ``skip_bad``.
    """
    started = time.perf_counter()
    parsed = _parse_catalogue(path)
    report = CatalogueReport(rows=parsed.row_count, truncated=parsed.truncated)
    if parsed.problems and not skip_bad:
        # Still look at the database so the rejection lists barcode clashes too.
        owners = await _load_barcodes(session)
        existing_pks = await _load_record_pks(session)
        _check_barcode_owners(parsed, owners, existing_pks)
        raise ImportRejected(_problems(parsed.problems))

    now = utcnow()
    # Loaded in the transaction that writes: the clash check and the writes see the same state.
    existing = await _load_records(session)
    owners = await _load_barcodes(session)
    _check_barcode_owners(parsed, owners, {rid: pk for rid, (pk, _) in existing.items()})
    if parsed.problems and not skip_bad:
        raise ImportRejected(_problems(parsed.problems))
    rows = [row for row in parsed.rows if row.line not in parsed.problems]
    report.skipped = _problems(parsed.problems)
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
    if touched:
        await index_records(session, sorted(touched))
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action="import_catalogue",
            detail={
                "file": path.name,
                "rows": report.rows,
                "created": report.records_created,
                "updated": report.records_updated,
                "unchanged": report.records_unchanged,
                "copies_added": report.copies_added,
                "skipped": len(report.skipped),
                "truncated": len(report.truncated),
            },
        )
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


def _check_barcode_owners(
    parsed: _ParsedCatalogue, owners: dict[str, int], record_pks: dict[str, int]
) -> None:
    """Flag rows whose barcodes already belong to another record in the database."""
    if not owners:
        return
    record_ids: dict[int, str] | None = None
    for row in parsed.rows:
        if not row.barcodes:
            continue
        pk = record_pks.get(row.record_id)
        for barcode in row.barcodes:
            owner = owners.get(barcode)
            if owner is not None and owner != pk:
                if record_ids is None:
                    record_ids = {v: k for k, v in record_pks.items()}
                parsed.problems.setdefault(row.line, []).append(
                    t(
                        "import.barcode_owned",
                        barcode=barcode,
                        record_id=record_ids.get(owner, owner),
                    )
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
        params = [
            {
                "record_id": row.record_id,
                **dict(zip(RECORD_FIELDS, row.values, strict=True)),
                "catalogued_at": now,
                "updated_at": now,
            }
            for row in new
        ]
        result = await session.execute(
            insert(RECORDS).returning(RECORDS.c.id, RECORDS.c.record_id), params
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
    params: list[dict[str, Any]] = []
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
            params.append(
                {
                    "barcode": barcode,
                    "record_pk": pk,
                    "status": CopyStatus.ON_SHELF.value,
                    "created_at": now,
                }
            )
    if params:
        await session.execute(insert(COPIES), params)
    return len(params)


# ---------------------------------------------------------------------------------------------
# Readers


class _ReaderRow(NamedTuple):
    line: int
    card_no: str
    values: tuple[str | None, ...]  # in READER_FIELDS order; office None when no such column


def _parse_readers(path: Path) -> tuple[list[_ReaderRow], dict[int, list[str]], int, bool]:
    rows: list[_ReaderRow] = []
    problems: dict[int, list[str]] = {}
    first_line_of_card: dict[str, int] = {}
    row_count = 0
    has_office = False
    with _open_csv(path, ("card_no", "name", "role")) as csv_file:
        has_office = "office" in csv_file.columns
        get_card = _getter(csv_file.columns, "card_no")
        get_role = _getter(csv_file.columns, "role")
        getters = {name: _getter(csv_file.columns, name) for name in READER_FIELDS}
        for raw in csv_file.rows:
            row_count += 1
            if raw.problem:
                problems[raw.line] = [raw.problem]
                continue
            fields, reasons = raw.fields, []
            card_no = get_card(fields).strip()
            if not card_no:
                reasons.append(t("import.missing_card_no"))
            elif card_no in first_line_of_card:
                reasons.append(
                    t("import.duplicate_card_no", card_no=card_no, line=first_line_of_card[card_no])
                )
            else:
                first_line_of_card[card_no] = raw.line
            values = {name: _clean(get(fields)) for name, get in getters.items()}
            if values["name"] is None:
                reasons.append(t("import.missing_name"))
            role_text = get_role(fields).strip()
            role = _ROLE_WORDS.get(role_text.lower())
            if role is None:
                reasons.append(
                    t("import.unknown_role", role=role_text)
                    if role_text
                    else t("import.missing_role")
                )
            values["role"] = role
            if values["class_name"] is not None:
                # Class names are matched elsewhere (corners, monitors): one bracket spelling.
                values["class_name"] = (
                    values["class_name"].replace("（", "(").replace("）", ")").replace(" ", "")
                )
            for name in ("card_no", *READER_FIELDS):
                value = card_no if name == "card_no" else values[name]
                limit = _max_length(READERS, name)
                if value is not None and limit is not None and len(value) > limit:
                    reasons.append(t("import.too_long", column=name, limit=limit))
            if reasons:
                problems[raw.line] = reasons
            else:
                rows.append(_ReaderRow(raw.line, card_no, tuple(values[n] for n in READER_FIELDS)))
    return rows, problems, row_count, has_office


async def import_readers(
    session: AsyncSession, path: Path, *, skip_bad: bool = False, actor: str = "cli"
) -> ReaderReport:
    """Import a reader roster (``card_no,name,role,grade,class_name``, optional ``office``).

    Readers are matched by card number; changed fields are updated; readers absent from the file
    are left alone (a roster is often one class or one grade). Runs in the caller's transaction
    and never commits. Raises ImportFileError, or ImportRejected (nothing written) unless
    ``skip_bad``.
    """
    started = time.perf_counter()
    rows, problems, row_count, has_office = _parse_readers(path)
    if problems and not skip_bad:
        raise ImportRejected(_problems(problems))
    report = ReaderReport(rows=row_count, skipped=_problems(problems))
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
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action="import_readers",
            detail={
                "file": path.name,
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": len(report.skipped),
            },
        )
    )
    await session.flush()
    report.elapsed_s = time.perf_counter() - started
    return report
