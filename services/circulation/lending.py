"""Lending rules: checkout, return and renewal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian, require_reader
from services.audit import record_audit
from services.circulation.common import (
    LENDABLE,
    ROW_LOCK,
    acts_for,
    copy_by_barcode,
    lock_record,
    reader_by_card,
    waiting_count,
)
from services.circulation.holds import pass_copy_on
from services.circulation.refusals import lend_refusal, on_loan_refusal, who
from services.corners.requests import corner_place, in_corner_cycle, take_out_of_corner
from services.errors import ServiceError
from services.imports.calendar import next_open_due
from services.policy import LoanPolicy
from services.titles import record_name
from storage.models import (
    ACTIVE_HOLD_STATUSES,
    Copy,
    CopyStatus,
    Hold,
    HoldStatus,
    Loan,
    Reader,
    Record,
    utcnow,
)


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


async def _check_lendable(
    session: AsyncSession,
    copy: Copy,
    record: Record,
    reader: Reader,
    tz: ZoneInfo,
    *,
    from_corner: bool = False,
) -> None:
    """Refuse a copy that is out, kept for someone else, or otherwise gone; a copy of a class
    corner (on its way there, in it, or on its way back) only when ``from_corner`` says the
    librarian knows where it is and lends it anyway."""
    if copy.status == CopyStatus.ON_LOAN.value:
        raise await on_loan_refusal(session, copy, record, tz)
    if copy.status == CopyStatus.ON_HOLD_SHELF.value:
        shelf_hold = await session.scalar(
            select(Hold).where(Hold.copy_id == copy.id, Hold.status == HoldStatus.READY.value)
        )
        if shelf_hold is not None and shelf_hold.reader_id != reader.id:
            kept_for = await session.get_one(Reader, shelf_hold.reader_id)
            raise ServiceError(
                "copy.held_for_other",
                barcode=copy.barcode,
                title=record_name(record),
                who=who(kept_for),
            )
    elif from_corner and in_corner_cycle(copy):
        return  # the librarian was told where it is and lends it all the same
    elif (place := await corner_place(session, copy)) is not None:
        raise ServiceError(
            f"copy.corner_{place.stage.value}",
            barcode=copy.barcode,
            title=record_name(record),
            class_name=place.class_name,
        )
    elif copy.status == CopyStatus.IN_CORNER.value:
        raise ServiceError("copy.in_corner", barcode=copy.barcode, title=record_name(record))
    elif copy.status not in LENDABLE:
        raise ServiceError("copy.unavailable", barcode=copy.barcode, title=record_name(record))


async def checkout(
    session: AsyncSession,
    *,
    actor: Actor | None,
    card_no: str,
    barcode: str,
    policy: LoanPolicy,
    now: datetime | None = None,
    from_corner: bool = False,
) -> CheckoutResult:
    """Lend a copy: the librarian (or the server) only. A copy of a class corner is refused with
    where it is unless ``from_corner``: then it leaves its corner and batch first
    (services/corners/requests.py)."""
    # Before any look-up: a student learns nothing about cards or copies from a refusal.
    actor = require_librarian(actor)
    now = now or utcnow()
    reader = await reader_by_card(session, card_no)
    if not reader.active:
        raise ServiceError("reader.inactive", name=reader.name)
    copy = await copy_by_barcode(session, barcode)
    record = await lock_record(session, copy.record_pk)
    # Title first, then reader, everywhere: the reader lock keeps the limits below honest when
    # the same reader borrows two different titles at once on PostgreSQL.
    await session.refresh(reader, with_for_update=ROW_LOCK)
    await session.refresh(copy, with_for_update=True)

    # Every rule is checked before anything is written.
    tz = ZoneInfo(policy.timezone)
    await _check_lendable(session, copy, record, reader, tz, from_corner=from_corner)
    rules = policy.for_role(reader.role)
    refused = await lend_refusal(session, reader, policy, now)
    if refused is not None:
        raise refused

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
        await pass_copy_on(session, await session.get_one(Copy, set_aside), record, policy, now)

    await take_out_of_corner(session, copy, actor=actor, now=now)
    loan = Loan(
        copy_id=copy.id,
        reader_id=reader.id,
        lent_at=now,
        due_at=await next_open_due(
            session, policy.due(now, rules.loan_days), ZoneInfo(policy.timezone)
        ),
        lent_by=actor.reader_id,
    )
    session.add(loan)
    copy.status = CopyStatus.ON_LOAN.value
    record.loan_count = (record.loan_count or 0) + 1
    try:
        await session.flush()
    except IntegrityError:
        raise ServiceError(
            "copy.on_loan", barcode=copy.barcode, title=record_name(record), to_whom=""
        ) from None
    record_audit(
        session,
        actor.audit_name,
        "checkout",
        {"loan_id": loan.id, "card_no": reader.card_no, "barcode": copy.barcode},
        now=now,
    )
    return CheckoutResult(
        loan_id=loan.id,
        reader_name=reader.name,
        card_no=reader.card_no,
        title=record_name(record),
        barcode=copy.barcode,
        due_at=loan.due_at,
        collected_hold=collected,
    )


async def return_copy(
    session: AsyncSession,
    *,
    actor: Actor | None,
    barcode: str,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> ReturnResult:
    """Take a copy back: the librarian (or the server) only."""
    actor = require_librarian(actor)
    now = now or utcnow()
    copy = await copy_by_barcode(session, barcode)
    record = await lock_record(session, copy.record_pk)
    await session.refresh(copy, with_for_update=True)
    loan = await session.scalar(
        select(Loan).where(Loan.copy_id == copy.id, Loan.returned_at.is_(None)).with_for_update()
    )
    if loan is None:
        raise ServiceError("copy.not_on_loan", barcode=copy.barcode, title=record_name(record))
    borrower = await session.get_one(Reader, loan.reader_id)
    loan.returned_at = now
    hold = await pass_copy_on(session, copy, record, policy, now)
    held_for = await session.get_one(Reader, hold.reader_id) if hold else None
    record_audit(
        session,
        actor.audit_name,
        "return",
        {"loan_id": loan.id, "barcode": copy.barcode, "hold_id": hold.id if hold else None},
        now=now,
    )
    return ReturnResult(
        title=record_name(record),
        barcode=copy.barcode,
        reader_name=borrower.name,
        card_no=borrower.card_no,
        due_at=loan.due_at,
        returned_at=now,
        held_for_name=held_for.name if held_for else None,
        held_for_card=held_for.card_no if held_for else None,
        deliver_to_office=bool(hold and hold.deliver_to_office),
    )


@dataclass(frozen=True, slots=True)
class RenewalRefusal:
    """Why a loan cannot be renewed: a ``renew.*`` locale key (the refusal) and its numbers.
    ``reason`` is the key's last part, for shorter wordings of the same rule (我的借阅)."""

    key: str
    params: dict[str, int]

    @property
    def reason(self) -> str:
        return self.key.rpartition(".")[2]


def renewal_refusal(
    *, due_at: datetime, renewals: int, allowed: int, waiting: int, now: datetime
) -> RenewalRefusal | None:
    """The renewal rules, in the order a reader should hear them; None when renewal is allowed.
    Shared by ``renew`` and the loan list, so the list never offers what renew refuses."""
    if due_at < now:
        return RenewalRefusal("renew.overdue", {})
    if renewals >= allowed:
        return RenewalRefusal("renew.limit", {"limit": allowed})
    if waiting:
        return RenewalRefusal("renew.others_waiting", {"waiting": waiting})
    return None


async def renew(
    session: AsyncSession,
    *,
    actor: Actor | None,
    loan_id: int,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> RenewResult:
    """Renew an open loan: its borrower, or the librarian (at the desk, the CLI)."""
    actor = require_reader(actor)
    now = now or utcnow()
    loan = await session.scalar(select(Loan).where(Loan.id == loan_id))
    if loan is None or not acts_for(actor, loan.reader_id) or loan.returned_at is not None:
        raise ServiceError("renew.not_found")
    copy = await session.get_one(Copy, loan.copy_id)
    record = await lock_record(session, copy.record_pk)
    await session.refresh(loan, with_for_update=True)
    if loan.returned_at is not None:
        raise ServiceError("renew.not_found")
    reader = await session.get_one(Reader, loan.reader_id)
    rules = policy.for_role(reader.role)
    refusal = renewal_refusal(
        due_at=loan.due_at,
        renewals=loan.renewals,
        allowed=rules.renewals,
        waiting=await waiting_count(session, record.id),
        now=now,
    )
    if refusal is not None:
        raise ServiceError(refusal.key, title=record_name(record), **refusal.params)
    loan.due_at = await next_open_due(
        session, policy.due(loan.due_at, rules.renewal_days), ZoneInfo(policy.timezone)
    )
    loan.renewals += 1
    record_audit(session, actor.audit_name, "renew", {"loan_id": loan.id}, now=now)
    return RenewResult(
        loan_id=loan.id,
        title=record_name(record),
        due_at=loan.due_at,
        renewals_left=rules.renewals - loan.renewals,
    )
