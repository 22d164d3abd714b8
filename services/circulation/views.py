"""Read models: what a reader has out and what they are waiting for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import ACTIVE_HOLD_STATUSES, Copy, Hold, HoldStatus, Loan, Record, utcnow


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
    status: HoldStatus
    position: int  # 1 = next in line; 0 when ready
    ready_until: datetime | None
    deliver_to_office: bool


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
    """Active holds with their queue positions, in one query (1 = next in line; 0 when ready)."""
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
    rows = await session.execute(
        select(Hold, Record.title, ahead)
        .join(Record, Record.id == Hold.record_pk)
        .where(Hold.reader_id == reader_id, Hold.status.in_(ACTIVE_HOLD_STATUSES))
        .order_by(Hold.placed_at, Hold.id)
    )
    return [
        HoldView(
            hold_id=hold.id,
            record_pk=hold.record_pk,
            title=title,
            status=HoldStatus(hold.status),
            position=int(n_ahead or 0) + 1 if hold.status == HoldStatus.WAITING.value else 0,
            ready_until=hold.ready_until,
            deliver_to_office=hold.deliver_to_office,
        )
        for hold, title, n_ahead in rows
    ]
