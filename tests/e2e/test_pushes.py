"""Pushes end to end: sweeps queue, the sender delivers through the emulator, the buttons act.
Time is the harness's injected clock (moved, never slept on); faults come from the emulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from sqlalchemy import select

from bot.config import load_settings
from bot.sender import Sender
from sandbox.emulator import BotApiEmulator
from services import circulation
from services.actor import Actor
from services.circulation.kinds import OVERDUE, LoanPayload
from services.notifications import enqueue
from storage.db import Database
from storage.models import Hold, Loan, Notification, OutboxStatus, TelegramBinding
from tests.e2e.conftest import TOKEN, Clock, Harness, buttons
from tests.e2e.test_bot_flows import lend, setup_library
from tests.factories import make_world
from tests.roles import as_reader

TZ = ZoneInfo("Asia/Shanghai")


def morning(day_offset: int, due_at: datetime) -> datetime:
    """07:30 school time, ``day_offset`` days from the due date."""
    day = due_at.astimezone(TZ).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(7, 30), tzinfo=TZ).astimezone(UTC)


async def committed_loan(h: Harness, loan_id: int, *, renewals: int) -> Loan:
    for _ in range(100):
        async with h.db.transaction(read_only=True) as s:
            loan = await s.get_one(Loan, loan_id)
        if loan.renewals == renewals:
            return loan
        await asyncio.sleep(0.05)
    raise TimeoutError(f"loan {loan_id} never reached {renewals} renewals")


async def run_job(h: Harness, name: str) -> int:
    return await h.app.jobs.run_once(name, h.app.job_context)


async def test_due_soon_reminder_renews_in_one_tap_or_says_why_not(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(6001, "S1")
    await lend(h, "S1", "B1")
    async with h.db.transaction(read_only=True) as s:
        loan = await s.scalar(select(Loan))
    assert loan is not None
    h.clock.set(morning(-3, loan.due_at))
    assert await run_job(h, "due-soon") == 1
    push = await h.emu.wait_for_bot_message(6001, contains="还有 3 天到期")
    assert "追风筝的人" in push["text"] and buttons(push) == ["🔁 续借"]
    answer = await student.press(push, "续借")
    assert not answer.get("show_alert")
    renewed = await student.next_message(contains="已续借")
    assert "新的应还日期" in renewed["text"]
    # Today's handlers reply before their commit (until replies-after-commit lands): wait for it.
    again = await committed_loan(h, loan.id, renewals=1)
    assert again.due_at > loan.due_at
    # The pushed buttons are gone: nothing to tap twice.
    assert buttons(h.emu.bot_messages(6001)[0]) == []
    # The next due-soon: renewals used up, so no 续借 to tap, and the text says why.
    h.clock.set(morning(-1, again.due_at))
    assert await run_job(h, "due-soon") == 1
    push = await h.emu.wait_for_bot_message(6001, contains="还有 1 天到期")
    assert buttons(push) == []
    assert "请按时归还" in push["text"] and "已续借 1 次，达到上限" in push["text"]
    assert "点下面的按钮续借" not in push["text"]
    # Running the sweep again the same morning sends nothing twice.
    assert await run_job(h, "due-soon") == 0


async def test_hold_ready_keep_and_give_up_passes_the_copy_on_at_once(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    first = await h.bound(6011, "S1")
    second = await h.bound(6012, "S2")
    await lend(h, "S3", "B4")
    async with h.db.transaction() as s:
        for card in ("S1", "S2"):
            reader = await circulation.reader_by_card(s, card)
            record = (await circulation.copy_by_barcode(s, "B4")).record_pk
            await circulation.place_hold(
                s,
                actor=await as_reader(s, reader.id),
                reader_id=reader.id,
                record_pk=record,
                policy=h.policy,
            )
        await circulation.return_copy(s, actor=Actor.cli(), barcode="B4", policy=h.policy)
    push = await h.emu.wait_for_bot_message(6011, contains="你预约的《三体》到了")
    assert buttons(push) == ["✅ 还要", "🙅 不要了"]
    await first.press(push, "还要")
    assert "给你留到" in (await first.next_message(contains="给你留到"))["text"]
    # 还要 keeps the buttons off; a later 不要了 comes from a fresh card only: use the API path.
    push_again = h.emu.bot_messages(6011)[0]
    assert buttons(push_again) == []
    # The first reader gives up through a second notice's button (hold-ending).
    async with h.db.transaction(read_only=True) as s:
        hold = await s.scalar(select(Hold).where(Hold.status == "ready"))
    assert hold is not None and hold.ready_until is not None
    h.clock.set(morning(-1, hold.ready_until))
    assert await run_job(h, "hold-ending") == 1
    ending = await h.emu.wait_for_bot_message(6011, contains="最后取书日")
    await first.press(ending, "不要了")
    assert "下一位" in (await first.next_message(contains="已取消"))["text"]
    passed = await h.emu.wait_for_bot_message(6012, contains="你预约的《三体》到了")
    assert buttons(passed) == ["✅ 还要", "🙅 不要了"]
    async with h.db.transaction(read_only=True) as s:
        states = sorted(await s.scalars(select(Hold.status)))
    assert states == ["cancelled", "ready"]
    del second


async def test_settings_switch_due_soon_off(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(6021, "S1")
    shown = await student.say("/settings")
    assert "提醒设置" in shown["text"] and "关闭：到期前提醒" in buttons(shown)
    answer = await student.press(shown, "关闭：到期前提醒")
    assert "已关闭" in answer["text"]
    edited = await student.next_message(contains="⛔ 到期前提醒")
    assert "打开：到期前提醒" in buttons(edited)
    await lend(h, "S1", "B1")
    async with h.db.transaction(read_only=True) as s:
        loan = await s.scalar(select(Loan))
    assert loan is not None
    h.clock.set(morning(-3, loan.due_at))
    assert await run_job(h, "due-soon") == 0
    # Overdue reminders are not in the list: they cannot be switched off.
    assert not any("逾期" in b for b in buttons(edited))


# -- the sender against emulator faults --------------------------------------------------------


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
            s.add(TelegramBinding(reader_id=reader_id, telegram_user_id=chat, chat_id=chat))
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
        binding = await s.scalar(select(TelegramBinding).where(TelegramBinding.chat_id == chats[0]))
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


async def test_loans_mark_due_soon_and_the_card_of_a_book_all_out_shows_the_earliest_due(
    harness: Harness,
) -> None:
    h = harness
    await setup_library(h)
    borrower = await h.bound(6031, "S1")
    other = await h.bound(6032, "S2")
    await lend(h, "S1", "B4", now=h.clock() - timedelta(days=28))
    async with h.db.transaction(read_only=True) as s:
        loan = await s.scalar(select(Loan))
    assert loan is not None
    loans = await borrower.say("/loans")
    assert "⏰ 还剩" in loans["text"]
    card = await other.say("三体", contains="在架 0")
    assert f"全部借出，最早 {loan.due_at.astimezone(TZ):%Y-%m-%d} 归还" in card["text"]
