"""The school calendar: days the library is closed (holidays, 寒暑假).

A due date never falls on a closed day (it moves to the next open day), and overdue reminders
pause while the school is closed. Imported from a CSV of ``date`` (or ``start``,``end``) and
``name`` columns; a file with any bad row is rejected whole, with line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.i18n import t
from services.imports.files import ImportRejected, RowProblem, open_table
from storage.models import ClosedDay, Loan

# A closed period longer than this is a typo (two school years), not a holiday.
MAX_SPAN_DAYS = 100


@dataclass(frozen=True, slots=True)
class CalendarReport:
    days: int
    loans_moved: int


def _parse_day(value: str) -> date | None:
    value = value.strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(value)
    except ValueError:
        parts = value.split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            try:
                return date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError:
                return None
        return None


def parse_calendar(path: Path) -> dict[date, str | None]:
    """Closed days from the file; ImportRejected with every bad line when any row is bad."""
    days: dict[date, str | None] = {}
    problems: list[RowProblem] = []
    table = open_table(path, "calendar", required=())
    ranged = "start" in table.columns
    if not ranged and "date" not in table.columns:
        raise ImportRejected([RowProblem(table.header_line, t("calendar.columns"))])
    for row in table.rows:
        if row.problem:
            problems.append(RowProblem(row.line, row.problem))
            continue
        cell = row.values.get
        first = _parse_day(cell("start", "") if ranged else cell("date", ""))
        last = _parse_day(cell("end", "") or cell("start", "")) if ranged else first
        if first is None or last is None:
            problems.append(RowProblem(row.line, t("calendar.bad_date")))
            continue
        if last < first or (last - first).days > MAX_SPAN_DAYS:
            problems.append(RowProblem(row.line, t("calendar.bad_range")))
            continue
        name = cell("name", "").strip()[:100] or None
        day = first
        while day <= last:
            days[day] = name
            day += timedelta(days=1)
    if problems:
        raise ImportRejected(problems)
    return days


async def closed_between(session: AsyncSession, first: date, last: date) -> set[date]:
    rows = await session.scalars(
        select(ClosedDay.day).where(ClosedDay.day >= first, ClosedDay.day <= last)
    )
    return set(rows)


async def is_closed(session: AsyncSession, day: date) -> bool:
    return await session.get(ClosedDay, day) is not None


def _end_of_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz).astimezone(UTC)


async def next_open_due(session: AsyncSession, due_at: datetime, tz: ZoneInfo) -> datetime:
    """``due_at`` moved to the end of the next open day when its date is closed."""
    day = due_at.astimezone(tz).date()
    closed = await closed_between(session, day, day + timedelta(days=MAX_SPAN_DAYS * 2))
    if day not in closed:
        return due_at
    while day in closed:
        day += timedelta(days=1)
    return _end_of_day(day, tz)


async def import_calendar(session: AsyncSession, path: Path, tz: ZoneInfo) -> CalendarReport:
    """Store the closed days (replacing those already known for the same dates) and move open
    loans due on a closed day to the next open day."""
    days = parse_calendar(path)
    if not days:
        return CalendarReport(0, 0)
    await session.execute(delete(ClosedDay).where(ClosedDay.day.in_(list(days))))
    session.add_all(ClosedDay(day=d, name=n) for d, n in sorted(days.items()))
    await session.flush()
    first, last = min(days), max(days)
    loans = await session.scalars(
        select(Loan)
        .where(
            Loan.returned_at.is_(None),
            Loan.due_at >= datetime.combine(first, time(0), tzinfo=tz),
            Loan.due_at <= _end_of_day(last, tz),
        )
        .with_for_update()
    )
    moved = 0
    for loan in loans:
        new_due = await next_open_due(session, loan.due_at, tz)
        if new_due != loan.due_at:
            loan.due_at = new_due
            moved += 1
    return CalendarReport(len(days), moved)
