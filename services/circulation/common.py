"""Look-ups and counts shared by the lending and hold rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor
from services.codes import clean_code, loose_match, may_be_code
from services.errors import ServiceError
from services.scopes import named, near_barcodes, near_cards
from storage.models import Copy, CopyStatus, Hold, HoldStatus, Loan, Reader, Record

LENDABLE = (CopyStatus.ON_SHELF.value, CopyStatus.IN_TRANSIT.value)
COUNTED = tuple(s.value for s in CopyStatus if s not in (CopyStatus.LOST, CopyStatus.WITHDRAWN))


def acts_for(actor: Actor, reader_id: int) -> bool:
    """The reader themselves or the librarian (the desk, the CLI, a job) may touch a reader's
    loan or hold. A bool, not a refusal of its own: another reader's loan or hold gets the same
    answer as a missing one, so nobody learns which ids exist."""
    return actor.is_librarian or actor.reader_id == reader_id


# Row locks that serialise one title's or one reader's circulation. FOR NO KEY UPDATE, not FOR
# UPDATE: they exclude each other just the same, but not the share lock a foreign key takes when
# another transaction inserts a row pointing at the title or reader. A note queued to another
# borrower (tell_borrowers) while that borrower reserves a book of ours locked our row FOR UPDATE
# was a deadlock on PostgreSQL (tests/integration/test_circulation.py).
ROW_LOCK = {"key_share": True}


# Every hold and loan runs this: built once (building it cost more than running it).
_LOCK_RECORD = (
    select(Record)
    .where(Record.id == bindparam("record_pk", type_=Integer))
    .with_for_update(key_share=True)  # ROW_LOCK, spelled out for the type checker
)


async def lock_record(session: AsyncSession, record_pk: int) -> Record:
    record = await session.scalar(_LOCK_RECORD, {"record_pk": record_pk})
    if record is None:
        raise ServiceError("book.not_found")
    return record


async def find_reader_by_card(session: AsyncSession, card_no: str) -> Reader | None:
    """Whatever the case, width or surrounding spaces (services/codes.py)."""
    code = clean_code(card_no)
    if not code:
        return None
    reader = await session.scalar(select(Reader).where(Reader.card_no == code))
    if reader is None and may_be_code(code):
        reader = await session.scalar(
            select(Reader).where(loose_match(Reader.card_no, code)).order_by(Reader.id).limit(1)
        )
    return reader


async def reader_by_card(session: AsyncSession, card_no: str) -> Reader:
    reader = await find_reader_by_card(session, card_no)
    if reader is None:
        near = await near_cards(session, card_no)  # a typo: name the card meant
        if near:
            raise ServiceError(
                "scopes.unknown_card_near", card_no=card_no.strip(), near=named(near)
            )
        raise ServiceError("reader.not_found", card_no=card_no.strip())
    return reader


async def find_copy_by_barcode(session: AsyncSession, barcode: str) -> Copy | None:
    """Whatever the case, width or surrounding spaces (services/codes.py)."""
    code = clean_code(barcode)
    if not code:
        return None
    copy = await session.scalar(select(Copy).where(Copy.barcode == code))
    if copy is None and may_be_code(code):
        copy = await session.scalar(
            select(Copy).where(loose_match(Copy.barcode, code)).order_by(Copy.id).limit(1)
        )
    return copy


async def copy_by_barcode(session: AsyncSession, barcode: str) -> Copy:
    copy = await find_copy_by_barcode(session, barcode)
    if copy is None:
        near = await near_barcodes(session, barcode)  # a typo: name the copy meant
        if near:
            raise ServiceError(
                "scopes.unknown_barcode_near", barcode=barcode.strip(), near=named(near)
            )
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
    return await queue_place(session, hold.record_pk, hold.placed_at, hold.id)


async def queue_place(
    session: AsyncSession, record_pk: int, placed_at: datetime, hold_id: int
) -> int:
    """queue_position of a waiting hold given by its title, placed_at and id."""
    ahead = await session.scalar(
        select(func.count(Hold.id)).where(
            Hold.record_pk == record_pk,
            Hold.status == HoldStatus.WAITING.value,
            (Hold.placed_at < placed_at) | ((Hold.placed_at == placed_at) & (Hold.id < hold_id)),
        )
    )
    return int(ahead or 0) + 1
