"""Pushes in the chat: sweeps queue, the sender delivers, the buttons act. Time is the harness's
injected clock (moved, never slept on). The sender against Bot API faults is in
tests/e2e/test_pushes.py."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services import circulation
from services.actor import Actor
from storage.models import Hold, Loan
from tests.chat.harness import Harness, buttons
from tests.chat.test_bot_flows import lend, setup_library
from tests.roles import as_reader

TZ = ZoneInfo("Asia/Shanghai")


def morning(day_offset: int, due_at: datetime) -> datetime:
    """07:30 school time, ``day_offset`` days from the due date."""
    day = due_at.astimezone(TZ).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(7, 30), tzinfo=TZ).astimezone(UTC)


async def committed_loan(h: Harness, loan_id: int, *, renewals: int) -> Loan:
    async with h.db.transaction(read_only=True) as s:
        loan = await s.get_one(Loan, loan_id)
    assert loan.renewals == renewals, f"loan {loan_id} never reached {renewals} renewals"
    return loan


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
