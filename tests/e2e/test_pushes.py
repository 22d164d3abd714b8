"""The sender against the emulator over HTTP: 429s waited out, 403s, 5xx retried, slow answers,
quiet hours. Time is an injected clock (moved, never slept on); faults come from the emulator.
Pushes in the chat (sweeps, their buttons) are in tests/chat/test_pushes.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from sqlalchemy import select

from bot.config import load_settings
from bot.sender import Sender
from sandbox.emulator import BotApiEmulator
from services.circulation.kinds import OVERDUE, LoanPayload
from services.notifications import enqueue
from storage.db import Database
from storage.models import Endpoint, Notification, OutboxStatus
from tests.e2e.conftest import TOKEN, Clock
from tests.factories import make_world, telegram_endpoint

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(TOKEN) as emulator:
        yield emulator


async def queue_overdue(db: Database, emu: BotApiEmulator, n: int, now: datetime) -> list[int]:
    world = await make_world(
        db,
        records={"r": ("三体", ["B"])},
        readers={f"S{i}": (f"学生{i}", "student") for i in range(n)},
    )
    chats = []
    async with db.transaction() as s:
        for i, reader_id in enumerate(world.reader_ids.values()):
            chat = 8000 + i
            emu.add_user(chat, first_name=f"学生{i}")
            chats.append(chat)
            s.add(telegram_endpoint(reader_id, chat))
            payload = LoanPayload(loan_id=i, title="三体", due_at=now, slot="x", days=2)
            await enqueue(s, OVERDUE, reader_id=reader_id, payload=payload, now=now)
    return chats


def make_sender(db: Database, emu: BotApiEmulator, clock: Clock, **overrides: object) -> Sender:
    settings = load_settings(_env_file=None, bot_api_url=emu.base_url, quiet_hours="", **overrides)
    bot = Bot(TOKEN, session=emu.aiogram_session())
    return Sender(db, bot, settings, clock=clock)


def delivered(emu: BotApiEmulator, chats: list[int]) -> Counter[int]:
    return Counter({chat: len(emu.bot_messages(chat)) for chat in chats})


async def statuses(db: Database) -> Counter[str]:
    async with db.transaction(read_only=True) as s:
        return Counter(await s.scalars(select(Notification.status)))


async def test_sender_waits_out_429_and_sends_each_once(db: Database, emu: BotApiEmulator) -> None:
    clock = Clock()
    chats = await queue_overdue(db, emu, 12, clock())
    emu.faults.add("sendMessage", "429", retry_after=1, times=2)
    sender = make_sender(db, emu, clock, send_rate=30)
    try:
        await sender.drain()
        clock.advance(seconds=2)  # the 429'd ones were rescheduled by retry_after
        await sender.drain()
    finally:
        await sender.bot.session.close()
    assert delivered(emu, chats) == Counter(dict.fromkeys(chats, 1))
    assert await statuses(db) == Counter({OutboxStatus.SENT: 12})
    assert sender.stats.throttled == 2 and sender.rate < 30


async def test_sender_403_marks_reader_unreachable_5xx_retries_slow_is_fine(
    db: Database, emu: BotApiEmulator
) -> None:
    clock = Clock()
    chats = await queue_overdue(db, emu, 6, clock())
    emu.block(chats[0])
    emu.faults.add("sendMessage", "5xx", times=1, chat_id=chats[1])
    emu.faults.add("sendMessage", "slow", times=1, chat_id=chats[2], delay=0.3)
    sender = make_sender(db, emu, clock, send_max_attempts=3)
    try:
        await sender.drain()
        assert delivered(emu, chats)[chats[1]] == 0  # waiting for its backoff
        clock.advance(seconds=31)
        await sender.drain()
    finally:
        await sender.bot.session.close()
    counts = delivered(emu, chats)
    assert counts[chats[0]] == 0 and all(counts[c] == 1 for c in chats[1:])
    async with db.transaction(read_only=True) as s:
        binding = await s.scalar(select(Endpoint).where(Endpoint.address == str(chats[0])))
        failed = await s.scalar(
            select(Notification).where(Notification.status == OutboxStatus.FAILED)
        )
    assert binding is not None and binding.unreachable_at is not None
    assert failed is not None and failed.last_error and "403" in failed.last_error


async def test_a_message_that_keeps_failing_ends_failed_with_its_reason(
    db: Database, emu: BotApiEmulator
) -> None:
    clock = Clock()
    (chat,) = await queue_overdue(db, emu, 1, clock())
    emu.faults.add("sendMessage", "5xx", times=None, chat_id=chat)
    sender = make_sender(db, emu, clock, send_max_attempts=3)
    try:
        for _ in range(4):
            await sender.drain()
            clock.advance(hours=1)
    finally:
        await sender.bot.session.close()
    async with db.transaction(read_only=True) as s:
        note = await s.scalar(select(Notification))
    assert note is not None and note.status == OutboxStatus.FAILED and note.attempts == 3
    assert note.last_error and "Bad Gateway" in note.last_error


async def test_quiet_hours_hold_pushes_until_morning(db: Database, emu: BotApiEmulator) -> None:
    night = datetime(2027, 3, 1, 23, 0, tzinfo=TZ).astimezone(UTC)
    clock = Clock()
    clock.set(night)
    chats = await queue_overdue(db, emu, 2, night)
    settings = load_settings(_env_file=None, bot_api_url=emu.base_url)  # default 21:30-07:00
    sender = Sender(db, Bot(TOKEN, session=emu.aiogram_session()), settings, clock=clock)
    try:
        assert await sender.drain() == 0
        clock.set(datetime(2027, 3, 2, 6, 59, tzinfo=TZ).astimezone(UTC))
        assert await sender.drain() == 0
        clock.set(datetime(2027, 3, 2, 7, 0, tzinfo=TZ).astimezone(UTC))
        assert await sender.drain() == 2
    finally:
        await sender.bot.session.close()
    assert delivered(emu, chats) == Counter(dict.fromkeys(chats, 1))
