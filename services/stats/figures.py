"""The librarian's numbers for a period and a scope (the whole school, a grade, a class).

Each figure has one definition, written here and next to the query that computes it; every figure
is computed in SQL that runs on SQLite and PostgreSQL, only calendar-day arithmetic happens here.
tests/integration/test_stats.py checks each against numbers worked out by hand.

- A period is half-open, ``[start, end)`` in UTC; :func:`period_for_dates` turns the school's
  calendar dates (both inclusive) into one.
- Scope readers: everyone for the school; readers whose ``grade`` / ``class_name`` matches for a
  grade or a class. Students: the *active* readers with the student role among them.
- 借阅量 ``loans``: loans lent in the period to scope readers (teachers included at school level).
- 生均借书 ``loans_per_student``: loans lent in the period to the scope's students, divided by the
  number of its students.
- 借书率 ``borrow_rate``: students of the scope with at least one loan in the period, divided by
  the number of its students.
- 流通率 ``circulation_rate``: distinct copies lent at least once in the period to scope readers,
  divided by the collection at the end of the period — copies catalogued before the period's end
  that are not lost or withdrawn (their status today). A copy lent five times counts once, so the
  rate is at most 1.
- 逾期未还 ``overdue``: loans of scope readers due in the period (before its end, or before now
  in a period not yet over) and not returned by then — the books still owed. Their days are whole
  calendar days in the school's time zone from the due date to the period's last day (or today).
- 逾期归还 ``returned_late``: loans of scope readers due in the period and returned after their
  due date, by the period's end; their days run from the due date to the return. A loan is in
  one of the two lists, never both.
- 无法送达通知的读者 ``unreachable``: scope readers with at least one notification that ended
  failed — they blocked the bot, have no Telegram binding, or every retry failed: exactly the
  readers `shuxiang outbox failed` lists. It describes the outbox as it is now, whatever the
  period.
- Holds placed in the period; filled: those of them collected by their reader.
- 新书 ``new_titles`` / ``new_copies``: one rule for both, :mod:`services.catalogue.arrivals`
  (titles catalogued in the period with a copy added in it, and those titles' copies added in
  it). The collection is the school's, so these do not depend on the scope.
- Grades and classes are listed in the school's order (:mod:`services.school_order`).

The figures name readers (the most active, the overdue, the unreachable), so :func:`compute` is
the one entry point and checks its caller: the librarian (and the server) any scope, a class
monitor their own class (:func:`allowed_scope` decides what /stats shows; the others are
refused).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.actor import Actor, require_reader
from services.catalogue.arrivals import new_copy, new_title
from services.errors import ServiceError
from services.policy import calendar_days
from services.school_order import class_key
from services.titles import book_names
from storage.db import off_the_loop
from storage.models import (
    Copy,
    CopyStatus,
    Hold,
    HoldStatus,
    Loan,
    Notification,
    OutboxStatus,
    PurchaseSuggestion,
    Reader,
    Record,
    Role,
    SuggestionStatus,
    utcnow,
)

TOP_N = 10
# Copies that are no longer part of the collection.
GONE = (CopyStatus.LOST.value, CopyStatus.WITHDRAWN.value)
UNCLASSIFIED = "?"


class ScopeKind(enum.StrEnum):
    SCHOOL = "school"
    GRADE = "grade"
    CLASS = "class"


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind = ScopeKind.SCHOOL
    name: str | None = None

    @classmethod
    def school(cls) -> Scope:
        return cls()

    @classmethod
    def grade(cls, name: str) -> Scope:
        return cls(ScopeKind.GRADE, name)

    @classmethod
    def klass(cls, name: str) -> Scope:
        return cls(ScopeKind.CLASS, name)

    def readers(self) -> ColumnElement[bool]:
        """The WHERE clause on ``readers`` selecting this scope's readers."""
        if self.kind == ScopeKind.GRADE:
            return Reader.grade == self.name
        if self.kind == ScopeKind.CLASS:
            return Reader.class_name == self.name
        return Reader.id.is_not(None)

    def students(self) -> ColumnElement[bool]:
        return and_(self.readers(), Reader.role == Role.STUDENT.value, Reader.active.is_(True))


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ServiceError("stats.bad_period")

    def covers(
        self, column: ColumnElement[datetime] | InstrumentedAttribute[datetime]
    ) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


def period_for_dates(first: date, last: date, tz: ZoneInfo) -> Period:
    """The school days ``first`` to ``last`` (both included) as a UTC period."""
    if last < first:
        raise ServiceError("stats.bad_period")
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return Period(start, end)


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return period_for_dates(first, following - timedelta(days=1), tz)


def current_term(today: date) -> tuple[date, date]:
    """The school term ``today`` falls in, up to ``today``: the autumn term from 1 September
    (through January), the spring term from 1 February."""
    if today.month >= 9:
        return date(today.year, 9, 1), today
    if today.month == 1:
        return date(today.year - 1, 9, 1), today
    return date(today.year, 2, 1), today


async def resolve_scope(session: AsyncSession, name: str | None) -> Scope:
    """``None`` or empty → the school; one of the school's classes → that class; one of its
    grades → it (any usual spelling: 高一（3）班, 高一3班); anything else is refused with what
    the school has (``services.scopes``)."""
    from services.scopes import ScopeKind, resolve_grade_or_class

    text = (name or "").strip()
    if not text:
        return Scope.school()
    found = await resolve_grade_or_class(session, text)
    return Scope.klass(found.name) if found.kind == ScopeKind.CLASS else Scope.grade(found.name)


def _own_classes(actor: Actor) -> list[str]:
    """The classes whose figures a monitor may see: those they look after as students of it."""
    return [c for c in sorted(actor.monitor_of, key=class_key) if actor.monitors(c)]


async def allowed_scope(session: AsyncSession, actor: Actor | None, asked: str | None) -> Scope:
    """The scope ``actor`` asked for, if they may see it (the figures name readers): the librarian
    (and the server) any scope, the school by default; a class monitor their own class, which is
    also the default; everyone else is refused."""
    if actor is not None and actor.is_librarian:
        return await resolve_scope(session, asked)
    mine = _own_classes(actor) if actor is not None else []
    if not mine:
        raise ServiceError("stats.only")
    if not (asked or "").strip():
        return await resolve_scope(session, mine[0])
    scope = await resolve_scope(session, asked)
    if scope.name not in mine:
        raise ServiceError("stats.monitor_other_class")
    return scope


def require_scope(actor: Actor | None, scope: Scope) -> Actor:
    """The check behind every entry point that shows a scope's figures (see ``allowed_scope``)."""
    actor = require_reader(actor)
    if actor.is_librarian:
        return actor
    if scope.kind == ScopeKind.CLASS and scope.name in _own_classes(actor):
        return actor
    if not _own_classes(actor):
        raise ServiceError("stats.only")
    raise ServiceError("stats.monitor_other_class")


@dataclass(frozen=True, slots=True)
class Count:
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class BookCount:
    record_pk: int
    title: str
    count: int


@dataclass(frozen=True, slots=True)
class ReaderCount:
    reader_id: int
    name: str
    class_name: str | None
    count: int


@dataclass(frozen=True, slots=True)
class OverdueLoan:
    reader_id: int
    name: str
    class_name: str | None
    title: str
    barcode: str
    due_at: datetime
    days: int
    returned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UnreachableReader:
    reader_id: int
    card_no: str
    name: str
    class_name: str | None
    count: int  # their failed notifications
    reason: str  # the last failure's error, as the outbox stored it


@dataclass(frozen=True, slots=True)
class SuggestionGroup:
    query: str
    readers: int
    status: str
    first_at: datetime


@dataclass(frozen=True, slots=True)
class WeedCandidate:
    barcode: str
    title: str
    clc: str | None
    status: str
    last_lent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Stats:
    scope: Scope
    period: Period
    students: int
    loans: int
    student_loans: int
    borrowers: int
    copies_lent: int
    collection: int
    by_clc: list[Count]
    top_books: list[BookCount]
    top_readers: list[ReaderCount]
    overdue: list[OverdueLoan]
    unreachable: list[UnreachableReader]
    holds_placed: int
    holds_filled: int
    suggestions: list[SuggestionGroup]
    new_titles: int
    new_copies: int
    by_class: list[Count] = field(default_factory=list)
    returned_late: list[OverdueLoan] = field(default_factory=list)

    @property
    def loans_per_student(self) -> float:
        return self.student_loans / self.students if self.students else 0.0

    @property
    def borrow_rate(self) -> float:
        return self.borrowers / self.students if self.students else 0.0

    @property
    def circulation_rate(self) -> float:
        return self.copies_lent / self.collection if self.collection else 0.0

    @property
    def overdue_count(self) -> int:
        return len(self.overdue)

    @property
    def overdue_days(self) -> int:
        return sum(o.days for o in self.overdue)

    @property
    def returned_late_days(self) -> int:
        return sum(o.days for o in self.returned_late)


async def compute(
    session: AsyncSession,
    actor: Actor | None,
    scope: Scope,
    period: Period,
    *,
    tz: ZoneInfo,
    top: int = TOP_N,
    now: datetime | None = None,
) -> Stats:
    """Every figure of the report for one scope and period, for those who may see that scope.
    Its statements (a whole school's loans for a term: ~200 ms each at 100k loans) run off the
    event loop, so other chats are not held up."""
    require_scope(actor, scope)
    async with off_the_loop(session):
        return await _compute(session, scope, period, tz=tz, top=top, now=now)


async def _compute(
    session: AsyncSession,
    scope: Scope,
    period: Period,
    *,
    tz: ZoneInfo,
    top: int,
    now: datetime | None,
) -> Stats:
    now = now or utcnow()
    students = await session.scalar(select(func.count(Reader.id)).where(scope.students())) or 0
    row = (
        await session.execute(
            select(
                func.count(Loan.id),
                func.count(distinct(Loan.copy_id)),
                func.count(case((scope.students(), Loan.id))),
                func.count(distinct(case((scope.students(), Loan.reader_id)))),
            )
            .select_from(Loan)
            .join(Reader, Reader.id == Loan.reader_id)
            .where(scope.readers(), period.covers(Loan.lent_at))
        )
    ).one()
    loans, copies_lent, student_loans, borrowers = (int(v or 0) for v in row)
    collection = (
        await session.scalar(
            select(func.count(Copy.id)).where(
                Copy.created_at < period.end, Copy.status.not_in(GONE)
            )
        )
        or 0
    )
    holds_placed, holds_filled = await _holds(session, scope, period)
    # 新书: one rule for titles and copies (services.catalogue.arrivals).
    new_titles = (
        await session.scalar(
            select(func.count(Record.id)).where(new_title(period.start, period.end))
        )
        or 0
    )
    new_copies = (
        await session.scalar(
            select(func.count(Copy.id))
            .join(Record, Record.id == Copy.record_pk)
            .where(new_copy(period.start, period.end))
        )
        or 0
    )
    still_out, returned_late = await _late_loans(session, scope, period, tz=tz, now=now)
    return Stats(
        scope=scope,
        period=period,
        students=int(students),
        loans=loans,
        student_loans=student_loans,
        borrowers=borrowers,
        copies_lent=copies_lent,
        collection=int(collection),
        by_clc=await loans_by_clc(session, scope, period),
        top_books=await top_books(session, scope, period, limit=top),
        top_readers=await _top_readers(session, scope, period, limit=top),
        overdue=still_out,
        unreachable=await _unreachable_readers(session, scope),
        holds_placed=holds_placed,
        holds_filled=holds_filled,
        suggestions=await suggestion_groups(session, scope, period),
        new_titles=int(new_titles),
        new_copies=int(new_copies),
        by_class=await loans_by_class(session, scope, period),
        returned_late=returned_late,
    )


async def loans_by_clc(session: AsyncSession, scope: Scope, period: Period) -> list[Count]:
    """Loans by the top class of the Chinese Library Classification (the first letter: I, K, …);
    records without a class number count under ``UNCLASSIFIED``."""
    top_class = func.coalesce(func.upper(func.substr(Record.clc, 1, 1)), UNCLASSIFIED)
    rows = await session.execute(
        select(top_class, func.count(Loan.id))
        .select_from(Loan)
        .join(Reader, Reader.id == Loan.reader_id)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(scope.readers(), period.covers(Loan.lent_at))
        .group_by(top_class)
        .order_by(func.count(Loan.id).desc(), top_class)
    )
    return [Count(label or UNCLASSIFIED, int(n)) for label, n in rows]


async def loans_by_class(session: AsyncSession, scope: Scope, period: Period) -> list[Count]:
    """Loans lent in the period to the scope's students, per class (a grade's or the school's
    classes), in the school's order of classes."""
    rows = await session.execute(
        select(Reader.class_name, func.count(Loan.id))
        .select_from(Loan)
        .join(Reader, Reader.id == Loan.reader_id)
        .where(scope.students(), Reader.class_name.is_not(None), period.covers(Loan.lent_at))
        .group_by(Reader.class_name)
    )
    found = [Count(str(name), int(n)) for name, n in rows]
    return sorted(found, key=lambda c: class_key(c.label))


async def top_books(
    session: AsyncSession, scope: Scope, period: Period, *, limit: int = TOP_N
) -> list[BookCount]:
    count = func.count(Loan.id)
    rows = await session.execute(
        select(Record.id, Record.title, count)
        .select_from(Loan)
        .join(Reader, Reader.id == Loan.reader_id)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(scope.readers(), period.covers(Loan.lent_at))
        .group_by(Record.id, Record.title)
        .order_by(count.desc(), Record.title, Record.id)
        .limit(limit)
    )
    listed = list(rows)
    names = await book_names(session, (r[0] for r in listed))
    return [BookCount(pk, names[pk], int(n)) for pk, _, n in listed]


async def _top_readers(
    session: AsyncSession, scope: Scope, period: Period, *, limit: int = TOP_N
) -> list[ReaderCount]:
    """The students with the most loans in the period."""
    count = func.count(Loan.id)
    rows = await session.execute(
        select(Reader.id, Reader.name, Reader.class_name, count)
        .select_from(Loan)
        .join(Reader, Reader.id == Loan.reader_id)
        .where(scope.students(), period.covers(Loan.lent_at))
        .group_by(Reader.id, Reader.name, Reader.class_name)
        .order_by(count.desc(), Reader.name, Reader.id)
        .limit(limit)
    )
    return [ReaderCount(rid, name, klass, int(n)) for rid, name, klass, n in rows]


async def _late_loans(
    session: AsyncSession,
    scope: Scope,
    period: Period,
    *,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> tuple[list[OverdueLoan], list[OverdueLoan]]:
    """逾期未还 and 逾期归还 (see the module docstring): loans of scope readers due in the period
    (before its end, or before now in a period not yet over), split into those not returned by
    then (still owed; days to the period's last day or today) and those returned after their due
    date (days to the return). Both in due order."""
    until = min(period.end - timedelta(microseconds=1), now or utcnow())
    rows = await session.execute(
        select(
            Reader.id,
            Reader.name,
            Reader.class_name,
            Record.id,
            Copy.barcode,
            Loan.due_at,
            Loan.returned_at,
        )
        .select_from(Loan)
        .join(Reader, Reader.id == Loan.reader_id)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(
            scope.readers(),
            Loan.due_at >= period.start,
            Loan.due_at < until,
            or_(Loan.returned_at.is_(None), Loan.returned_at > Loan.due_at),
        )
        .order_by(Loan.due_at, Loan.id)
    )
    listed = list(rows)
    names = await book_names(session, (r[3] for r in listed))
    still_out: list[OverdueLoan] = []
    returned_late: list[OverdueLoan] = []
    for rid, name, klass, pk, barcode, due_at, returned_at in listed:
        title = names[pk]
        if returned_at is None or returned_at > until:
            days = calendar_days(due_at, until, tz)
            still_out.append(OverdueLoan(rid, name, klass, title, barcode, due_at, days))
        else:
            days = calendar_days(due_at, returned_at, tz)
            returned_late.append(
                OverdueLoan(rid, name, klass, title, barcode, due_at, days, returned_at)
            )
    return still_out, returned_late


async def _unreachable_readers(session: AsyncSession, scope: Scope) -> list[UnreachableReader]:
    """无法送达通知的读者: scope readers with at least one failed notification (blocked the bot,
    no Telegram binding, or out of retries) — the readers `shuxiang outbox failed` lists;
    ``count`` is how many of their notifications failed, ``reason`` the latest one's error.
    In the school's order of classes, then by name."""
    per_reader = (
        select(
            Notification.reader_id.label("reader_id"),
            func.count(Notification.id).label("failed"),
            func.max(Notification.id).label("latest"),
        )
        .where(Notification.status == OutboxStatus.FAILED.value)
        .group_by(Notification.reader_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Reader.id,
            Reader.card_no,
            Reader.name,
            Reader.class_name,
            per_reader.c.failed,
            Notification.last_error,
        )
        .select_from(per_reader)
        .join(Reader, Reader.id == per_reader.c.reader_id)
        .join(Notification, Notification.id == per_reader.c.latest)
        .where(scope.readers())
    )
    readers = [
        UnreachableReader(rid, card, name, klass, int(n), error or "")
        for rid, card, name, klass, n, error in rows
    ]
    return sorted(readers, key=lambda r: (class_key(r.class_name), r.name, r.reader_id))


async def _holds(session: AsyncSession, scope: Scope, period: Period) -> tuple[int, int]:
    row = (
        await session.execute(
            select(
                func.count(Hold.id),
                func.count(case((Hold.status == HoldStatus.COLLECTED.value, Hold.id))),
            )
            .select_from(Hold)
            .join(Reader, Reader.id == Hold.reader_id)
            .where(scope.readers(), period.covers(Hold.placed_at))
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


async def suggestion_groups(
    session: AsyncSession,
    scope: Scope,
    period: Period | None = None,
    *,
    statuses: Sequence[SuggestionStatus] = (),
) -> list[SuggestionGroup]:
    """Purchase suggestions grouped by what was asked for, with how many readers asked.
    At school level, suggestions from Telegram users not bound to a reader count too."""
    text = PurchaseSuggestion.query  # stored stripped
    first_at = func.min(PurchaseSuggestion.created_at)
    askers = func.count(
        distinct(func.coalesce(PurchaseSuggestion.reader_id, -PurchaseSuggestion.telegram_user_id))
    )
    stmt = (
        select(
            text,
            askers,
            func.min(PurchaseSuggestion.status),
            func.min(PurchaseSuggestion.created_at),
        )
        .select_from(PurchaseSuggestion)
        .outerjoin(Reader, Reader.id == PurchaseSuggestion.reader_id)
        .group_by(text)
        .order_by(askers.desc(), first_at, text)
    )
    if scope.kind != ScopeKind.SCHOOL:
        stmt = stmt.where(scope.readers())
    if period is not None:
        stmt = stmt.where(period.covers(PurchaseSuggestion.created_at))
    if statuses:
        stmt = stmt.where(PurchaseSuggestion.status.in_([s.value for s in statuses]))
    rows = await session.execute(stmt)
    return [SuggestionGroup(q, int(n), str(status), first) for q, n, status, first in rows]


async def weeding_list(
    session: AsyncSession, *, years: int, now: datetime | None = None
) -> list[WeedCandidate]:
    """Copies (剔旧候选) in the collection for at least ``years`` years and not lent since, and
    every copy marked damaged (破损), however recent or popular."""
    since = (now or utcnow()) - timedelta(days=round(365.25 * years))
    last_lent = (
        select(Loan.copy_id, func.max(Loan.lent_at).label("last_lent"))
        .group_by(Loan.copy_id)
        .subquery()
    )
    rows = await session.execute(
        select(Copy.barcode, Record.id, Record.clc, Copy.status, last_lent.c.last_lent)
        .join(Record, Record.id == Copy.record_pk)
        .outerjoin(last_lent, last_lent.c.copy_id == Copy.id)
        .where(
            Copy.status.not_in(GONE),
            or_(
                Copy.status == CopyStatus.DAMAGED.value,
                and_(
                    Copy.created_at < since,
                    or_(last_lent.c.last_lent.is_(None), last_lent.c.last_lent < since),
                ),
            ),
        )
        .order_by(Record.clc, Copy.barcode)
    )
    listed = list(rows)
    names = await book_names(session, (r[1] for r in listed))
    return [WeedCandidate(b, names[pk], clc, str(st), last) for b, pk, clc, st, last in listed]
