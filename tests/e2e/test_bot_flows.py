"""The bot over HTTP and long polling: two flows as a smoke test of that path, and what only it
shows (a redelivered update, 429s and blocked users, a graceful stop). Every other flow is in
tests/chat/test_bot_flows.py."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from services import circulation
from services.actor import Actor
from storage.models import (
    Loan,
    Notification,
    ProcessedUpdate,
    PurchaseSuggestion,
    Reader,
)
from tests.chat.test_bot_flows import lend, setup_library
from tests.e2e.conftest import Harness, Person, buttons, until


async def test_start_help_and_commands_registered(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    guest = Person(h.emu, 5001, "游客")
    reply = await guest.say("/start")
    assert "绑定码" in reply["text"]
    assert h.emu.reply_keyboard(5001) is not None
    reply = await guest.say("/help")
    assert "/loans" in reply["text"] and "/checkout" not in reply["text"]
    assert "/history" in reply["text"]
    commands = h.emu.calls("setMyCommands")
    # The default scope is a stranger's menu; a bound reader's comes with their binding.
    assert {c["command"] for c in commands[0]["commands"]} == {"start", "help", "bind", "lists"}
    # Unbound users may still search, but not see loans.
    assert "需要先绑定" in (await guest.say("/loans"))["text"]
    assert "解忧杂货店" in (await guest.say("杂货店"))["text"]


async def test_search_paging_card_and_suggestion(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5004, "S1")
    results = await student.say("数学")
    assert "共找到 15 本" in results["text"] and "第 1/2 页" in results["text"]
    assert "下一页 ▶" in buttons(results)
    await student.press(results, "下一页")
    page2 = await student.next_message()
    assert page2["message_id"] == results["message_id"] and "第 2/2 页" in page2["text"]
    assert "11." in page2["text"] and "◀ 上一页" in buttons(page2)

    # A single hit answers with the book's card itself, replying to the query.
    card = await student.say("《追风筝的人》")
    assert "《追风筝的人》" in card["text"] and "共找到" not in card["text"]
    assert "在架 1 / 共 1 册" in card["text"] and "三楼 文艺阅览室" in card["text"]
    assert "直接去取" in card["text"] and buttons(card) == []

    miss = await student.say("一本不存在的书名")
    assert "没有找到" in miss["text"]
    await student.press(miss, "荐购")
    draft = await student.next_message(contains="书名：")
    await student.press(draft, "提交")
    assert "已记录" in (await student.next_message())["text"]
    async with h.db.transaction(read_only=True) as s:
        rows = list(await s.scalars(select(PurchaseSuggestion.query)))
        assert rows == ["一本不存在的书名"]


async def test_redelivered_update_is_handled_once(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5015, "S1")
    await lend(h, "S1", "B1")
    loans = await student.say("/loans")
    since = h.emu.mark()
    press = h.emu.press_button_text(5015, loans["message_id"], "续借《追风筝的人》")
    await h.emu.wait_for_callback_answer(press["callback_query"]["id"])
    await h.emu.wait_idle(timeout=5)
    h.emu.redeliver(press["update_id"])
    # Confirmed by the bot's next getUpdates, which it makes only after handling the repeat.
    await h.emu.wait_idle(timeout=5)
    renewed = [m for m in h.emu.bot_messages(5015) if "已续借，" in (m.get("text") or "")]
    assert len(renewed) == 1
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(Loan.renewals)) == 1
        # Only the writing update is recorded (not /loans), and its replies went out.
        rows = list(await s.execute(select(ProcessedUpdate.update_id, ProcessedUpdate.replies)))
        assert rows == [(press["update_id"], None)]
    assert h.emu.mark() > since


async def test_rate_limits_and_blocked_users(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5020, "S1")
    # Telegram says 429: the bot waits retry_after and the reply still arrives.
    h.emu.faults.add(method="sendMessage", kind="429", retry_after=1, times=1)
    reply = await student.say("/help", timeout=15)
    assert "使用说明" in reply["text"]
    assert len(h.emu.calls("sendMessage")) >= 2
    # A user who blocked the bot does not stop it serving others.
    await h.bound(5021, "S2")
    h.emu.block(5021)
    h.emu.send_text(5021, "/help")
    await h.emu.wait_idle(timeout=10)
    assert "使用说明" in (await student.say("/help"))["text"]
    tried = [c for c in h.emu.calls("sendMessage") if str(c.get("chat_id")) == "5021"]
    assert tried  # the bot did try, got 403, and carried on
    assert h.emu.bot_messages(5021) == []


async def test_notifications_survive_rate_limits_and_stop_at_blocked_users(
    harness: Harness,
) -> None:
    h = harness
    await setup_library(h)
    await lend(h, "S3", "B4")
    await lend(h, "S3", "B1")
    waiting = await h.bound(5023, "S1")
    blocked = await h.bound(5024, "S2")
    for person, title in ((waiting, "三体"), (blocked, "追风筝的人")):
        card = await person.say(title)
        await person.press(card, "🔖 预约")
        await person.next_message(contains="已预约")
    h.emu.block(5024)
    h.emu.faults.add(method="sendMessage", kind="429", retry_after=1, times=1, chat_id=5023)
    async with h.db.transaction() as s:
        await circulation.return_copy(s, actor=Actor.cli(), barcode="B4", policy=h.policy)
        await circulation.return_copy(s, actor=Actor.cli(), barcode="B1", policy=h.policy)
    await h.emu.wait_for_bot_message(5023, contains="你预约的《三体》到了", timeout=15)

    async def statuses() -> dict[int, tuple[str, int]]:
        async with h.db.transaction(read_only=True) as s:
            rows = await s.execute(
                select(Notification.reader_id, Notification.status, Notification.attempts)
            )
            return {reader: (status, attempts) for reader, status, attempts in rows}

    async def settled() -> bool:  # the delivery job runs every 0.3 s
        return {s for s, _ in (await statuses()).values()} <= {"sent", "failed"}

    await until(settled, timeout=20, what="both notifications sent or given up")
    final = await statuses()
    ids = await reader_ids(h)
    assert final[ids["S1"]][0] == "sent"
    assert final[ids["S2"]] == ("failed", 1)  # blocked: given up at once, not retried


async def reader_ids(h: Harness) -> dict[str, int]:
    async with h.db.transaction(read_only=True) as s:
        return {card: rid for card, rid in await s.execute(select(Reader.card_no, Reader.id))}


async def test_graceful_stop_finishes_the_update_in_flight(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5027, "S1")
    await lend(h, "S1", "B1")
    loans = await student.say("/loans")
    h.emu.faults.add(method="sendMessage", kind="slow", delay=1.0, times=1)
    sends = len(h.emu.calls("sendMessage"))
    press = h.emu.press_button_text(5027, loans["message_id"], "续借《追风筝的人》")
    await until(lambda: len(h.emu.calls("sendMessage")) > sends, what="the slow reply")
    stopping = asyncio.create_task(h.app.stop())
    await until(lambda: h.app.pipeline.draining, what="the bot stopping")
    late = h.emu.send_text(5027, "/help")  # arrives while stopping
    await asyncio.wait_for(stopping, timeout=15)
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(Loan.renewals)) == 1  # committed, not cut off
        handled = set(await s.scalars(select(ProcessedUpdate.update_id)))
    assert press["update_id"] in handled
    # The update that came during the stop was neither handled nor confirmed: Telegram will
    # deliver it again to the next process.
    assert late["update_id"] not in handled
    assert late["update_id"] in {u["update_id"] for u in h.emu.pending_updates}
