"""Processed Telegram update ids: a redelivered update is handled once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate, utcnow

# Telegram keeps unconfirmed updates for 24 hours; remembering a week is ample.
KEEP = timedelta(days=7)


async def claim_update(session: AsyncSession, update_id: int, now: datetime | None = None) -> bool:
    """True the first time an update id is seen; False for a repeat."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(ProcessedUpdate)
        .values(update_id=update_id, processed_at=now or utcnow())
        .on_conflict_do_nothing(index_elements=[ProcessedUpdate.update_id])
        .returning(ProcessedUpdate.update_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def forget_old_updates(session: AsyncSession, now: datetime | None = None) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < (now or utcnow()) - KEEP)
    )
    return int(getattr(result, "rowcount", 0) or 0)
