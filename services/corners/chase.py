"""The overdue chase (催书单) and graduation clearance (毕业清还).

A class's overdue list goes privately to that class's monitors (weekly, and on request), never
to the class; every student on it gets their own reminder the same day. Clearance lists the
graduating (or transferring) students who still owe books, and reminds them only when asked.
Both are idempotent by dedupe key: running a sweep twice sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, monitor_or_librarian, own_class, require_librarian
from services.audit import record_audit
from services.corners.kinds import (
    CHASE_MONITOR_LIST,
    CHASE_STUDENT,
    ChaseListPayload,
    ChaseStudentPayload,
    ClearancePayload,
)
from services.corners.kinds import CLEARANCE_REMINDER as CLEARANCE_KIND
from services.errors import ServiceError
from services.i18n import t
from services.notifications import enqueue
from services.policy import calendar_days
from services.readers.reach import reachable as can_reach
from services.school_order import class_key
from services.scopes import resolve_card, resolve_class, resolve_grade
from services.titles import book_names
from storage.models import (
    ClassMonitor,
    Copy,
    CopyStatus,
    Loan,
    Reader,
    Record,
    utcnow,
)

MONITOR_LIST = CHASE_MONITOR_LIST.name
STUDENT_REMINDER = CHASE_STUDENT.name
CLEARANCE_REMINDER = CLEARANCE_KIND.name
# A Telegram message holds 4096 characters: longer lists are cut with "and N more".
MAX_LINES = 40


@dataclass(frozen=True, slots=True)
class OverdueLine:
    reader_id: int
    name: str
    card_no: str
    title: str
    barcode: str
    due_at: datetime
    days: int

    def due_text(self, tz: ZoneInfo) -> str:
        return self.due_at.astimezone(tz).strftime("%Y-%m-%d")


# Pushes carry lists as plain text (escaped when the push is rendered): the templates take flat
# fields.
def list_text(lines: Sequence[OverdueLine], tz: ZoneInfo) -> str:
    """A class's overdue list, one line a loan, cut at MAX_LINES with "and N more"."""
    out = [
        t(
            "notify_corners.chase_line",
            name=line.name,
            card_no=line.card_no,
            title=line.title,
            days=line.days,
            due=line.due_text(tz),
        )
        for line in lines[:MAX_LINES]
    ]
    if len(lines) > MAX_LINES:
        out.append(t("notify_corners.chase_more", count=len(lines) - MAX_LINES))
    return "\n".join(out)


def _student_text(lines: Sequence[OverdueLine], tz: ZoneInfo) -> str:
    return "\n".join(
        t(
            "notify_corners.student_line",
            title=line.title,
            due=line.due_text(tz),
            days=line.days,
        )
        for line in lines[:MAX_LINES]
    )


async def class_overdue(
    session: AsyncSession, actor: Actor | None, class_name: str, *, now: datetime, tz: ZoneInfo
) -> list[OverdueLine]:
    """A class's overdue readers and books: for its own monitors and the librarian."""
    monitor_or_librarian(actor, class_name)
    rows = await session.execute(
        select(Reader.id, Reader.name, Reader.card_no, Record.id, Copy.barcode, Loan.due_at)
        .join(Loan, Loan.reader_id == Reader.id)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(Reader.class_name == class_name, Reader.active.is_(True))
        .where(Loan.returned_at.is_(None), Loan.due_at < now)
        .order_by(Reader.card_no, Loan.due_at, Loan.id)
    )
    listed = list(rows)
    names = await book_names(session, (r[3] for r in listed))
    return [
        OverdueLine(rid, name, card, names[pk], barcode, due, calendar_days(due, now, tz))
        for rid, name, card, pk, barcode, due in listed
    ]


async def _remind_students(
    session: AsyncSession, lines: list[OverdueLine], *, now: datetime, tz: ZoneInfo
) -> int:
    """Each student on a list gets one reminder of their own that day, however often it is read."""
    day = now.astimezone(tz).date().isoformat()
    by_reader: dict[int, list[OverdueLine]] = {}
    for line in lines:
        by_reader.setdefault(line.reader_id, []).append(line)
    sent = 0
    for reader_id, own in by_reader.items():
        payload = ChaseStudentPayload(reader_id=reader_id, day=day, books=_student_text(own, tz))
        sent += await enqueue(session, CHASE_STUDENT, reader_id=reader_id, payload=payload, now=now)
    return sent


async def overdue_for(
    session: AsyncSession,
    actor: Actor | None,
    *,
    class_name: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo,
) -> tuple[str, list[OverdueLine]]:
    """/cuishu: a monitor's own class (or any class for the librarian)."""
    now = now or utcnow()
    if class_name is None:
        class_name = own_class(actor)
    class_name = await resolve_class(session, class_name)
    actor = monitor_or_librarian(actor, class_name)
    lines = await class_overdue(session, actor, class_name, now=now, tz=tz)
    await _remind_students(session, lines, now=now, tz=tz)
    record_audit(
        session,
        actor.audit_name,
        "chase_list",
        {"class_name": class_name, "lines": len(lines)},
        now=now,
    )
    return class_name, lines


@dataclass(frozen=True, slots=True)
class ChaseRun:
    lists: int
    reminders: int


async def weekly_chase(
    session: AsyncSession, actor: Actor | None, *, now: datetime, tz: ZoneInfo
) -> ChaseRun:
    """The weekly sweep: each monitor gets their own class's list once per ISO week. Every
    class's overdue readers, sent to many: the server's job (or the librarian's CLI)."""
    actor = require_librarian(actor)
    year, week, _ = now.astimezone(tz).isocalendar()
    monitors = list(
        await session.execute(
            select(ClassMonitor.reader_id, ClassMonitor.class_name)
            .join(Reader, Reader.id == ClassMonitor.reader_id)
            .where(Reader.active.is_(True), Reader.class_name == ClassMonitor.class_name)
            .order_by(ClassMonitor.class_name, ClassMonitor.reader_id)
        )
    )
    classes: dict[str, list[int]] = {}
    for reader_id, class_name in sorted(monitors, key=lambda m: class_key(m[1])):
        classes.setdefault(class_name, []).append(reader_id)
    lists = reminders = 0
    for class_name, monitor_ids in classes.items():
        lines = await class_overdue(session, actor, class_name, now=now, tz=tz)
        if not lines:
            continue
        text = list_text(lines, tz)
        for monitor_id in monitor_ids:
            payload = ChaseListPayload(
                monitor_id=monitor_id,
                class_name=class_name,
                week=f"{year}-W{week:02d}",
                lines=text,
            )
            lists += await enqueue(
                session, CHASE_MONITOR_LIST, reader_id=monitor_id, payload=payload, now=now
            )
        reminders += await _remind_students(session, lines, now=now, tz=tz)
    if lists:
        record_audit(
            session,
            actor.audit_name,
            "chase_weekly",
            {"lists": lists, "reminders": reminders},
            now=now,
        )
    return ChaseRun(lists, reminders)


# --- graduation clearance -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwedBook:
    title: str
    barcode: str
    due_at: datetime
    lost: bool  # the copy was declared lost: the reader owes a replacement or its price


@dataclass(frozen=True, slots=True)
class ClearanceRow:
    reader_id: int
    card_no: str
    name: str
    class_name: str | None
    books: list[OwedBook]


@dataclass(frozen=True, slots=True)
class ClearanceSent:
    sent: int  # reminders queued now
    earlier: int  # reminded earlier today (once a day at most)
    unreachable: list[ClearanceRow]  # no Telegram binding, or they blocked the bot: tell them


async def clearance(
    session: AsyncSession,
    actor: Actor | None,
    *,
    grade: str | None = None,
    card_no: str | None = None,
    remind: bool = False,
    now: datetime | None = None,
    tz: ZoneInfo,
) -> list[ClearanceRow]:
    """Who of a graduating grade (or one transferring student) still owes the library books.
    A grade or card the school does not have is refused with what it has; ``remind`` also
    reminds them (``remind_owing``)."""
    actor = require_librarian(actor)
    now = now or utcnow()
    if not grade and not card_no:
        raise ServiceError("clearance.nobody")
    query = (
        select(Reader, Record.id, Copy.barcode, Loan.due_at, Copy.status)
        .join(Loan, Loan.reader_id == Reader.id)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(Loan.returned_at.is_(None))
        .order_by(Reader.class_name, Reader.card_no, Loan.due_at)
    )
    if grade:
        query = query.where(Reader.grade == await resolve_grade(session, grade))
    if card_no:
        who = await resolve_card(session, card_no)
        query = query.where(Reader.id == who.id)
    rows: dict[int, ClearanceRow] = {}
    owed = list(await session.execute(query))
    names = await book_names(session, (r[1] for r in owed))
    for reader, pk, barcode, due_at, status in owed:
        row = rows.setdefault(
            reader.id, ClearanceRow(reader.id, reader.card_no, reader.name, reader.class_name, [])
        )
        row.books.append(OwedBook(names[pk], barcode, due_at, status == CopyStatus.LOST.value))
    # Classes in the school's order, readers by card number within one.
    found = sorted(rows.values(), key=lambda r: (class_key(r.class_name), r.card_no))
    record_audit(
        session,
        actor.audit_name,
        "clearance",
        {"grade": grade, "card_no": card_no, "owing": len(found), "reminded": remind},
        now=now,
    )
    if remind:
        await remind_owing(session, actor, found, now=now, tz=tz)
    return found


async def remind_owing(
    session: AsyncSession,
    actor: Actor | None,
    rows: Sequence[ClearanceRow],
    *,
    now: datetime | None = None,
    tz: ZoneInfo,
) -> ClearanceSent:
    """Remind each student on a clearance list who can be reached, at most once a day (so the
    list can be rerun as it shrinks); those without a working binding are named instead of
    queued to fail."""
    actor = require_librarian(actor)
    now = now or utcnow()
    reachable = set(
        await session.scalars(
            select(Reader.id).where(
                Reader.id.in_([r.reader_id for r in rows]), can_reach(Reader.id)
            )
        )
    )
    day = now.astimezone(tz).date().isoformat()
    sent = earlier = 0
    unreachable = []
    for row in rows:
        if row.reader_id not in reachable:
            unreachable.append(row)
            continue
        books = "\n".join(
            t(
                "notify_corners.clearance_lost" if b.lost else "notify_corners.clearance_line",
                title=b.title,
                barcode=b.barcode,
            )
            for b in row.books[:MAX_LINES]
        )
        payload = ClearancePayload(reader_id=row.reader_id, day=day, books=books)
        if await enqueue(
            session, CLEARANCE_KIND, reader_id=row.reader_id, payload=payload, now=now
        ):
            sent += 1
        else:
            earlier += 1
    record_audit(
        session,
        actor.audit_name,
        "clearance_remind",
        {"sent": sent, "earlier": earlier, "unreachable": len(unreachable)},
        now=now,
    )
    return ClearanceSent(sent, earlier, unreachable)
