"""End-to-end harness: the real bot (assembly function, dispatcher, long polling) talking over
HTTP to the Bot API emulator on 127.0.0.1, on a migrated SQLite or PostgreSQL database."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.app import Shuxiang, build_app
from bot.config import load_settings
from nlp.search import SearchEngine
from sandbox.emulator import BotApiEmulator
from services.policy import LoanPolicy
from services.readers.binding import bind, issue_codes
from storage.db import Database
from storage.models import utcnow
from tests.conftest import RedisSpace

TOKEN = "123456789:E2E-secret-token-never-logged"
JSON = dict[str, Any]


class Person:
    """One Telegram user in the emulator, talking to the bot like a phone would."""

    def __init__(self, emu: BotApiEmulator, user_id: int, name: str) -> None:
        self.emu = emu
        self.user_id = user_id
        self.name = name
        emu.add_user(user_id, first_name=name)

    async def say(self, text: str, *, timeout: float = 30.0, **wait: Any) -> JSON:  # noqa: ASYNC109
        """Send a message; return the bot's first reply after it."""
        sent = self.emu.send_text(self.user_id, text)
        return await self.emu.wait_for_bot_message(
            self.user_id,
            after_message_id=sent["message"]["message_id"],
            timeout=timeout,
            **wait,
        )

    async def press(self, message: JSON, label: str, *, timeout: float = 30.0) -> JSON:  # noqa: ASYNC109
        """Press the button whose label contains ``label``; return the callback answer."""
        since = self.emu.mark()
        update = self.emu.press_button_text(self.user_id, message["message_id"], label)
        self.last_press_mark = since
        return await self.emu.wait_for_callback_answer(
            update["callback_query"]["id"], timeout=timeout
        )

    async def next_message(self, *, timeout: float = 30.0, **wait: Any) -> JSON:  # noqa: ASYNC109
        """The next bot message (sent or edited) after the last button press."""
        return await self.emu.wait_for_bot_message(
            self.user_id, since=self.last_press_mark, timeout=timeout, **wait
        )

    def texts(self) -> list[str]:
        return [m.get("text") or "" for m in self.emu.bot_messages(self.user_id)]


async def until(check: Callable[[], object], *, timeout: float = 30.0, what: str = "") -> None:  # noqa: ASYNC109
    """Wait until ``check()`` is true: the emulator's state (calls, messages) or the database
    changed as expected. Polls; never a fixed sleep followed by an assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _truth(check()):
        if loop.time() > deadline:
            raise TimeoutError(f"not reached within {timeout}s: {what or check}")
        await asyncio.sleep(0.02)


async def _truth(value: object) -> bool:
    return bool(await value) if inspect.isawaitable(value) else bool(value)


def buttons(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


class Clock:
    """The injected clock: real time plus an offset a test moves (never a sleep)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def set(self, moment: datetime) -> None:
        self.offset = moment - utcnow()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Harness:
    emu: BotApiEmulator
    app: Shuxiang
    db: Database
    policy: LoanPolicy
    clock: Clock
    polling: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.polling = asyncio.create_task(self.app.run_polling(handle_signals=False))

    async def started(self, polls_before: int = 0) -> None:
        """Until the bot polls: its start-up (menus, the index check, warm-up) is over, as in a
        real process, before a test holds locks or counts calls."""
        await until(
            lambda: len(self.emu.calls("getUpdates")) > polls_before, what="the bot's first poll"
        )

    async def shut(self) -> None:
        await self.app.stop()
        if self.polling is not None:
            await asyncio.wait_for(self.polling, timeout=10)
        await self.app.bot.session.close()
        await self.app.sender.bot.session.close()

    async def restart(self) -> None:
        """Stop the bot and start a new one with the same settings, database and clock, as a
        redeploy or a crash does: whatever the old process kept in memory is gone."""
        await self.shut()
        self.app = build_app(self.app.settings, token=TOKEN, db=self.db, clock=self.clock)
        polls = len(self.emu.calls("getUpdates"))
        self.start()
        await self.started(polls)

    async def bound(self, user_id: int, card_no: str, name: str = "") -> Person:
        """A Telegram user already bound to the reader with ``card_no``."""
        async with self.db.transaction() as session:
            (code,) = await issue_codes(session, policy=self.policy, card_nos=[card_no])
            await bind(session, code=code.code, telegram_user_id=user_id, chat_id=user_id)
        return Person(self.emu, user_id, name or card_no)

    async def code_for(self, card_no: str) -> str:
        async with self.db.transaction() as session:
            (code,) = await issue_codes(session, policy=self.policy, card_nos=[card_no])
        return code.code


@pytest.fixture
async def harness(
    db: Database, db_url: str, search_engine: SearchEngine, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """``@pytest.mark.settings(name=value)`` on a test overrides settings for its bot;
    ``@pytest.mark.redis`` keeps its dialogues in the test Redis (under a prefix of its own)."""
    marker = request.node.get_closest_marker("settings")
    overrides = {"quiet_hours": "", **(marker.kwargs if marker else {})}
    if request.node.get_closest_marker("redis"):
        space: RedisSpace = request.getfixturevalue("redis")
        overrides |= {"redis_url": space.url, "redis_prefix": space.prefix}
    async with BotApiEmulator(TOKEN, bot_username="shuxiang_test_bot") as emu:
        settings = load_settings(
            _env_file=None,
            database_url=db_url,
            bot_api_url=emu.base_url,
            bot_token=TOKEN,
            outbox_interval_seconds=0.3,
            # A refused reply is retried at once: the backoff's production 0.5 s, 1 s, 2 s is
            # wall-clock time the suite would spend waiting.
            bot_retry_backoff_seconds=0.01,
            # Pushes go out whatever the hour the suite runs at, unless a test's marker sets them.
            **overrides,
        )
        clock = Clock()
        harness = Harness(
            emu,
            build_app(settings, token=TOKEN, db=db, search=search_engine, clock=clock),
            db,
            settings.loan_policy(),
            clock,
        )
        harness.start()
        await harness.started()
        try:
            yield harness
        finally:
            await harness.shut()
