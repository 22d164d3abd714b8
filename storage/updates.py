"""Processed Telegram update ids: a redelivered update changes things once.

A writing update records its id in the transaction of its change, with the replies it decided on
(Bot API calls as JSON). They are cleared once sent (under long polling, in one write per
getUpdates, before it confirms their updates); an update redelivered after a crash between the
commit and the end of sending finds them still there and sends them again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import core
from storage.models import ProcessedUpdate, utcnow

# Telegram keeps unconfirmed updates for 24 hours; remembering a week is ample.
KEEP = timedelta(days=7)


# Every writing update runs this. SQLAlchemy never caches the compiled SQL of the dialects'
# ``insert(...).on_conflict_do_nothing()`` (their Insert has inherit_cache = False): as text, the
# same for SQLite and PostgreSQL, it is compiled once.
_COLUMNS = ProcessedUpdate.__table__.c
_CLAIM = (
    text(
        "INSERT INTO processed_updates (update_id, processed_at) VALUES (:update_id, :at) "
        "ON CONFLICT (update_id) DO NOTHING RETURNING update_id"
    )
    .bindparams(
        bindparam("update_id", type_=_COLUMNS.update_id.type),
        bindparam("at", type_=_COLUMNS.processed_at.type),
    )
    .columns(_COLUMNS.update_id)
)


async def claim_update(session: AsyncSession, update_id: int, now: datetime | None = None) -> bool:
    """True the first time an update id is seen; False for a repeat."""
    claimed = await core.execute(session, _CLAIM, {"update_id": update_id, "at": now or utcnow()})
    return claimed.scalar_one_or_none() is not None


# Every writing update runs this too: built once (building it cost more than running it).
_KEEP_REPLIES = (
    update(cast(Table, ProcessedUpdate.__table__))
    .where(_COLUMNS.update_id == bindparam("kept_update", type_=_COLUMNS.update_id.type))
    # none_as_null: nothing to send is SQL NULL, as replies_sent leaves it, not JSON null.
    .values(replies=bindparam("kept_replies", type_=JSON(none_as_null=True)))
)


async def keep_replies(
    session: AsyncSession, update_id: int, replies: list[dict[str, Any]] | None
) -> None:
    """Remember the replies of a claimed update until they are sent (None: nothing to send)."""
    await core.execute(
        session, _KEEP_REPLIES, {"kept_update": update_id, "kept_replies": replies or None}
    )


async def unsent_replies(session: AsyncSession, update_id: int) -> list[dict[str, Any]] | None:
    replies = await session.scalar(
        select(ProcessedUpdate.replies).where(ProcessedUpdate.update_id == update_id)
    )
    return list(replies) if replies else None


async def replies_sent(session: AsyncSession, update_ids: Sequence[int]) -> None:
    """Forget the stored replies of these updates: they were sent."""
    await session.execute(
        update(ProcessedUpdate)
        .where(ProcessedUpdate.update_id.in_(update_ids))
        .values(replies=None)
    )


async def forget_old_updates(session: AsyncSession, now: datetime | None = None) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < (now or utcnow()) - KEEP)
    )
    return int(getattr(result, "rowcount", 0) or 0)
