"""The hold queue: placing, cancelling, and passing a copy that came free to the next reader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian, require_reader, require_self_or_librarian
from services.audit import record_audit
from services.circulation.common import COUNTED, ROW_LOCK, acts_for, lock_record
from services.circulation.kinds import (
    HOLD_EXPIRED,
    HOLD_READY,
    RESERVED_NOTE,
    HoldPayload,
    HoldReadyPayload,
    ReservedPayload,
)
from services.circulation.refusals import at_loan_limit
from services.corners.requests import request_bring_back
from services.errors import ServiceError
from services.imports.calendar import next_open_due
from services.notifications import enqueue, enqueue_many
from services.policy import LoanPolicy
from services.titles import record_name
from storage import core
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


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    hold_id: int
    title: str
    position: int
    deliver_to_office: bool


async def pass_copy_on(
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
    hold.ready_until = await next_open_due(
        session, policy.due(now, policy.hold_pickup_days), ZoneInfo(policy.timezone)
    )
    copy.status = CopyStatus.ON_HOLD_SHELF.value
    await session.flush()
    # A reader with as many books out as allowed cannot take it home yet: the notice says so.
    reader = await session.get_one(Reader, hold.reader_id)
    await enqueue(
        session,
        HOLD_READY,
        reader_id=hold.reader_id,
        payload=HoldReadyPayload(
            hold_id=hold.id,
            record_pk=record.id,
            title=record_name(record),
            ready_until=hold.ready_until,
            deliver_to_office=hold.deliver_to_office,
            at_limit=await at_loan_limit(session, reader, policy),
            max_loans=policy.for_role(reader.role).max_loans,
        ),
        now=now,
    )
    return hold


# Every hold placed or cancelled runs these: built once (building them cost more than running
# them).
_BORROWERS = (
    select(Loan.id, Loan.reader_id, Loan.due_at)
    .join(Copy, Copy.id == Loan.copy_id)
    .where(Copy.record_pk == bindparam("record_pk", type_=Integer), Loan.returned_at.is_(None))
)
_HOLD = select(Hold).where(Hold.id == bindparam("hold_id", type_=Integer))


async def tell_borrowers(session: AsyncSession, record: Record, now: datetime) -> int:
    """Borrowers of a title someone now waits for are told, kindly and once per loan, with
    their due date (renewal will not be possible)."""
    rows = await session.execute(_BORROWERS, {"record_pk": record.id})
    return await enqueue_many(
        session,
        RESERVED_NOTE,
        [
            (reader_id, ReservedPayload(loan_id=loan_id, title=record_name(record), due_at=due_at))
            for loan_id, reader_id, due_at in rows
        ],
        now=now,
    )


async def title_hold_refusal(session: AsyncSession, record: Record) -> ServiceError | None:
    """Why nobody may reserve this title now: a copy is on the shelf (take it), or there is no
    copy to wait for. The title's half of hold_refusal (lists of books ask only this)."""
    on_shelf = await session.scalar(
        select(func.count(Copy.id)).where(
            Copy.record_pk == record.id, Copy.status == CopyStatus.ON_SHELF.value
        )
    )
    if on_shelf:
        return ServiceError("hold.on_shelf", title=record_name(record), count=on_shelf)
    holdable = await session.scalar(
        select(func.count(Copy.id)).where(Copy.record_pk == record.id, Copy.status.in_(COUNTED))
    )
    if not holdable:
        return ServiceError("hold.no_copies", title=record_name(record))
    return None


# What hold_refusal decides on, as columns of one statement (the book card reads them with the
# rest of the card): bound to the title's ``record_pk`` and the reader's ``reader_id``.
RECORD_PK = bindparam("record_pk", type_=Integer)
READER_ID = bindparam("reader_id", type_=Integer)
_copies, _loans, _holds = Copy.__table__.c, Loan.__table__.c, Hold.__table__.c
HOLD_FACTS = (
    # The reader's active hold of the title (one at most: uq_holds_active_reader_record).
    select(_holds.id)
    .where(
        _holds.record_pk == RECORD_PK,
        _holds.reader_id == READER_ID,
        _holds.status.in_(ACTIVE_HOLD_STATUSES),
    )
    .scalar_subquery()
    .label("existing"),
    # When the reader's own copy of the title is due back (None: they have none out).
    select(func.min(_loans.due_at))
    .select_from(Loan.__table__.join(Copy.__table__, _copies.id == _loans.copy_id))
    .where(
        _copies.record_pk == RECORD_PK,
        _loans.reader_id == READER_ID,
        _loans.returned_at.is_(None),
    )
    .scalar_subquery()
    .label("borrowed_due"),
    select(func.count(_copies.id))
    .where(_copies.record_pk == RECORD_PK, _copies.status == CopyStatus.ON_SHELF.value)
    .scalar_subquery()
    .label("on_shelf"),
    select(func.count(_copies.id))
    .where(_copies.record_pk == RECORD_PK, _copies.status.in_(COUNTED))
    .scalar_subquery()
    .label("holdable"),
    select(func.count(_holds.id))
    .where(_holds.reader_id == READER_ID, _holds.status.in_(ACTIVE_HOLD_STATUSES))
    .scalar_subquery()
    .label("active_holds"),
    select(func.count(_holds.id))
    .where(_holds.record_pk == RECORD_PK, _holds.status == HoldStatus.WAITING.value)
    .scalar_subquery()
    .label("waiting"),
)
_HOLD_FACTS = select(
    *HOLD_FACTS,
    select(func.max(_holds.placed_at))
    .where(_holds.record_pk == RECORD_PK)
    .scalar_subquery()
    .label("latest"),
)


def refusal_of(
    facts: Row[Any],
    *,
    active: bool,
    role: str,
    name: str,
    title: str,
    policy: LoanPolicy,
    deliver_to_office: bool = False,
) -> ServiceError | None:
    """hold_refusal's verdict on the reader (``active``, ``role``, ``name``) and the columns of
    HOLD_FACTS read for them and the title."""
    if not active:
        return ServiceError("reader.inactive", name=name)
    if deliver_to_office and role != Role.TEACHER.value:
        return ServiceError("hold.delivery_teachers_only")
    if facts.existing is not None:
        return ServiceError("hold.already", title=title)
    if facts.borrowed_due is not None:
        return ServiceError("hold.already_borrowed", title=title)
    if facts.on_shelf:
        return ServiceError("hold.on_shelf", title=title, count=int(facts.on_shelf))
    if not facts.holdable:
        return ServiceError("hold.no_copies", title=title)
    rules = policy.for_role(role)
    if int(facts.active_holds or 0) >= rules.max_holds:
        return ServiceError("hold.limit", limit=rules.max_holds)
    return None


async def _hold_facts(session: AsyncSession, record_pk: int, reader_id: int) -> Row[Any]:
    params = {"record_pk": record_pk, "reader_id": reader_id}
    return (await core.execute(session, _HOLD_FACTS, params)).one()


async def hold_refusal(
    session: AsyncSession,
    reader: Reader,
    record: Record,
    policy: LoanPolicy,
    *,
    deliver_to_office: bool = False,
) -> ServiceError | None:
    """Why place_hold would refuse this reader this title, in the order it says it; None when
    it would accept. Shared by place_hold and the book card's 预约 button."""
    facts = await _hold_facts(session, record.id, reader.id)
    return _refusal(reader, record, facts, policy, deliver_to_office)


def _refusal(
    reader: Reader, record: Record, facts: Row[Any], policy: LoanPolicy, deliver_to_office: bool
) -> ServiceError | None:
    return refusal_of(
        facts,
        active=reader.active,
        role=reader.role,
        name=reader.name,
        title=record_name(record),
        policy=policy,
        deliver_to_office=deliver_to_office,
    )


async def place_hold(
    session: AsyncSession,
    *,
    actor: Actor | None,
    reader_id: int,
    record_pk: int,
    policy: LoanPolicy,
    deliver_to_office: bool = False,
    now: datetime | None = None,
) -> HoldPlaced:
    """Reserve a title for ``reader_id``: that reader, or the librarian on their behalf."""
    actor = require_self_or_librarian(actor, reader_id)
    now = now or utcnow()
    record = await lock_record(session, record_pk)
    reader = await session.get_one(Reader, reader_id, with_for_update=ROW_LOCK)
    facts = await _hold_facts(session, record.id, reader.id)
    refused = _refusal(reader, record, facts, policy, deliver_to_office)
    if refused is not None:
        raise refused
    # The queue is in the order holds got the title's lock: a request that read the clock, then
    # waited on the lock while others were placed (or a return served the queue), goes after them.
    latest = facts.latest
    hold = Hold(
        record_pk=record.id,
        reader_id=reader.id,
        placed_at=now if latest is None else max(now, latest),
        deliver_to_office=deliver_to_office,
    )
    session.add(hold)
    try:
        await session.flush()
    except IntegrityError:
        raise ServiceError("hold.already", title=record_name(record)) from None
    record_audit(session, actor.audit_name, "hold", {"hold_id": hold.id}, now=now)
    # Nothing on the shelf: a copy in a class corner is the quickest way to this reader.
    await request_bring_back(session, hold=hold, record=record, now=now)
    await tell_borrowers(session, record, now)
    return HoldPlaced(
        hold_id=hold.id,
        title=record_name(record),
        # Placed last under the title's lock (placed_at no earlier than any other hold's, the
        # highest id): every hold waiting before is ahead of it.
        position=int(facts.waiting or 0) + 1,
        deliver_to_office=deliver_to_office,
    )


async def cancel_hold(
    session: AsyncSession,
    *,
    actor: Actor | None,
    hold_id: int,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> str:
    """Cancel an active hold (one's own, or any as the librarian); a copy set aside for it goes
    to the next reader. Another reader's hold gets the same answer as a missing one."""
    actor = require_reader(actor)
    now = now or utcnow()
    hold = await session.scalar(_HOLD, {"hold_id": hold_id})
    if (
        hold is None
        or not acts_for(actor, hold.reader_id)
        or hold.status not in ACTIVE_HOLD_STATUSES
    ):
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
        await pass_copy_on(session, copy, record, policy, now)
    record_audit(session, actor.audit_name, "hold_cancel", {"hold_id": hold.id}, now=now)
    return record_name(record)


async def expire_ready_holds(
    session: AsyncSession, *, actor: Actor | None, policy: LoanPolicy, now: datetime | None = None
) -> int:
    """Ready holds not collected in time expire; their copies go to the next reader or the shelf.
    The scheduler's sweep (or the librarian): nobody else ends other readers' holds."""
    require_librarian(actor)
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
        await enqueue(
            session,
            HOLD_EXPIRED,
            reader_id=hold.reader_id,
            payload=HoldPayload(
                hold_id=hold.id, title=record_name(record), ready_until=hold.ready_until or now
            ),
            now=now,
        )
        if hold.copy_id is not None:
            copy = await session.get_one(Copy, hold.copy_id)
            await pass_copy_on(session, copy, record, policy, now)
    return expired
