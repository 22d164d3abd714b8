"""The waits before a retry are settings with production defaults (so tests can set them to
almost nothing): the bot's request retries (bot/retry.py, built by bot/app.py's build_bot) and
the sender's backoff for pushes (bot/sender.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetMe, SendMessage

from bot import sender as sender_module
from bot.app import build_bot
from bot.config import Settings, load_settings
from bot.retry import RetryMiddleware
from bot.sender import Sender
from services.notifications import Outgoing
from storage.db import Database

TOKEN = "123456:RETRY-test-token"
NOW = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


def _settings(**overrides: Any) -> Settings:
    return load_settings(_env_file=None, **overrides)


def test_the_production_waits_are_the_defaults() -> None:
    settings = _settings()
    assert settings.bot_retry_backoff_seconds == 0.5
    assert settings.bot_retry_max_wait_seconds == 5.0
    assert settings.sender_backoff_seconds == 30.0
    assert settings.sender_backoff_max_seconds == 3600.0


def test_the_waits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUXIANG_BOT_RETRY_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("SHUXIANG_SENDER_BACKOFF_SECONDS", "0")
    settings = _settings()
    assert settings.bot_retry_backoff_seconds == 0.01
    assert settings.sender_backoff_seconds == 0.0


async def test_build_bot_hands_the_settings_to_the_retry_middleware() -> None:
    bot = build_bot(_settings(bot_retry_backoff_seconds=0.25, bot_retry_max_wait_seconds=2), TOKEN)
    try:
        (middleware,) = [m for m in bot.session.middleware if isinstance(m, RetryMiddleware)]
        assert (middleware.backoff_s, middleware.max_wait_s) == (0.25, 2.0)
    finally:
        await bot.session.close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits bot/retry.py asks for, recorded instead of slept (nothing else in these tests
    sleeps)."""
    waited: list[float] = []

    async def sleep(delay: float) -> None:
        waited.append(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return waited


def _failing(*errors: Exception) -> Any:
    remaining = list(errors)

    async def make_request(_bot: Bot, _method: Any) -> Any:
        if remaining:
            raise remaining.pop(0)
        return "done"

    return make_request


async def test_a_server_error_is_retried_after_the_backoff_doubling(sleeps: list[float]) -> None:
    middleware = RetryMiddleware(max_wait_s=5.0, backoff_s=0.25)
    method = SendMessage(chat_id=1, text="x")
    errors = [TelegramServerError(method=method, message="Bad Gateway") for _ in range(3)]
    result: Any = await middleware(_failing(*errors), cast(Bot, None), method)
    assert result == "done"
    assert sleeps == [0.25, 0.5, 1.0]


async def test_a_short_429_is_waited_out_and_a_long_one_raised(sleeps: list[float]) -> None:
    middleware = RetryMiddleware(max_wait_s=2.0, backoff_s=0.25)
    method = GetMe()
    short = TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=2)
    result: Any = await middleware(_failing(short), cast(Bot, None), method)
    assert result == "done"
    assert sleeps == [2]
    long = TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=3)
    with pytest.raises(TelegramRetryAfter):
        await middleware(_failing(long), cast(Bot, None), method)
    assert sleeps == [2]


class _NoDatabase:
    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[None]:
        yield None


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, timedelta(seconds=10)), (3, timedelta(seconds=40)), (9, timedelta(seconds=100))],
)
async def test_the_sender_reschedules_a_failed_push_after_its_backoff(
    monkeypatch: pytest.MonkeyPatch, attempts: int, expected: timedelta
) -> None:
    scheduled: list[datetime] = []

    async def mark_retry(_session: Any, _notification_id: int, *, at: datetime, **_: Any) -> bool:
        scheduled.append(at)
        return True

    monkeypatch.setattr(sender_module, "mark_retry", mark_retry)
    settings = _settings(sender_backoff_seconds=10, sender_backoff_max_seconds=100)
    sender = Sender(cast(Database, _NoDatabase()), cast(Bot, None), settings, clock=lambda: NOW)
    note = Outgoing(1, "due_soon", 1, 1, {}, attempts)
    await sender._retry_later(note, "TelegramNetworkError: down")
    assert scheduled == [NOW + expected]
    assert sender.stats.retried == 1
