"""The outbox's sending side: claim due notifications, then record how sending went.

Claiming marks rows 'sending' with a lease (next_attempt_at = now + LEASE), so a worker that dies
mid-batch leaves rows that become due again; several workers on PostgreSQL skip each other's
locked rows. The transport (Telegram) lives outside services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification, OutboxStatus, TelegramBinding, utcnow

# Longer than one send can take with its retries, so a slow batch is not claimed twice.
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Outgoing:
    notification_id: int
    kind: str
    reader_id: int
    chat_id: int
    payload: dict[str, Any]
    attempts: int


async def claim_due(
    session: AsyncSession, *, limit: int = 50, now: datetime | None = None
) -> list[Outgoing]:
    now = now or utcnow()
    rows = await session.execute(
        select(Notification, TelegramBinding.chat_id)
        .outerjoin(TelegramBinding, TelegramBinding.reader_id == Notification.reader_id)
        .where(
            Notification.status.in_((OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)),
            Notification.next_attempt_at <= now,
            Notification.attempts < MAX_ATTEMPTS,
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Notification)
    )
    claimed = []
    for note, chat_id in rows:
        if chat_id is None:
            # Not bound (any more): nowhere to send; /holds still shows the state.
            note.status = OutboxStatus.FAILED.value
            note.last_error = "reader has no Telegram binding"
            continue
        note.status = OutboxStatus.SENDING.value
        note.attempts += 1
        note.next_attempt_at = now + LEASE
        claimed.append(
            Outgoing(note.id, note.kind, note.reader_id, chat_id, dict(note.payload), note.attempts)
        )
    return claimed


async def mark_sent(
    session: AsyncSession, notification_id: int, now: datetime | None = None
) -> None:
    note = await session.get_one(Notification, notification_id)
    note.status = OutboxStatus.SENT.value
    note.sent_at = now or utcnow()
    note.last_error = None


async def mark_retry(
    session: AsyncSession,
    notification_id: int,
    *,
    delay: timedelta,
    error: str,
    now: datetime | None = None,
) -> None:
    """Try again after ``delay``; give up after MAX_ATTEMPTS."""
    note = await session.get_one(Notification, notification_id)
    note.last_error = error[:500]
    if note.attempts >= MAX_ATTEMPTS:
        note.status = OutboxStatus.FAILED.value
        return
    note.status = OutboxStatus.PENDING.value
    note.next_attempt_at = (now or utcnow()) + delay


async def mark_failed(session: AsyncSession, notification_id: int, *, error: str) -> None:
    """Permanent failure (the user blocked the bot, the chat is gone)."""
    note = await session.get_one(Notification, notification_id)
    note.status = OutboxStatus.FAILED.value
    note.last_error = error[:500]
