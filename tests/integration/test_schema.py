"""The schema's own guarantees hold whatever the application does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import Copy, Hold, Loan, Reader, Record, utcnow
from tests.factories import telegram_endpoint


async def _seed(db: Database) -> tuple[int, int, int, int]:
    async with db.transaction() as s:
        record = Record(record_id="t:1", title="红楼梦")
        s.add(record)
        await s.flush()
        copy = Copy(barcode="B1", record_pk=record.id)
        alice = Reader(card_no="S1", name="甲")
        bob = Reader(card_no="S2", name="乙")
        s.add_all([copy, alice, bob])
        await s.flush()
        return record.id, copy.id, alice.id, bob.id


async def test_second_open_loan_on_a_copy_fails(db: Database) -> None:
    _, copy_id, alice, bob = await _seed(db)
    due = utcnow() + timedelta(days=30)
    async with db.transaction() as s:
        s.add(Loan(copy_id=copy_id, reader_id=alice, due_at=due))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(Loan(copy_id=copy_id, reader_id=bob, due_at=due))


async def test_closed_loans_do_not_block_a_new_one(db: Database) -> None:
    _, copy_id, alice, bob = await _seed(db)
    due = utcnow() + timedelta(days=30)
    async with db.transaction() as s:
        s.add(Loan(copy_id=copy_id, reader_id=alice, due_at=due, returned_at=utcnow()))
        s.add(Loan(copy_id=copy_id, reader_id=alice, due_at=due, returned_at=utcnow()))
        s.add(Loan(copy_id=copy_id, reader_id=bob, due_at=due))


async def test_duplicate_active_hold_fails(db: Database) -> None:
    record_pk, _, alice, _ = await _seed(db)
    async with db.transaction() as s:
        s.add(Hold(record_pk=record_pk, reader_id=alice))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(Hold(record_pk=record_pk, reader_id=alice, status="ready"))


async def test_finished_holds_allow_a_new_one(db: Database) -> None:
    record_pk, _, alice, _ = await _seed(db)
    async with db.transaction() as s:
        s.add(Hold(record_pk=record_pk, reader_id=alice, status="cancelled"))
        s.add(Hold(record_pk=record_pk, reader_id=alice, status="expired"))
        s.add(Hold(record_pk=record_pk, reader_id=alice, status="waiting"))


async def test_barcode_unique_and_status_checked(db: Database) -> None:
    record_pk, _, _, _ = await _seed(db)
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(Copy(barcode="B1", record_pk=record_pk))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(Copy(barcode="B2", record_pk=record_pk, status="borrowed"))


async def test_one_reader_one_telegram_user(db: Database) -> None:
    _, _, alice, bob = await _seed(db)
    async with db.transaction() as s:
        s.add(telegram_endpoint(alice, 100))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(telegram_endpoint(bob, 100))


async def test_times_come_back_timezone_aware(db: Database) -> None:
    _, copy_id, alice, _ = await _seed(db)
    due = utcnow() + timedelta(days=1)
    async with db.transaction() as s:
        loan = Loan(copy_id=copy_id, reader_id=alice, due_at=due)
        s.add(loan)
    async with db.transaction(read_only=True) as s:
        fetched = await s.get(Loan, loan.id)
        assert fetched is not None
        assert fetched.due_at.tzinfo is not None
        assert abs((fetched.due_at - due).total_seconds()) < 1e-3
