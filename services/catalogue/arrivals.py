"""新书 (new arrivals): one rule for the statistics' 新书 种/册 and the weekly 新书推荐.

A title is new in a window when it was catalogued in the window (``Record.catalogued_at``: an
import stamps it when the title first enters the catalogue) and at least one of its copies was
added in the window too (a record without a book behind it is not a new book). Its new copies
are the copies of those titles added in the window (``Copy.created_at``). So 新书 X 种，Y 册
always describes the same books: every copy counted belongs to a title counted, and every title
counted has at least one copy counted. More copies of a title catalogued before the window
(复本) are not new books.

Both conditions are SQL on the two timestamps, so SQLite and PostgreSQL agree."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from storage.models import Copy, Record


def _within(
    column: InstrumentedAttribute[datetime], start: datetime, end: datetime | None
) -> ColumnElement[bool]:
    lower = column >= start
    return lower if end is None else and_(lower, column < end)


def new_title(start: datetime, end: datetime | None = None) -> ColumnElement[bool]:
    """WHERE clause on ``records``: a new title in ``[start, end)`` (no ``end``: anything since
    ``start``)."""
    # Its own alias of copies, so that a query already joined to copies still asks this of all
    # of the title's copies.
    added = aliased(Copy)
    return and_(
        _within(Record.catalogued_at, start, end),
        exists(
            select(added.id)
            .where(added.record_pk == Record.id, _within(added.created_at, start, end))
            .correlate(Record)
        ),
    )


def new_copy(start: datetime, end: datetime | None = None) -> ColumnElement[bool]:
    """WHERE clause on ``copies`` joined to their ``records``: a copy of a new title, added in
    the window."""
    return and_(_within(Record.catalogued_at, start, end), _within(Copy.created_at, start, end))


def window_start(now: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The start of the weekly list's window: midnight (school time) ``days`` days before today,
    so that everything imported on any of those days — today's too — is in it."""
    today = now.astimezone(tz).date()
    return datetime.combine(today - timedelta(days=days), time(), tz)
