"""The student's chat on a phone: 我的借阅 renewed by title, a single search hit opening
its card (summary folded, series neighbours), and 借阅历史 page by page."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from storage.models import Record
from tests import factories
from tests.chat.harness import Harness, Person, buttons
from tests.factories import make_world

READERS = {"S1": ("李明", "student"), "S2": ("王芳", "student")}
LONG_TITLE = "一个特别特别长的书名用来看看按钮放不放得下"
RECORDS = {
    "v1": ("三体", ["V1"]),
    "v2": ("三体Ⅱ", ["V2"]),
    "v3": ("三体Ⅲ", ["V3"]),
    "lt": (LONG_TITLE, ["L1"]),
    "hz": ("活着", ["H1"]),
    "big": ("巨著", ["G1"]),
} | {f"h{i:02d}": (f"历史书{i:02d}", [f"R{i:02d}"]) for i in range(1, 11)}
SUMMARY = "这是第二部的内容简介。" * 12  # 132 characters: folded
HUGE = "很长的简介。" * 1000  # far beyond one message


async def setup(h: Harness) -> dict[str, int]:
    world = await make_world(h.db, records=RECORDS, readers=READERS)
    details = {
        "v1": {"series": "地球往事", "summary": "第一部的简介。"},
        "v2": {"series": "地球往事", "subtitle": "黑暗森林", "summary": SUMMARY},
        "v3": {"series": "地球往事", "subtitle": "死神永生"},
        "big": {"summary": HUGE},
    }
    async with h.db.transaction() as s:
        for key, values in details.items():
            await s.execute(update(Record).where(Record.id == world.record_pks[key]).values(values))
        await h.app.search.rebuild_index(s)
    return world.record_pks


async def lend(h: Harness, card: str, barcode: str, *, now: datetime | None = None) -> None:
    await factories.lend(h.db, card, barcode, now=now, policy=h.policy)


async def give_back(h: Harness, barcode: str, *, now: datetime | None = None) -> None:
    await factories.give_back(h.db, barcode, now=now, policy=h.policy)


async def test_single_hit_opens_the_card_with_a_folded_summary_and_series_links(
    harness: Harness,
) -> None:
    h = harness
    await setup(h)
    student = await h.bound(8001, "S1")
    card = await student.say("黑暗森林")
    assert "《三体Ⅱ》" in card["text"] and "共找到" not in card["text"]
    assert "内容简介" in card["text"] and SUMMARY not in card["text"] and "…" in card["text"]
    assert buttons(card)[:3] == ["展开全文 ▾", "‹ 上一册《三体》", "下一册《三体Ⅲ 死神永生》›"]

    await student.press(card, "展开")
    opened = await student.next_message(predicate=lambda m: "收起 ▴" in buttons(m))
    assert opened["message_id"] == card["message_id"] and SUMMARY in opened["text"]
    assert "收起 ▴" in buttons(opened)
    await student.press(opened, "收起")
    folded = await student.next_message(predicate=lambda m: "展开全文 ▾" in buttons(m))
    assert folded["message_id"] == card["message_id"] and SUMMARY not in folded["text"]

    await student.press(folded, "下一册")
    third = await student.next_message(contains="《三体Ⅲ》")
    assert third["message_id"] != card["message_id"]
    assert "‹ 上一册《三体Ⅱ 黑暗森林》" in buttons(third)
    assert not any("下一册" in b or "展开" in b for b in buttons(third))
    await student.press(folded, "上一册")
    first = await student.next_message(contains="《三体》")
    assert "第一部的简介" in first["text"]  # a short summary is shown whole, without 展开
    assert buttons(first) == ["下一册《三体Ⅱ 黑暗森林》›"]  # on the shelf: nothing to reserve

    # Several hits still list; a summary longer than a message stays within Telegram's limit.
    listed = await student.say("三体")
    assert "共找到 3 本" in listed["text"]
    big = await student.say("巨著")
    await student.press(big, "展开")
    whole = await student.next_message(predicate=lambda m: "收起 ▴" in buttons(m))
    assert len(whole["text"]) <= 4096 and whole["text"].count("很长的简介") > 100

    # Without a bound card the single hit is a card too, with its browsing buttons only.
    guest = Person(h.emu, 8002, "访客")
    seen = await guest.say("黑暗森林")
    assert "《三体Ⅱ》" in seen["text"] and "预约" not in " ".join(buttons(seen))
    assert "下一册《三体Ⅲ 死神永生》›" in buttons(seen)


async def test_loans_renew_by_title_say_why_not_and_keep_their_order(harness: Harness) -> None:
    h = harness
    await setup(h)
    student = await h.bound(8003, "S1")
    now = h.clock()
    await lend(h, "S1", "V1", now=now - timedelta(days=29))  # due tomorrow
    await lend(h, "S1", "L1", now=now - timedelta(days=20))  # due in ten days
    await lend(h, "S1", "H1", now=now - timedelta(days=40))  # overdue
    loans = await student.say("📚 我的借阅")
    text = loans["text"]
    assert text.index("活着") < text.index("三体") < text.index(LONG_TITLE)
    assert "已逾期 10 天" in text and "已逾期，不能续借" in text and "还剩" in text
    labels = buttons(loans)
    assert labels == ["🔁 续借《三体》", "🔁 续借《一个特别特别长的书名…》", "📜 借阅历史"]

    await student.press(loans, "续借《三体》")
    edited = await student.next_message(contains="已续借 1 次")
    assert edited["message_id"] == loans["message_id"]
    # 三体 is now due after the long title, yet the edited list keeps its rows where they were.
    text = edited["text"]
    assert text.index("活着") < text.index("三体") < text.index(LONG_TITLE)
    assert "已续借 1 次，达到上限" in text
    assert buttons(edited) == ["🔁 续借《一个特别特别长的书名…》", "📜 借阅历史"]
    told = await student.next_message(contains="新的应还日期")
    assert "《三体》已续借" in told["text"]
    # A fresh list goes by the new due dates.
    fresh = await student.say("/loans")
    assert fresh["text"].index(LONG_TITLE) < fresh["text"].index("三体")


async def test_history_pages_back_and_forth(harness: Harness) -> None:
    h = harness
    await setup(h)
    student = await h.bound(8004, "S1")
    empty = await student.say("/history")
    assert "借阅历史是空的" in empty["text"] and buttons(empty) == []
    start = h.clock() - timedelta(days=100)
    for i in range(1, 11):
        lent = start + timedelta(days=8 * i)
        await lend(h, "S1", f"R{i:02d}", now=lent)
        await give_back(h, f"R{i:02d}", now=lent + timedelta(days=5))
    await lend(h, "S1", "V1")  # still out: not in the history

    page1 = await student.say("/history")
    assert "共 10 本，第 1/2 页" in page1["text"]
    assert page1["text"].index("历史书10") < page1["text"].index("历史书03")  # newest first
    assert "历史书02" not in page1["text"] and "《三体》" not in page1["text"]
    assert buttons(page1) == ["下一页 ›"]
    await student.press(page1, "下一页")
    page2 = await student.next_message(contains="第 2/2 页")
    assert page2["message_id"] == page1["message_id"]
    assert "9. 《历史书02》" in page2["text"] and "10. 《历史书01》" in page2["text"]
    assert buttons(page2) == ["‹ 上一页"]
    await student.press(page2, "上一页")
    again = await student.next_message(contains="第 1/2 页")
    assert again["message_id"] == page1["message_id"]

    # From 我的借阅: a new message, the first page.
    loans = await student.say("/loans")
    await student.press(loans, "借阅历史")
    opened = await student.next_message(contains="借阅历史")
    assert opened["message_id"] != loans["message_id"] and "第 1/2 页" in opened["text"]

    stranger = Person(h.emu, 8005, "路人")
    assert "需要先绑定" in (await stranger.say("/history"))["text"]


async def test_forged_history_and_summary_buttons_are_refused(harness: Harness) -> None:
    h = harness
    await setup(h)
    await h.bound(8006, "S1")
    mine = await Person(h.emu, 8006, "李明").say("/help")
    for data in ("hy:1000:0", "hy:-1:0", "bs:0:1", "bs:" + "9" * 60 + ":0", "bs:1:maybe"):
        pressed = h.emu.press_button(8006, mine["message_id"], data, check=False)
        answer = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
        assert "按钮已经失效" in answer["text"], (data, answer)
