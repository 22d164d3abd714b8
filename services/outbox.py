"""Writing to the notification outbox: idempotent by dedupe key, inside the event's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification, OutboxStatus, utcnow


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    reader_id: int,
    dedupe_key: str,
    payload: dict[str, Any],
    now: datetime | None = None,
) -> bool:
    """Queue one notification; returns False when the same dedupe key was queued before."""
    moment = now or utcnow()
    values = {
        "kind": kind,
        "reader_id": reader_id,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": moment,
        "created_at": moment,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
    )
    result = await session.execute(stmt.returning(Notification.id))
    return result.scalar_one_or_none() is not None
