"""Read models: what a reader has out and what they are waiting for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_self_or_librarian
from services.circulation.lending import RenewalRefusal, renewal_refusal
from services.policy import LoanPolicy
from services.titles import NameParts, book_names, tell_apart
from storage import core
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


_loans, _copies, _records, _holds = (
    Loan.__table__.c,
    Copy.__table__.c,
    Record.__table__.c,
    Hold.__table__.c,
)
# What naming a book takes (services/titles.py NameParts), read with the rows that show it.
_NAME_COLUMNS = (
    _records.id,
    _records.title,
    _records.subtitle,
    _records.publisher,
    _records.pub_date,
    _records.record_id,
)
_OPEN_LOANS = (
    select(
        _loans.id,
        _copies.barcode,
        _loans.lent_at,
        _loans.due_at,
        _loans.renewals,
        # Readers waiting for the title: no renewal then.
        select(func.count(_holds.id))
        .where(_holds.record_pk == _records.id, _holds.status == HoldStatus.WAITING.value)
        .correlate(Record.__table__)
        .scalar_subquery(),
        *_NAME_COLUMNS,
    )
    .select_from(
        Loan.__table__.join(Copy.__table__, _copies.id == _loans.copy_id).join(
            Record.__table__, _records.id == _copies.record_pk
        )
    )
    .where(_loans.reader_id == bindparam("reader_id", type_=Integer), _loans.returned_at.is_(None))
    .order_by(_loans.due_at, _records.title, _loans.id)
)


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
    rows = (await core.execute(session, _OPEN_LOANS, {"reader_id": reader_id})).all()
    allowed = 0
    if policy is not None and rows:
        role = actor.role if actor is not None and actor.reader_id == reader_id else None
        if role is None:
            role = await session.scalar(select(Reader.role).where(Reader.id == reader_id))
        allowed = policy.for_role(role or "").renewals
    names = tell_apart(NameParts(*row[-6:]) for row in rows)
    views = []
    for loan_id, barcode, lent_at, due_at, renewals, waiting, record_pk, *_ in rows:
        refusal = None
        if policy is not None:
            refusal = renewal_refusal(
                due_at=due_at,
                renewals=renewals,
                allowed=allowed,
                waiting=int(waiting or 0),
                now=now,
            )
        views.append(
            LoanView(
                loan_id=loan_id,
                record_pk=record_pk,
                title=names[record_pk],
                barcode=barcode,
                lent_at=lent_at,
                due_at=due_at,
                renewals=renewals,
                overdue=due_at < now,
                refusal=refusal,
            )
        )
    return views


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
    return await _active_holds(session, _HOLDS_OF, {"reader_id": reader_id})


async def hold_of(
    session: AsyncSession, reader_id: int, hold_id: int, *, actor: Actor | None
) -> HoldView | None:
    """One of the reader's active holds (None when it is another reader's, or no longer active)."""
    require_self_or_librarian(actor, reader_id)
    found = await _active_holds(session, _HOLD_OF, {"reader_id": reader_id, "hold_id": hold_id})
    return found[0] if found else None


def _active_holds_of(*where: ColumnElement[bool]) -> Select[Any]:
    other = Hold.__table__.alias("other")
    ahead = (
        select(func.count(other.c.id))
        .where(
            other.c.record_pk == _holds.record_pk,
            other.c.status == HoldStatus.WAITING.value,
            (other.c.placed_at < _holds.placed_at)
            | ((other.c.placed_at == _holds.placed_at) & (other.c.id < _holds.id)),
        )
        .correlate(Hold.__table__)
        .scalar_subquery()
    )
    return (
        select(
            _holds.id,
            _holds.status,
            _holds.ready_until,
            _holds.deliver_to_office,
            ahead,
            *_NAME_COLUMNS,
        )
        .select_from(Hold.__table__.join(Record.__table__, _records.id == _holds.record_pk))
        .where(*where, _holds.status.in_(ACTIVE_HOLD_STATUSES))
        .order_by(_holds.placed_at, _holds.id)
    )


# Built once: the lists and the cancel button of every reader run them.
_READER_ID = bindparam("reader_id", type_=Integer)
_HOLDS_OF = _active_holds_of(_holds.reader_id == _READER_ID)
_HOLD_OF = _active_holds_of(
    _holds.reader_id == _READER_ID, _holds.id == bindparam("hold_id", type_=Integer)
)


async def _active_holds(
    session: AsyncSession, stmt: Select[Any], params: dict[str, int]
) -> list[HoldView]:
    rows = (await core.execute(session, stmt, params)).all()
    names = tell_apart(NameParts(*row[-6:]) for row in rows)
    views = []
    for hold_id, status, ready_until, office, n_ahead, record_pk, *_ in rows:
        waiting = status == HoldStatus.WAITING.value
        views.append(
            HoldView(
                hold_id=hold_id,
                record_pk=record_pk,
                title=names[record_pk],
                status=HoldStatus(status),
                position=int(n_ahead or 0) + 1 if waiting else 0,
                ready_until=ready_until,
                deliver_to_office=office,
            )
        )
    return views
