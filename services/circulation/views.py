"""Read models: what a reader has out and what they are waiting for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.actor import Actor, require_self_or_librarian
from services.circulation.lending import RenewalRefusal, renewal_refusal
from services.policy import LoanPolicy
from services.titles import book_names
from storage.models import (
    ACTIVE_HOLD_STATUSES,
    Copy,
    Hold,
    HoldStatus,
    Loan,
    Reader,
    Record,
    utcnow,
)

HISTORY_PAGE_SIZE = 8


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
    # Why it cannot be renewed (None: it can, or no policy was given to loans_of).
    refusal: RenewalRefusal | None = None


@dataclass(frozen=True, slots=True)
class HoldView:
    hold_id: int
    record_pk: int
    title: str
    status: HoldStatus
    position: int  # 1 = next in line; 0 when ready
    ready_until: datetime | None
    deliver_to_office: bool


async def loans_of(
    session: AsyncSession,
    reader_id: int,
    now: datetime | None = None,
    *,
    actor: Actor | None,
    policy: LoanPolicy | None = None,
) -> list[LoanView]:
    """Open loans by due date, then title, then loan id (a stable order for equal dates). With
    ``policy``, each loan says whether renewal would be refused and why (the same rule as renew).
    The reader's own, or the librarian's look."""
    require_self_or_librarian(actor, reader_id)
    now = now or utcnow()
    rows = list(
        await session.execute(
            select(Loan, Copy.barcode, Record.id, Record.title)
            .join(Copy, Copy.id == Loan.copy_id)
            .join(Record, Record.id == Copy.record_pk)
            .where(Loan.reader_id == reader_id, Loan.returned_at.is_(None))
            .order_by(Loan.due_at, Record.title, Loan.id)
        )
    )
    allowed = 0
    waiting: dict[int, int] = {}
    if policy is not None and rows:
        role = await session.scalar(select(Reader.role).where(Reader.id == reader_id))
        allowed = policy.for_role(role or "").renewals
        waiting = await _waiting_by_record(session, {record_pk for _, _, record_pk, _ in rows})
    names = await book_names(session, (row[2] for row in rows))
    views = []
    for loan, barcode, record_pk, _ in rows:
        refusal = None
        if policy is not None:
            refusal = renewal_refusal(
                due_at=loan.due_at,
                renewals=loan.renewals,
                allowed=allowed,
                waiting=waiting.get(record_pk, 0),
                now=now,
            )
        views.append(
            LoanView(
                loan_id=loan.id,
                record_pk=record_pk,
                title=names[record_pk],
                barcode=barcode,
                lent_at=loan.lent_at,
                due_at=loan.due_at,
                renewals=loan.renewals,
                overdue=loan.due_at < now,
                refusal=refusal,
            )
        )
    return views


async def _waiting_by_record(session: AsyncSession, record_pks: set[int]) -> dict[int, int]:
    rows = await session.execute(
        select(Hold.record_pk, func.count(Hold.id))
        .where(Hold.record_pk.in_(record_pks), Hold.status == HoldStatus.WAITING.value)
        .group_by(Hold.record_pk)
    )
    return {record_pk: int(n) for record_pk, n in rows}


@dataclass(frozen=True, slots=True)
class PastLoan:
    loan_id: int
    record_pk: int
    title: str
    lent_at: datetime
    returned_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryPage:
    loans: list[PastLoan]
    page: int  # the page shown (a page past the end shows the last one)
    pages: int  # at least 1
    total: int
    page_size: int

    @property
    def first_number(self) -> int:
        """The list number of the first loan on this page (numbering runs across pages)."""
        return self.page * self.page_size + 1


async def loan_history(
    session: AsyncSession,
    reader_id: int,
    page: int = 0,
    *,
    actor: Actor | None,
    page_size: int = HISTORY_PAGE_SIZE,
) -> HistoryPage:
    """Returned loans, newest return first (then newest loan id), one page at a time: the
    reader's own, or the librarian's look."""
    require_self_or_librarian(actor, reader_id)
    owned = (Loan.reader_id == reader_id) & Loan.returned_at.is_not(None)
    total = int(await session.scalar(select(func.count(Loan.id)).where(owned)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(0, page), pages - 1)
    rows = list(
        await session.execute(
            select(Loan.id, Record.id, Record.title, Loan.lent_at, Loan.returned_at)
            .join(Copy, Copy.id == Loan.copy_id)
            .join(Record, Record.id == Copy.record_pk)
            .where(owned)
            .order_by(Loan.returned_at.desc(), Loan.id.desc())
            .limit(page_size)
            .offset(page * page_size)
        )
    )
    names = await book_names(session, (row[1] for row in rows))
    loans = [
        PastLoan(loan_id, record_pk, names[record_pk], lent_at, returned_at)
        for loan_id, record_pk, _, lent_at, returned_at in rows
    ]
    return HistoryPage(loans=loans, page=page, pages=pages, total=total, page_size=page_size)


async def holds_of(session: AsyncSession, reader_id: int, *, actor: Actor | None) -> list[HoldView]:
    """Active holds with their queue positions, in one query (1 = next in line; 0 when ready):
    the reader's own, or the librarian's look."""
    require_self_or_librarian(actor, reader_id)
    return await _active_holds(session, Hold.reader_id == reader_id)


async def hold_of(
    session: AsyncSession, reader_id: int, hold_id: int, *, actor: Actor | None
) -> HoldView | None:
    """One of the reader's active holds (None when it is another reader's, or no longer active)."""
    require_self_or_librarian(actor, reader_id)
    found = await _active_holds(session, Hold.reader_id == reader_id, Hold.id == hold_id)
    return found[0] if found else None


async def _active_holds(session: AsyncSession, *where: ColumnElement[bool]) -> list[HoldView]:
    other = aliased(Hold)
    ahead = (
        select(func.count(other.id))
        .where(
            other.record_pk == Hold.record_pk,
            other.status == HoldStatus.WAITING.value,
            (other.placed_at < Hold.placed_at)
            | ((other.placed_at == Hold.placed_at) & (other.id < Hold.id)),
        )
        .correlate(Hold)
        .scalar_subquery()
    )
    rows = list(
        await session.execute(
            select(Hold, Record.title, ahead)
            .join(Record, Record.id == Hold.record_pk)
            .where(*where, Hold.status.in_(ACTIVE_HOLD_STATUSES))
            .order_by(Hold.placed_at, Hold.id)
        )
    )
    names = await book_names(session, (hold.record_pk for hold, _, _ in rows))
    return [
        HoldView(
            hold_id=hold.id,
            record_pk=hold.record_pk,
            title=names[hold.record_pk],
            status=HoldStatus(hold.status),
            position=int(n_ahead or 0) + 1 if hold.status == HoldStatus.WAITING.value else 0,
            ready_until=hold.ready_until,
            deliver_to_office=hold.deliver_to_office,
        )
        for hold, _, n_ahead in rows
    ]
