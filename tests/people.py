"""People talking to the bot, for both chat tiers: tests/chat (the dispatcher fed in process) and
tests/e2e (HTTP and long polling). A Person acts on the Bot API emulator's message store, which
both tiers use for the Telegram side, so a test reads the same in either; the injected clock and
binding readers to Telegram users are shared too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.app import Shuxiang
from sandbox.emulator.methods import BotApiMethods
from services.policy import LoanPolicy
from services.readers.binding import bind_telegram, issue_codes
from storage.db import Database
from storage.models import utcnow
from tests.conftest import RedisSpace

TOKEN = "123456789:E2E-secret-token-never-logged"
JSON = dict[str, Any]


class Person:
    """One Telegram user in the emulator, talking to the bot like a phone would."""

    def __init__(self, emu: BotApiMethods, user_id: int, name: str) -> None:
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
class Library:
    """A school's bot under test, whichever tier runs it: the users' side (the emulator's store),
    the database, the application and its injected clock; and readers bound to Telegram users,
    as a librarian's printed binding codes would do it."""

    emu: BotApiMethods
    db: Database
    policy: LoanPolicy
    app: Shuxiang
    clock: Clock

    async def bound(self, user_id: int, card_no: str, name: str = "") -> Person:
        """A Telegram user already bound to the reader with ``card_no``."""
        async with self.db.transaction() as session:
            (code,) = await issue_codes(session, policy=self.policy, card_nos=[card_no])
            await bind_telegram(session, code=code.code, telegram_user_id=user_id, chat_id=user_id)
        return Person(self.emu, user_id, name or card_no)

    async def code_for(self, card_no: str) -> str:
        async with self.db.transaction() as session:
            (code,) = await issue_codes(session, policy=self.policy, card_nos=[card_no])
        return code.code


def bot_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings of a test's bot beyond the database and the Bot API: ``@pytest.mark.settings(
    name=value)`` on a test overrides them; ``@pytest.mark.redis`` keeps its dialogues in the test
    Redis (under a prefix of its own). Pushes go out whatever the hour the suite runs at, unless
    the marker sets quiet hours."""
    marker = request.node.get_closest_marker("settings")
    overrides = {"quiet_hours": "", **(marker.kwargs if marker else {})}
    if request.node.get_closest_marker("redis"):
        space: RedisSpace = request.getfixturevalue("redis")
        overrides |= {"redis_url": space.url, "redis_prefix": space.prefix}
    return overrides
