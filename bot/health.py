"""Is the deployment healthy? The database, Redis, the Bot API, the outbox backlog and who runs
the scheduled jobs, each with one line in Chinese. `shuxiang health` prints it; a webhook worker
serves it as JSON at /healthz (200 when every part answers, 503 otherwise) for nginx and
monitoring. Lines name hosts and ports, never a password, token or secret."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, RedisError
from sqlalchemy import func, select, text

from bot.cli.runtime import database_problem
from bot.leader import scheduler_holder
from services.i18n import t
from storage.models import Notification, OutboxStatus, utcnow

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from aiogram import Bot

    from bot.config import Settings
    from storage.db import Database

TIMEOUT_S = 5.0


@dataclass
class Check:
    name: str
    ok: bool
    text: str
    value: Any = None


@dataclass
class HealthReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": {c.name: {"ok": c.ok, "text": c.text, "value": c.value} for c in self.checks},
        }

    def lines(self) -> list[str]:
        return [f"{'✓' if c.ok else '✗'} {c.text}" for c in self.checks]


async def _database(settings: Settings, db: Database) -> Check:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with db.transaction(read_only=True) as session:
                await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is the report, never a traceback
        return Check("database", False, t("health.db_down", problem=database_problem(exc, db.url)))
    return Check("database", True, t("health.db_ok", dialect=db.dialect))


async def _redis(settings: Settings) -> Check:
    url = settings.checked_redis_url()
    if url is None:
        return Check("redis", True, t("health.redis_off"))
    where = settings.redis_for_display()
    client = Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        await cast("Awaitable[bool]", client.ping())
    except AuthenticationError:
        return Check("redis", False, t("cli_run.redis_login_refused", where=where))
    except (RedisError, OSError):
        return Check("redis", False, t("cli_run.redis_down", where=where))
    finally:
        await client.aclose()
    return Check("redis", True, t("health.redis_ok", where=where))


async def _bot_api(settings: Settings, bot: Bot | None) -> Check:
    api = settings.bot_api_url
    if bot is None:
        return Check("bot_api", False, t("config.missing_token"))
    try:
        async with asyncio.timeout(TIMEOUT_S):
            me = await bot.get_me()
    except TelegramUnauthorizedError:
        return Check("bot_api", False, t("cli.run_unauthorized"))
    except TelegramNetworkError:
        return Check("bot_api", False, t("cli_run.unreachable", api=api))
    except TelegramAPIError as exc:
        return Check("bot_api", False, t("cli_run.api_error", api=api, reason=exc.message))
    except Exception:  # network, proxy, timeout
        return Check("bot_api", False, t("cli_run.unreachable", api=api))
    return Check("bot_api", True, t("health.bot_api_ok", api=api, username=me.username or ""))


async def _outbox(db: Database, now: datetime) -> Check:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with db.transaction(read_only=True) as session:
                row = (
                    await session.execute(
                        select(func.count(), func.min(Notification.next_attempt_at)).where(
                            Notification.status.in_(
                                (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
                            ),
                            Notification.next_attempt_at <= now,
                        )
                    )
                ).one()
    except Exception:  # the database line says why
        return Check("outbox", False, t("health.outbox_unknown"))
    due, oldest = int(row[0]), row[1]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    late_min = int((now - oldest).total_seconds() // 60) if oldest is not None else 0
    return Check("outbox", True, t("health.outbox", due=due, late=late_min), due)


async def _scheduler(db: Database) -> Check:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            holder = await scheduler_holder(db)
    except Exception:  # the database line says why
        return Check("scheduler", False, t("health.scheduler_unknown"))
    if holder is None:
        return Check("scheduler", False, t("health.scheduler_none"))
    return Check("scheduler", True, t("health.scheduler", holder=holder), holder)


async def check_health(
    settings: Settings,
    *,
    db: Database,
    bot: Bot | None,
    now: datetime | None = None,
    expect_scheduler: bool = True,
) -> HealthReport:
    """Every check at once, each bounded by a few seconds."""
    database, redis, api = await asyncio.gather(
        _database(settings, db), _redis(settings), _bot_api(settings, bot)
    )
    report = HealthReport([database, redis, api])
    if database.ok:
        report.checks.append(await _outbox(db, now or utcnow()))
        scheduler = await _scheduler(db)
        if not expect_scheduler and not scheduler.ok:
            scheduler.ok = True
        report.checks.append(scheduler)
    return report
