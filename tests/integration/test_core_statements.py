"""storage.core.execute: a Core statement sees what the transaction changed before it, as an
ORM query would (autoflush), on both databases."""

from __future__ import annotations

from sqlalchemy import select

from storage import core
from storage.db import Database
from storage.models import Reader, utcnow


async def test_a_core_statement_sees_pending_changes(db: Database) -> None:
    readers = Reader.__table__.c
    by_card = select(readers.name).where(readers.card_no == "C1")
    async with db.transaction() as s:
        now = utcnow()
        s.add(Reader(card_no="C1", name="甲", role="student", created_at=now, updated_at=now))
        assert (await core.execute(s, by_card)).scalar_one() == "甲"
        reader = await s.scalar(select(Reader).where(Reader.card_no == "C1"))
        assert reader is not None
        reader.name = "乙"
        assert (await core.execute(s, by_card)).scalar_one() == "乙"
        # What the plain session would do without the flush: the old name.
        reader.name = "丙"
        assert (await s.execute(by_card)).scalar_one() == "乙"
