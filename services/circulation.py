"""Circulation rules: lending, returns, renewals and the hold queue.

Every function runs inside the caller's unit of work (``Database.transaction()`` or the bot's
per-update session) and never commits. Anything that changes a title's copies, loans or holds first
locks that title's record row, so on PostgreSQL concurrent returns, renewals and reservations of
one title queue up instead of interleaving; on SQLite ``BEGIN IMMEDIATE`` already serialises
writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit import actor_for, record_audit
from services.errors import ServiceError
from services.outbox import enqueue
from services.policy import LoanPolicy
from storage.models import (
    ACTIVE_HOLD_STATUSES,
    Copy,
    CopyStatus,
    Hold,
    HoldStatus,
    Loan,
    Reader,
    Record,
    Role,
    utcnow,
)

LENDABLE = (CopyStatus.ON_SHELF.value, CopyStatus.IN_TRANSIT.value)
COUNTED = tuple(s.value for s in CopyStatus if s not in (CopyStatus.LOST, CopyStatus.WITHDRAWN))


@dataclass(frozen=True, slots=True)
class LoanView:
    loan_id: int
    record_pk: int
    title: str
    barcode: str
    lent_at: datetime
    due_at: datetime
    renewals: int
    overdue: bool


@dataclass(frozen=True, slots=True)
class HoldView:
    hold_id: int
    record_pk: int
    title: str
    status: str
    position: int  # 1 = next in line; 0 when ready
    ready_until: datetime | None
    deliver_to_office: bool


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    loan_id: int
    reader_name: str
    card_no: str
    title: str
    barcode: str
    due_at: datetime
    collected_hold: bool


@dataclass(frozen=True, slots=True)
class ReturnResult:
    title: str
    barcode: str
    reader_name: str
    card_no: str
    due_at: datetime
    returned_at: datetime
    # When a hold was waiting, the copy goes to the hold shelf for this reader.
    held_for_name: str | None
    held_for_card: str | None
    deliver_to_office: bool


@dataclass(frozen=True, slots=True)
class RenewResult:
    loan_id: int
    title: str
    due_at: datetime
    renewals_left: int


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    hold_id: int
    title: str
    position: int
    deliver_to_office: bool


async def lock_record(session: AsyncSession, record_pk: int) -> Record:
    record = await session.scalar(select(Record).where(Record.id == record_pk).with_for_update())
    if record is None:
        raise ServiceError("book.not_found")
    return record


async def reader_by_card(session: AsyncSession, card_no: str) -> Reader:
    reader = await session.scalar(select(Reader).where(Reader.card_no == card_no.strip()))
    if reader is None:
        raise ServiceError("reader.not_found", card_no=card_no.strip())
    return reader


async def _copy_by_barcode(session: AsyncSession, barcode: str) -> Copy:
    copy = await session.scalar(select(Copy).where(Copy.barcode == barcode.strip()))
    if copy is None:
        raise ServiceError("copy.not_found", barcode=barcode.strip())
    return copy


async def open_loan_count(session: AsyncSession, reader_id: int) -> int:
    count = await session.scalar(
        select(func.count(Loan.id)).where(Loan.reader_id == reader_id, Loan.returned_at.is_(None))
    )
    return int(count or 0)


async def overdue_count(session: AsyncSession, reader_id: int, now: datetime) -> int:
    count = await session.scalar(
        select(func.count(Loan.id)).where(
            Loan.reader_id == reader_id, Loan.returned_at.is_(None), Loan.due_at < now
        )
    )
    return int(count or 0)


async def waiting_count(session: AsyncSession, record_pk: int) -> int:
    count = await session.scalar(
        select(func.count(Hold.id)).where(
            Hold.record_pk == record_pk, Hold.status == HoldStatus.WAITING.value
        )
    )
    return int(count or 0)


async def queue_position(session: AsyncSession, hold: Hold) -> int:
    """1-based place among the waiting holds of the same title (placed_at, then id)."""
    if hold.status != HoldStatus.WAITING.value:
        return 0
    ahead = await session.scalar(
        select(func.count(Hold.id)).where(
            Hold.record_pk == hold.record_pk,
            Hold.status == HoldStatus.WAITING.value,
            (Hold.placed_at < hold.placed_at)
            | ((Hold.placed_at == hold.placed_at) & (Hold.id < hold.id)),
        )
    )
    return int(ahead or 0) + 1


async def checkout(
    session: AsyncSession,
    *,
    card_no: str,
    barcode: str,
    policy: LoanPolicy,
    actor_reader_id: int | None = None,
    now: datetime | None = None,
) -> CheckoutResult:
    now = now or utcnow()
    reader = await reader_by_card(session, card_no)
    if not reader.active:
        raise ServiceError("reader.inactive", name=reader.name)
    copy = await _copy_by_barcode(session, barcode)
    record = await lock_record(session, copy.record_pk)
    # Title first, then reader, everywhere: the reader lock keeps the limits below honest when
    # the same reader borrows two different titles at once on PostgreSQL.
    await session.refresh(reader, with_for_update=True)
    await session.refresh(copy, with_for_update=True)

    # Every rule is checked before anything is written.
    if copy.status == CopyStatus.ON_LOAN.value:
        raise ServiceError("copy.on_loan", barcode=copy.barcode, title=record.title)
    if copy.status == CopyStatus.ON_HOLD_SHELF.value:
        shelf_hold = await session.scalar(
            select(Hold).where(Hold.copy_id == copy.id, Hold.status == HoldStatus.READY.value)
        )
        if shelf_hold is not None and shelf_hold.reader_id != reader.id:
            raise ServiceError("copy.held_for_other", barcode=copy.barcode, title=record.title)
    elif copy.status == CopyStatus.IN_CORNER.value:
        raise ServiceError("copy.in_corner", barcode=copy.barcode, title=record.title)
    elif copy.status not in LENDABLE:
        raise ServiceError("copy.unavailable", barcode=copy.barcode, title=record.title)
    rules = policy.for_role(reader.role)
    if await overdue_count(session, reader.id, now):
        raise ServiceError("loan.has_overdue", name=reader.name)
    if await open_loan_count(session, reader.id) >= rules.max_loans:
        raise ServiceError("loan.limit_reached", name=reader.name, limit=rules.max_loans)

    # The reader's own hold on this title (waiting, or ready with this or another copy) is served.
    own_hold = await session.scalar(
        select(Hold).where(
            Hold.record_pk == record.id,
            Hold.reader_id == reader.id,
            Hold.status.in_(ACTIVE_HOLD_STATUSES),
        )
    )
    collected = own_hold is not None
    set_aside: int | None = None
    if own_hold is not None:
        if own_hold.status == HoldStatus.READY.value and own_hold.copy_id != copy.id:
            set_aside = own_hold.copy_id
        own_hold.status = HoldStatus.COLLECTED.value
        own_hold.closed_at = now
        await session.flush()
    if set_aside is not None:
        # They took another copy: the one kept for them goes to the next reader or the shelf.
        await _pass_copy_on(session, await session.get_one(Copy, set_aside), record, policy, now)

    loan = Loan(
        copy_id=copy.id,
        reader_id=reader.id,
        lent_at=now,
        due_at=policy.due(now, rules.loan_days),
        lent_by=actor_reader_id,
    )
    session.add(loan)
    copy.status = CopyStatus.ON_LOAN.value
    record.loan_count = (record.loan_count or 0) + 1
    try:
        await session.flush()
    except IntegrityError:
        raise ServiceError("copy.on_loan", barcode=copy.barcode, title=record.title) from None
    record_audit(
        session,
        actor_for(actor_reader_id),
        "checkout",
        {"loan_id": loan.id, "card_no": reader.card_no, "barcode": copy.barcode},
        now=now,
    )
    return CheckoutResult(
        loan_id=loan.id,
        reader_name=reader.name,
        card_no=reader.card_no,
        title=record.title,
        barcode=copy.barcode,
        due_at=loan.due_at,
        collected_hold=collected,
    )


async def _pass_copy_on(
    session: AsyncSession, copy: Copy, record: Record, policy: LoanPolicy, now: datetime
) -> Hold | None:
    """Give a copy that came free to the first waiting hold, or put it back on the shelf."""
    hold = await session.scalar(
        select(Hold)
        .where(Hold.record_pk == record.id, Hold.status == HoldStatus.WAITING.value)
        .order_by(Hold.placed_at, Hold.id)
        .limit(1)
        .with_for_update()
    )
    if hold is None:
        copy.status = CopyStatus.IN_CORNER.value if copy.corner_id else CopyStatus.ON_SHELF.value
        return None
    hold.status = HoldStatus.READY.value
    hold.copy_id = copy.id
    hold.ready_until = policy.due(now, policy.hold_pickup_days)
    copy.status = CopyStatus.ON_HOLD_SHELF.value
    await session.flush()
    await enqueue(
        session,
        kind="hold_ready",
        reader_id=hold.reader_id,
        dedupe_key=f"hold_ready:{hold.id}",
        payload={
            "hold_id": hold.id,
            "record_pk": record.id,
            "title": record.title,
            "ready_until": hold.ready_until.isoformat(),
            "deliver_to_office": hold.deliver_to_office,
        },
        now=now,
    )
    return hold


async def return_copy(
    session: AsyncSession,
    *,
    barcode: str,
    policy: LoanPolicy,
    actor_reader_id: int | None = None,
    now: datetime | None = None,
) -> ReturnResult:
    now = now or utcnow()
    copy = await _copy_by_barcode(session, barcode)
    record = await lock_record(session, copy.record_pk)
    await session.refresh(copy, with_for_update=True)
    loan = await session.scalar(
        select(Loan).where(Loan.copy_id == copy.id, Loan.returned_at.is_(None)).with_for_update()
    )
    if loan is None:
        raise ServiceError("copy.not_on_loan", barcode=copy.barcode, title=record.title)
    borrower = await session.get_one(Reader, loan.reader_id)
    loan.returned_at = now
    hold = await _pass_copy_on(session, copy, record, policy, now)
    held_for = await session.get_one(Reader, hold.reader_id) if hold else None
    record_audit(
        session,
        actor_for(actor_reader_id),
        "return",
        {"loan_id": loan.id, "barcode": copy.barcode, "hold_id": hold.id if hold else None},
        now=now,
    )
    return ReturnResult(
        title=record.title,
        barcode=copy.barcode,
        reader_name=borrower.name,
        card_no=borrower.card_no,
        due_at=loan.due_at,
        returned_at=now,
        held_for_name=held_for.name if held_for else None,
        held_for_card=held_for.card_no if held_for else None,
        deliver_to_office=bool(hold and hold.deliver_to_office),
    )


async def renew(
    session: AsyncSession,
    *,
    reader_id: int,
    loan_id: int,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> RenewResult:
    now = now or utcnow()
    # Only the borrower's own open loan: another reader's id gives the same answer as a missing one.
    loan = await session.scalar(select(Loan).where(Loan.id == loan_id, Loan.reader_id == reader_id))
    if loan is None or loan.returned_at is not None:
        raise ServiceError("renew.not_found")
    copy = await session.get_one(Copy, loan.copy_id)
    record = await lock_record(session, copy.record_pk)
    await session.refresh(loan, with_for_update=True)
    if loan.returned_at is not None:
        raise ServiceError("renew.not_found")
    reader = await session.get_one(Reader, reader_id)
    rules = policy.for_role(reader.role)
    if loan.due_at < now:
        raise ServiceError("renew.overdue", title=record.title)
    if loan.renewals >= rules.renewals:
        raise ServiceError("renew.limit", title=record.title, limit=rules.renewals)
    waiting = await waiting_count(session, record.id)
    if waiting:
        raise ServiceError("renew.others_waiting", title=record.title, waiting=waiting)
    loan.due_at = policy.due(loan.due_at, rules.renewal_days)
    loan.renewals += 1
    record_audit(session, actor_for(reader_id), "renew", {"loan_id": loan.id}, now=now)
    return RenewResult(
        loan_id=loan.id,
        title=record.title,
        due_at=loan.due_at,
        renewals_left=rules.renewals - loan.renewals,
    )


async def place_hold(
    session: AsyncSession,
    *,
    reader_id: int,
    record_pk: int,
    policy: LoanPolicy,
    deliver_to_office: bool = False,
    now: datetime | None = None,
) -> HoldPlaced:
    now = now or utcnow()
    record = await lock_record(session, record_pk)
    reader = await session.get_one(Reader, reader_id, with_for_update=True)
    if not reader.active:
        raise ServiceError("reader.inactive", name=reader.name)
    if deliver_to_office and reader.role != Role.TEACHER.value:
        raise ServiceError("hold.delivery_teachers_only")
    existing = await session.scalar(
        select(Hold).where(
            Hold.record_pk == record.id,
            Hold.reader_id == reader.id,
            Hold.status.in_(ACTIVE_HOLD_STATUSES),
        )
    )
    if existing is not None:
        raise ServiceError("hold.already", title=record.title)
    borrowed = await session.scalar(
        select(func.count(Loan.id))
        .join(Copy, Copy.id == Loan.copy_id)
        .where(Copy.record_pk == record.id, Loan.reader_id == reader.id)
        .where(Loan.returned_at.is_(None))
    )
    if borrowed:
        raise ServiceError("hold.already_borrowed", title=record.title)
    on_shelf = await session.scalar(
        select(func.count(Copy.id)).where(
            Copy.record_pk == record.id, Copy.status == CopyStatus.ON_SHELF.value
        )
    )
    if on_shelf:
        raise ServiceError("hold.on_shelf", title=record.title, count=on_shelf)
    holdable = await session.scalar(
        select(func.count(Copy.id)).where(Copy.record_pk == record.id, Copy.status.in_(COUNTED))
    )
    if not holdable:
        raise ServiceError("hold.no_copies", title=record.title)
    active = await session.scalar(
        select(func.count(Hold.id)).where(
            Hold.reader_id == reader.id, Hold.status.in_(ACTIVE_HOLD_STATUSES)
        )
    )
    rules = policy.for_role(reader.role)
    if (active or 0) >= rules.max_holds:
        raise ServiceError("hold.limit", limit=rules.max_holds)
    hold = Hold(
        record_pk=record.id,
        reader_id=reader.id,
        placed_at=now,
        deliver_to_office=deliver_to_office,
    )
    session.add(hold)
    try:
        await session.flush()
    except IntegrityError:
        raise ServiceError("hold.already", title=record.title) from None
    record_audit(session, actor_for(reader.id), "hold", {"hold_id": hold.id}, now=now)
    return HoldPlaced(
        hold_id=hold.id,
        title=record.title,
        position=await queue_position(session, hold),
        deliver_to_office=deliver_to_office,
    )


async def cancel_hold(
    session: AsyncSession,
    *,
    reader_id: int,
    hold_id: int,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> str:
    """Cancel one's own active hold; a copy set aside for it goes to the next reader."""
    now = now or utcnow()
    hold = await session.scalar(select(Hold).where(Hold.id == hold_id, Hold.reader_id == reader_id))
    if hold is None or hold.status not in ACTIVE_HOLD_STATUSES:
        raise ServiceError("hold.not_found")
    record = await lock_record(session, hold.record_pk)
    await session.refresh(hold, with_for_update=True)
    if hold.status not in ACTIVE_HOLD_STATUSES:
        raise ServiceError("hold.not_found")
    was_ready_copy = hold.copy_id if hold.status == HoldStatus.READY.value else None
    hold.status = HoldStatus.CANCELLED.value
    hold.closed_at = now
    await session.flush()
    if was_ready_copy is not None:
        copy = await session.get_one(Copy, was_ready_copy)
        await _pass_copy_on(session, copy, record, policy, now)
    record_audit(session, actor_for(reader_id), "hold_cancel", {"hold_id": hold.id}, now=now)
    return record.title


async def expire_ready_holds(
    session: AsyncSession, *, policy: LoanPolicy, now: datetime | None = None
) -> int:
    """Ready holds not collected in time expire; their copies go to the next reader or the shelf."""
    now = now or utcnow()
    stale = list(
        await session.scalars(
            select(Hold)
            .where(Hold.status == HoldStatus.READY.value, Hold.ready_until < now)
            .order_by(Hold.id)
        )
    )
    expired = 0
    for hold in stale:
        record = await lock_record(session, hold.record_pk)
        await session.refresh(hold, with_for_update=True)
        if hold.status != HoldStatus.READY.value:
            continue
        expired += 1
        hold.status = HoldStatus.EXPIRED.value
        hold.closed_at = now
        await session.flush()
        if hold.copy_id is not None:
            copy = await session.get_one(Copy, hold.copy_id)
            await _pass_copy_on(session, copy, record, policy, now)
    return expired


async def loans_of(
    session: AsyncSession, reader_id: int, now: datetime | None = None
) -> list[LoanView]:
    now = now or utcnow()
    rows = await session.execute(
        select(Loan, Copy.barcode, Record.id, Record.title)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(Loan.reader_id == reader_id, Loan.returned_at.is_(None))
        .order_by(Loan.due_at, Loan.id)
    )
    views = []
    for loan, barcode, record_pk, title in rows:
        views.append(
            LoanView(
                loan_id=loan.id,
                record_pk=record_pk,
                title=title,
                barcode=barcode,
                lent_at=loan.lent_at,
                due_at=loan.due_at,
                renewals=loan.renewals,
                overdue=loan.due_at < now,
            )
        )
    return views


async def holds_of(session: AsyncSession, reader_id: int) -> list[HoldView]:
    rows = await session.execute(
        select(Hold, Record.title)
        .join(Record, Record.id == Hold.record_pk)
        .where(Hold.reader_id == reader_id, Hold.status.in_(ACTIVE_HOLD_STATUSES))
        .order_by(Hold.placed_at, Hold.id)
    )
    views = []
    for hold, title in rows:
        views.append(
            HoldView(
                hold_id=hold.id,
                record_pk=hold.record_pk,
                title=title,
                status=hold.status,
                position=await queue_position(session, hold),
                ready_until=hold.ready_until,
                deliver_to_office=hold.deliver_to_office,
            )
        )
    return views
