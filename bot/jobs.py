"""Scheduled jobs: short, idempotent sweeps over state kept in the database (APScheduler's own
job store is never shared between processes, so it holds nothing but these timers)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)

from handlers.notify import notification_markup, render_notification
from handlers.render import Translator
from services.circulation import expire_ready_holds
from services.i18n import DEFAULT_LOCALE
from services.notifications import claim_due, mark_failed, mark_retry, mark_sent
from services.policy import LoanPolicy
from services.reading_lists import send_due_lists
from services.recommend.model import ModelCache, fit
from services.recommend.weekly import enqueue_weekly
from services.updates import forget_old_updates
from storage.db import Database

log = logging.getLogger(__name__)
# Telegram allows ~30 messages/s in bulk; stay well below.
SEND_GAP_S = 0.05


async def deliver_notifications(db: Database, bot: Bot, tz: ZoneInfo, batch: int = 50) -> int:
    """Send what the outbox has due; returns how many were delivered."""
    async with db.transaction() as session:
        due = await claim_due(session, limit=batch)
    tr = Translator(DEFAULT_LOCALE)
    delivered = 0
    for position, note in enumerate(due):
        outcome: tuple[str, str, timedelta] = ("sent", "", timedelta(0))
        try:
            text = render_notification(tr, note.kind, note.payload, tz)
            markup = notification_markup(tr, note.kind, note.payload)
            await bot.send_message(note.chat_id, text, reply_markup=markup)
        except TelegramRetryAfter as exc:
            outcome = ("retry", "429", timedelta(seconds=exc.retry_after))
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            outcome = ("failed", f"{type(exc).__name__}: {exc.message}", timedelta(0))
        except (TelegramNetworkError, TelegramAPIError) as exc:
            backoff = timedelta(seconds=min(3600, 30 * 2 ** (note.attempts - 1)))
            outcome = ("retry", f"{type(exc).__name__}: {exc}", backoff)
        except Exception as exc:  # e.g. a payload we cannot render: it will not improve
            log.exception("notification %s could not be sent", note.notification_id)
            outcome = ("failed", f"{type(exc).__name__}: {exc}", timedelta(0))
        async with db.transaction() as session:
            kind, error, delay = outcome
            if kind == "sent":
                await mark_sent(session, note.notification_id)
                delivered += 1
            elif kind == "retry":
                await mark_retry(session, note.notification_id, delay=delay, error=error)
            else:
                await mark_failed(session, note.notification_id, error=error)
        if outcome[1] == "429":
            # Everything else claimed in this batch waits too: Telegram asked us to slow down.
            async with db.transaction() as session:
                for later in due[position + 1 :]:
                    await mark_retry(session, later.notification_id, delay=delay, error="429")
            break
        await asyncio.sleep(SEND_GAP_S)
    return delivered


async def weekly_new_books(db: Database, days: int, now: datetime | None = None) -> int:
    """The weekly slot: fit the recommender afresh (this week's books in it) and queue each
    reader's list in the outbox; a second run in the same week queues nothing."""
    async with db.transaction() as session:
        model = await fit(session)
        queued = await enqueue_weekly(session, model, now=now, days=days)
    log.info("weekly new-book lists queued for %d readers", queued)
    return queued


async def refresh_recommender(db: Database, cache: ModelCache) -> None:
    async with db.transaction(read_only=True) as session:
        await cache.refresh(session)


async def send_reading_lists(db: Database, now: datetime | None = None) -> int:
    async with db.transaction() as session:
        return await send_due_lists(session, now=now)


async def expire_holds(db: Database, policy: LoanPolicy) -> None:
    async with db.transaction() as session:
        expired = await expire_ready_holds(session, policy=policy)
    if expired:
        log.info("expired %d uncollected holds", expired)


async def forget_updates(db: Database) -> None:
    async with db.transaction() as session:
        await forget_old_updates(session)
