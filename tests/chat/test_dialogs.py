"""Short dialogues in the chat: the 荐购 form (from a search miss and /suggest) and the
confirmations before cancelling a hold or unbinding, with stale and double taps."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import Endpoint, Hold, PurchaseSuggestion, Record
from tests.chat.harness import JSON, Harness, Person, buttons
from tests.chat.test_bot_flows import lend, setup_library


def _data(message: JSON, label: str) -> str:
    """The callback data of the button labelled ``label`` (to tap it again once it is gone)."""
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if label in button["text"]:
                return str(button["callback_data"])
    raise AssertionError(f"no button {label!r} in {buttons(message)}")


async def _tap_again(h: Harness, person: Person, message: JSON, data: str) -> JSON:
    pressed = h.emu.press_button(person.user_id, message["message_id"], data, check=False)
    return await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])


async def _suggestions(h: Harness) -> list[tuple[str, str | None]]:
    async with h.db.transaction(read_only=True) as s:
        rows = await s.execute(
            select(PurchaseSuggestion.query, PurchaseSuggestion.note).order_by(
                PurchaseSuggestion.id
            )
        )
        return [(q, n) for q, n in rows]


async def test_suggest_form_from_a_miss(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5101, "S1")
    miss = await student.say("一本不存在的书名")
    assert "没有找到" in miss["text"]
    await student.press(miss, "荐购")
    draft = await student.next_message(contains="书名：")
    assert "书名：一本不存在的书名" in draft["text"] and "作者：（未填）" in draft["text"]
    assert buttons(draft) == ["✏️ 修改书名", "✏️ 填写作者", "✅ 提交", "取消"]
    assert await _suggestions(h) == []  # nothing recorded before 提交

    await student.press(draft, "填写作者")
    assert "请发送作者" in (await student.next_message())["text"]
    draft = await student.say("无名氏")
    assert "作者：无名氏" in draft["text"] and "书名：一本不存在的书名" in draft["text"]
    await student.press(draft, "修改书名")
    assert "请发送书名" in (await student.next_message())["text"]
    draft = await student.say("一本真正的书")
    assert "书名：一本真正的书" in draft["text"] and "作者：无名氏" in draft["text"]
    submit = _data(draft, "提交")
    await student.press(draft, "提交")
    done = await student.next_message(contains="已记录")
    assert "《一本真正的书》（无名氏）" in done["text"] and buttons(done) == []
    assert await _suggestions(h) == [("一本真正的书", "无名氏")]
    # The same button tapped again: the form is over, and it says so.
    again = await _tap_again(h, student, draft, submit)
    assert "已经结束" in again["text"]

    # /suggest with a title; the same title again is recognised (dedupe as before). Another
    # reader: one user's taps in a few seconds are throttled.
    other = await h.bound(5105, "S2")
    for expected in ("已记录", "已经荐购过"):
        draft = await other.say("/suggest 一本真正的书")
        assert "书名：一本真正的书" in draft["text"] and "作者：（未填）" in draft["text"]
        # While the draft is shown (no field asked for), text is a search again.
        assert "共找到 15 本" in (await other.say("数学"))["text"]
        await other.press(draft, "提交")
        assert expected in (await other.next_message())["text"]
    # /suggest alone asks for the title first; 取消 records nothing.
    third = await h.bound(5106, "S3")
    assert "请发送书名" in (await third.say("/suggest"))["text"]
    draft = await third.say("另一本书")
    assert "书名：另一本书" in draft["text"]
    await third.press(draft, "取消")
    assert "已取消荐购" in (await third.next_message())["text"]
    assert await _suggestions(h) == [("一本真正的书", "无名氏"), ("一本真正的书", None)]


async def test_unbound_user_suggests_without_a_title_refused(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    visitor = Person(h.emu, 5102, "访客")
    ask = await visitor.say("/suggest")
    assert "请发送书名" in ask["text"] and buttons(ask) == ["✖️ 取消"]  # every step can be left
    draft = await visitor.say("x" * 201)
    assert "太长了" in draft["text"]
    draft = await visitor.say("海底两万里")
    await visitor.press(draft, "修改书名")
    await visitor.next_message()
    draft = await visitor.say("海底两万里（插图版）")
    await visitor.press(draft, "提交")
    assert "已记录" in (await visitor.next_message())["text"]
    assert await _suggestions(h) == [("海底两万里（插图版）", None)]


async def _card(h: Harness, person: Person, title: str) -> JSON:
    """Open a book card by its 详情 callback (whatever a search shows first)."""
    async with h.db.transaction(read_only=True) as s:
        pk = await s.scalar(select(Record.id).where(Record.title == title))
    anchor = await person.say("/help")
    person.last_press_mark = h.emu.mark()
    h.emu.press_button(person.user_id, anchor["message_id"], f"b:{pk}", check=False)
    return await person.next_message(contains=f"《{title}》")


async def _reserve_three_body(h: Harness, student: Person) -> None:
    card = await _card(h, student, "三体")
    await student.press(card, "🔖 预约")
    await student.next_message(contains="已预约")


async def _hold_statuses(h: Harness) -> list[str]:
    async with h.db.transaction(read_only=True) as s:
        return sorted(await s.scalars(select(Hold.status)))


async def test_cancelling_a_hold_asks_first(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    await lend(h, "S3", "B4")
    # Three readers: one user's taps in a few seconds are throttled.
    teacher = await h.bound(5107, "T1")
    await _reserve_three_body(h, teacher)
    holds = await teacher.say("/holds")
    await teacher.press(holds, "取消 1")
    ask = await teacher.next_message(contains="确定要取消")
    assert "《三体》" in ask["text"] and buttons(ask) == ["✅ 确定", "再想想"]
    await teacher.press(ask, "再想想")
    assert "什么都没有改" in (await teacher.next_message())["text"]
    assert await _hold_statuses(h) == ["waiting"]

    student = await h.bound(5103, "S1")
    await _reserve_three_body(h, student)
    holds = await student.say("/holds")
    await student.press(holds, "取消 1")
    ask = await student.next_message(contains="确定要取消")
    sure = _data(ask, "确定")
    await student.press(ask, "确定")
    # The list it was asked from is refreshed, the question becomes the answer.
    listed = await h.emu.wait_for_bot_message(
        5103, since=student.last_press_mark, contains="没有预约"
    )
    assert listed["message_id"] == holds["message_id"]
    done = await h.emu.wait_for_bot_message(5103, since=student.last_press_mark, contains="已取消")
    assert done["message_id"] == ask["message_id"] and buttons(done) == []
    assert await _hold_statuses(h) == ["cancelled", "waiting"]
    # A double tap cancels nothing more and says why.
    again = await _tap_again(h, student, ask, sure)
    assert "找不到这条预约" in again["text"]

    # From the book card: after 确定 the card's 取消预约 button goes.
    other = await h.bound(5108, "S2")
    await _reserve_three_body(h, other)
    card = await _card(h, other, "三体")
    await other.press(card, "取消预约")
    ask = await other.next_message(contains="确定要取消")
    await other.press(ask, "确定")
    await h.emu.wait_for_bot_message(5108, since=other.last_press_mark, contains="已取消")
    edited = await h.emu.wait_for_bot_message(
        5108, since=other.last_press_mark, predicate=lambda m: m["message_id"] == card["message_id"]
    )
    assert buttons(edited) == []
    assert await _hold_statuses(h) == ["cancelled", "cancelled", "waiting"]


async def _bindings(h: Harness) -> int:
    async with h.db.transaction(read_only=True) as s:
        return int(await s.scalar(select(func.count(Endpoint.id))) or 0)


async def test_unbind_asks_first(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5104, "S1")
    ask = await student.say("/unbind")
    assert "确定要解除绑定" in ask["text"] and buttons(ask) == ["✅ 确定", "再想想"]
    await student.press(ask, "再想想")
    assert "什么都没有改" in (await student.next_message())["text"]
    assert await _bindings(h) == 1
    assert "没有借书" in (await student.say("/loans"))["text"]

    ask = await student.say("/unbind")
    sure = _data(ask, "确定")
    await student.press(ask, "确定")
    assert "已解除绑定" in (await student.next_message())["text"]
    assert await _bindings(h) == 0
    again = await _tap_again(h, student, ask, sure)
    assert "已经解除绑定了" in again["text"]
    assert "还没有绑定" in (await student.say("/unbind"))["text"]


async def test_every_dialogue_can_be_left_with_a_word_or_any_command(harness: Harness) -> None:
    """Issue 19 item 10: 取消 under every step; /cancel, 取消 or any command ends a form or a
    desk step and says so, then the command runs; the next text is no longer taken by it."""
    h = harness
    await setup_library(h)
    student = await h.bound(5110, "S1")
    # /cancel in the 荐购 form: ended, and the next text is a search, not a suggestion.
    ask = await student.say("/suggest")
    assert "请发送书名" in ask["text"] and buttons(ask) == ["✖️ 取消"]
    assert "已取消荐购" in (await student.say("/cancel"))["text"]
    assert "《三体》" in (await student.say("三体"))["text"]
    # Any command in the middle of a field: the form ends, then the command answers.
    draft = await student.say("/suggest 海底两万里")
    await student.press(draft, "填写作者")
    asked = await student.next_message(contains="请发送作者")
    assert buttons(asked) == ["✖️ 取消"]
    ended = await student.say("/loans")
    assert "已取消荐购" in ended["text"]
    await h.until(lambda: any("你现在没有借书" in t for t in student.texts()), what="/loans")
    assert await _suggestions(h) == []
    # The 取消 under a question drops the draft too.
    other = await h.bound(5111, "S2")
    asked = await other.say("/suggest")
    await other.press(asked, "取消")
    assert "已取消荐购" in (await other.next_message())["text"]
    # 取消 typed; /cancel (or 取消) with nothing open says so instead of 没有这个命令.
    await other.say("/suggest 人间词话")
    assert "已取消荐购" in (await other.say("取消"))["text"]
    nothing = await other.say("/cancel")
    assert "没有进行中的操作" in nothing["text"] and "没有这个命令" not in nothing["text"]
    assert await _suggestions(h) == []

    # The desk: a command ends a waiting step (a run of scans with its summary).
    librarian = await h.bound(5112, "L1")
    await librarian.say("📤 借出")
    librarian.last_press_mark = h.emu.mark()
    ended = await librarian.say("/help")
    assert "已取消" in ended["text"]
    await librarian.next_message(contains="使用说明")  # then /help ran
    shown = await librarian.say("B4", contains="B4")
    assert "《三体》" in shown["text"] and "在架" in shown["text"]  # a scan, not a reader
    await librarian.say("📥 归还")
    await lend(h, "S3", "B1")
    assert "已还《追风筝的人》" in (await librarian.say("B1"))["text"]
    summary = await librarian.say("/start")
    assert "本次归还 1 册" in summary["text"] and "《追风筝的人》B1" in summary["text"]
    await h.until(lambda: len(librarian.texts()) >= 2 and librarian.texts()[-1] != summary["text"])
    shown = await librarian.say("B1", contains="B1")
    assert "在架" in shown["text"]  # a scan again, not a return
