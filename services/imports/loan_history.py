"""``import loans``: a school's loan history from its earlier system, so recommendations start from
its past.

Columns: ``card_no``; the book as ``record_id``, ``barcode``, ``isbn`` or ``title`` (the first one
given in that order is used); ``lent_at`` and ``returned_at`` (dates, may be empty). A title must
match exactly one record after normalisation (ISBD tails dropped, traditional/simplified, width,
case, spaces), an ISBN exactly one record. Like the other importers: every row is checked before
anything is written, a bad row rejects the file (with line numbers) unless ``skip_bad``, it runs in
the caller's transaction, and importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.isbn import normalize_isbn
from services.audit import record_audit
from services.codes import clean_code
from services.i18n import t
from services.imports.files import ImportRejected, RowProblem, listed, open_table, problems_by_line
from services.recommend.engine import title_key
from storage.models import Copy, PastLoan, Reader, Record, utcnow

BOOK_COLUMNS = ("record_id", "barcode", "isbn", "title")
CHUNK_ROWS = 5000
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d")


@dataclass(slots=True)
class LoanReport:
    rows: int = 0
    added: int = 0
    unchanged: int = 0  # already imported (same reader, record and lending date)
    skipped: list[RowProblem] = field(default_factory=list)
    elapsed_s: float = 0.0


@dataclass(slots=True)
class _Lookups:
    readers: dict[str, int]
    record_ids: dict[str, int]
    barcodes: dict[str, int]
    isbns: dict[str, list[int]]
    titles: dict[str, list[int]]


def parse_date(text: str) -> datetime | None:
    """A date as schools export them; None when empty. Raises ValueError when unreadable."""
    text = text.strip()
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(text)


async def _lookups(session: AsyncSession) -> _Lookups:
    readers = {
        clean_code(c): pk for pk, c in await session.execute(select(Reader.id, Reader.card_no))
    }
    record_ids: dict[str, int] = {}
    isbns: dict[str, list[int]] = defaultdict(list)
    titles: dict[str, list[int]] = defaultdict(list)
    rows = await session.execute(select(Record.id, Record.record_id, Record.isbn, Record.title))
    for pk, record_id, isbn, title in rows:
        record_ids[record_id] = pk
        if isbn:
            isbns[isbn].append(pk)
        titles[title_key(title)].append(pk)
    barcodes = {
        clean_code(b): pk for b, pk in await session.execute(select(Copy.barcode, Copy.record_pk))
    }
    return _Lookups(readers, record_ids, barcodes, isbns, titles)


def _match_book(look: _Lookups, values: dict[str, str]) -> tuple[int | None, str | None]:
    """The record a row names, or the reason it names none (or several)."""
    if values["record_id"]:
        pk = look.record_ids.get(values["record_id"])
        return (
            (pk, None)
            if pk
            else (None, t("loans_import.unknown_record", value=values["record_id"]))
        )
    if values["barcode"]:
        pk = look.barcodes.get(clean_code(values["barcode"]))
        return (
            (pk, None) if pk else (None, t("loans_import.unknown_barcode", value=values["barcode"]))
        )
    if values["isbn"]:
        isbn = normalize_isbn(values["isbn"])
        found = look.isbns.get(isbn or "", [])
        if len(found) == 1:
            return found[0], None
        key = "loans_import.ambiguous_isbn" if found else "loans_import.unknown_isbn"
        return None, t(key, value=values["isbn"], count=len(found))
    found = look.titles.get(title_key(values["title"]), [])
    if len(found) == 1:
        return found[0], None
    key = "loans_import.ambiguous_title" if found else "loans_import.unknown_title"
    return None, t(key, value=values["title"], count=len(found))


_Row = tuple[int, int, datetime | None, datetime | None]  # reader, record, lent, returned


def _check_row(look: _Lookups, values: dict[str, str]) -> tuple[_Row | None, list[str]]:
    """One row's reader, record and dates, or every reason it cannot be imported."""
    reasons: list[str] = []
    reader_id = look.readers.get(clean_code(values["card_no"]))
    if not values["card_no"]:
        reasons.append(t("import.missing_card_no"))
    elif reader_id is None:
        reasons.append(t("loans_import.unknown_card", card_no=values["card_no"]))
    record_pk = None
    if not any(values[c] for c in BOOK_COLUMNS):
        reasons.append(t("loans_import.missing_book"))
    else:
        record_pk, why = _match_book(look, values)
        if why:
            reasons.append(why)
    dates: list[datetime | None] = []
    for column in ("lent_at", "returned_at"):
        try:
            dates.append(parse_date(values[column]))
        except ValueError:
            reasons.append(t("loans_import.bad_date", column=column, value=values[column]))
            dates.append(None)
    lent_at, returned_at = dates
    if lent_at and returned_at and returned_at < lent_at:
        reasons.append(t("loans_import.returned_before_lent"))
    if reasons or reader_id is None or record_pk is None:
        return None, reasons
    return (reader_id, record_pk, lent_at, returned_at), []


async def import_loans(
    session: AsyncSession, path: Path, *, skip_bad: bool = False, actor: str = "cli"
) -> LoanReport:
    """Import loan history. Raises ImportFileError, or ImportRejected (nothing written) unless
    ``skip_bad``."""
    started = time.perf_counter()
    look = await _lookups(session)
    problems: dict[int, list[str]] = {}
    parsed: list[_Row] = []
    report = LoanReport()
    # CSV (UTF-8 or GBK) or Excel, Chinese headers too: the reader the other importers use.
    table = open_table(path, "loans", ("card_no",))
    if not any(column in table.columns for column in BOOK_COLUMNS):
        raise ImportRejected(
            [
                RowProblem(
                    table.header_line,
                    t("loans_import.no_book_column", columns=listed(BOOK_COLUMNS)),
                )
            ]
        )
    names = ("card_no", *BOOK_COLUMNS, "lent_at", "returned_at")
    for raw in table.rows:
        report.rows += 1
        if raw.problem:
            problems[raw.line] = [raw.problem]
            continue
        values = {name: (raw.values.get(name) or "").strip() for name in names}
        row, reasons = _check_row(look, values)
        if row is None:
            problems[raw.line] = reasons
        else:
            parsed.append(row)
    if problems and not skip_bad:
        raise ImportRejected(problems_by_line(problems, table.unit))
    report.skipped = problems_by_line(problems, table.unit)
    existing = set(await session.scalars(select(PastLoan.dedupe_key)))
    now = utcnow()
    new: list[dict[str, Any]] = []
    for reader_id, record_pk, lent_at, returned_at in parsed:
        day = lent_at.date().isoformat() if lent_at else "-"
        key = f"{reader_id}:{record_pk}:{day}"
        if key in existing:
            report.unchanged += 1
            continue
        existing.add(key)
        new.append(
            {
                "reader_id": reader_id,
                "record_pk": record_pk,
                "lent_at": lent_at,
                "returned_at": returned_at,
                "dedupe_key": key,
                "imported_at": now,
            }
        )
    for start in range(0, len(new), CHUNK_ROWS):
        await session.execute(insert(PastLoan), new[start : start + CHUNK_ROWS])
    report.added = len(new)
    record_audit(
        session,
        actor,
        "import_loans",
        {
            "file": path.name,
            "rows": report.rows,
            "added": report.added,
            "unchanged": report.unchanged,
            "skipped": len(report.skipped),
        },
        now=now,
    )
    await session.flush()
    report.elapsed_s = time.perf_counter() - started
    return report
