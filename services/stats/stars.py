"""读书之星: each month, the students of each class and of each grade who read the most.

What counts: books returned in the month, each title once per reader, and only when it was kept
at least a day (a book brought back within a day was not read). Ties share the title. Winners are
told through the outbox; their class monitors too once the librarian approves.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian
from services.audit import record_audit
from services.i18n import t
from services.notifications import enqueue
from services.school_order import group_key
from services.stats.figures import ScopeKind, month_period
from services.stats.kinds import READING_STAR, READING_STAR_MONITOR, StarMonitorPayload, StarPayload
from storage.models import ClassMonitor, Copy, Loan, Reader, Role


@dataclass(frozen=True, slots=True)
class Star:
    kind: ScopeKind  # GRADE or CLASS
    group: str  # the grade or the class
    reader_id: int
    name: str
    class_name: str | None
    books: int


def _kept_a_day(dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return Loan.returned_at >= Loan.lent_at + literal_column("interval '1 day'")
    # SQLite keeps naive UTC text; julianday() reads it as days.
    return func.julianday(Loan.returned_at) - func.julianday(Loan.lent_at) >= 1


async def monthly_stars(
    session: AsyncSession, actor: Actor | None, *, year: int, month: int, tz: ZoneInfo
) -> list[Star]:
    """The month's 读书之星 per grade and per class, grades first, then classes, each in the
    school's order (初一 … 高三, then class number); winners of a group by name. The whole
    school's winners by name: for the librarian (or the server) only."""
    require_librarian(actor)
    period = month_period(year, month, tz)
    dialect = session.get_bind().dialect.name
    books = func.count(distinct(Copy.record_pk)).label("books")
    per_reader = (
        select(
            Reader.id.label("reader_id"),
            Reader.name.label("name"),
            Reader.grade.label("grade"),
            Reader.class_name.label("class_name"),
            books,
        )
        .select_from(Loan)
        .join(Reader, Reader.id == Loan.reader_id)
        .join(Copy, Copy.id == Loan.copy_id)
        .where(
            Reader.role == Role.STUDENT.value,
            Reader.active.is_(True),
            Loan.returned_at.is_not(None),
            period.covers(Loan.returned_at),  # type: ignore[arg-type]
            _kept_a_day(dialect),
        )
        .group_by(Reader.id, Reader.name, Reader.grade, Reader.class_name)
        .subquery()
    )
    stars: list[Star] = []
    for kind, column in (
        (ScopeKind.GRADE, per_reader.c.grade),
        (ScopeKind.CLASS, per_reader.c.class_name),
    ):
        rank = func.rank().over(partition_by=column, order_by=per_reader.c.books.desc())
        ranked = (
            select(
                column.label("grp"),
                per_reader.c.reader_id,
                per_reader.c.name,
                per_reader.c.class_name,
                per_reader.c.books,
                rank.label("rk"),
            )
            .where(column.is_not(None))
            .subquery()
        )
        rows = await session.execute(
            select(
                ranked.c.grp, ranked.c.reader_id, ranked.c.name, ranked.c.class_name, ranked.c.books
            )
            .where(ranked.c.rk == 1)
            .order_by(ranked.c.grp, ranked.c.name, ranked.c.reader_id)
        )
        found = [Star(kind, grp, rid, name, klass, int(n)) for grp, rid, name, klass, n in rows]
        stars.extend(sorted(found, key=lambda s: group_key(s.group)))
    return stars


def _month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


async def announce_stars(
    session: AsyncSession,
    actor: Actor | None,
    stars: list[Star],
    *,
    year: int,
    month: int,
    tell_monitors: bool,
) -> int:
    """Queue the winners' messages (and, if approved, their class monitors'); idempotent by month,
    so announcing twice sends nothing new. Returns how many messages were newly queued. A message
    to many readers: the librarian's (or the server's) to send."""
    actor = require_librarian(actor)
    label = _month_label(year, month)
    queued = 0
    for star in stars:
        payload = StarPayload(
            month=label,
            scope=star.kind.value,
            group=star.group,
            reader_id=star.reader_id,
            name=star.name,
            books=star.books,
        )
        queued += await enqueue(session, READING_STAR, reader_id=star.reader_id, payload=payload)
    if tell_monitors:
        queued += await _tell_monitors(session, stars, label)
    record_audit(
        session,
        actor.audit_name,
        "stars_announce",
        {"month": label, "winners": len(stars), "monitors": tell_monitors},
    )
    return queued


async def _tell_monitors(session: AsyncSession, stars: list[Star], label: str) -> int:
    by_class: dict[str, list[Star]] = {}
    for star in stars:
        if star.kind == ScopeKind.CLASS and star.class_name:
            by_class.setdefault(star.class_name, []).append(star)
    if not by_class:
        return 0
    monitors = await session.execute(
        select(ClassMonitor.class_name, ClassMonitor.reader_id).where(
            ClassMonitor.class_name.in_(by_class)
        )
    )
    queued = 0
    for class_name, monitor_id in monitors:
        winners = by_class[class_name]
        payload = StarMonitorPayload(
            month=label,
            class_name=class_name,
            monitor_id=monitor_id,
            names=t("stats.star.name_sep").join(s.name for s in winners),
            books=winners[0].books,
        )
        queued += await enqueue(
            session, READING_STAR_MONITOR, reader_id=monitor_id, payload=payload
        )
    return queued


def parse_month(text: str) -> tuple[int, int] | None:
    """'2026-10' (or '2026-1') → (2026, 10); anything else → None."""
    year, _, month = text.strip().partition("-")
    if not (year.isdigit() and month.isdigit() and len(year) == 4 and 1 <= int(month) <= 12):
        return None
    return int(year), int(month)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)
