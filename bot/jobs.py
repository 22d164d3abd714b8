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

from handlers.notify import render_notification
from handlers.render import Translator
from services.chase import ChaseRun
from services.chase import weekly_chase as chase_sweep
from services.circulation import expire_ready_holds
from services.i18n import DEFAULT_LOCALE
from services.notifications import claim_due, mark_failed, mark_retry, mark_sent
from services.policy import LoanPolicy
from services.updates import forget_old_updates
from storage.db import Database
from storage.models import utcnow

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
            await bot.send_message(note.chat_id, text)
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


async def expire_holds(db: Database, policy: LoanPolicy) -> None:
    async with db.transaction() as session:
        expired = await expire_ready_holds(session, policy=policy)
    if expired:
        log.info("expired %d uncollected holds", expired)


async def forget_updates(db: Database) -> None:
    async with db.transaction() as session:
        await forget_old_updates(session)


async def weekly_chase(db: Database, tz: ZoneInfo, now: datetime | None = None) -> ChaseRun:
    """Each class's overdue list to its own monitors, once per week (the outbox delivers it)."""
    async with db.transaction() as session:
        run = await chase_sweep(session, now=now or utcnow(), tz=tz)
    log.info("weekly chase: %d lists, %d student reminders", run.lists, run.reminders)
    return run
