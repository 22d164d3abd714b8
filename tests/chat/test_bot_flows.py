"""Every student and librarian flow in the chat: the real bot, services and SQL."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from storage.models import (
    BindingCode,
    Copy,
    Endpoint,
    Hold,
    Loan,
    Notification,
    Record,
    utcnow,
)
from tests import factories
from tests.chat.harness import TOKEN, Harness, Person, buttons
from tests.factories import make_world
from tests.people import Library

READERS = {
    "S1": ("李明", "student"),
    "S2": ("王芳", "student"),
    "S3": ("赵雷", "student"),
    "T1": ("陈老师", "teacher"),
    "L1": ("周馆员", "librarian"),
}
RECORDS = {
    "r1": ("追风筝的人", ["B1"]),
    "r2": ("解忧杂货店", ["B2", "B3"]),
    "r3": ("三体", ["B4"]),
} | {f"m{i:02d}": (f"趣味数学第{i}讲", [f"M{i:02d}"]) for i in range(1, 16)}


async def setup_library(h: Library) -> None:
    await make_world(h.db, records=RECORDS, readers=READERS, clc={"r1": "I712.45", "r3": "I247.5"})
    async with h.db.transaction() as session:
        await h.app.search.rebuild_index(session)


async def lend(h: Library, card: str, barcode: str, *, now: datetime | None = None) -> None:
    await factories.lend(h.db, card, barcode, now=now, policy=h.policy)


async def test_binding_codes(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    phone = Person(h.emu, 5002, "李明")
    code = await h.code_for("S1")
    reply = await phone.say(f"/start {code}")
    assert "绑定成功" in reply["text"] and "李明" in reply["text"]
    # Used, unknown and expired codes get one and the same answer: a guesser learns nothing.
    other = Person(h.emu, 5003, "路人")
    used = (await other.say(f"/bind {code}"))["text"]
    unknown = (await other.say("/bind ZZZZ2222"))["text"]
    expired = await h.code_for("S2")
    async with h.db.transaction() as s:
        await s.execute(
            update(BindingCode)
            .where(BindingCode.code == expired)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert used == unknown == (await other.say(f"/bind {expired}"))["text"]
    assert "绑定码无效" in used
    assert "/bind" in (await other.say("/bind"))["text"]
    # A new binding for the same reader replaces the old one, and the old account is told.
    fresh = await h.code_for("S1")
    since = h.emu.mark()
    assert "绑定成功" in (await other.say(f"/bind {fresh.lower()}"))["text"]
    told = await h.emu.wait_for_bot_message(5002, since=since, contains="另一个 Telegram 账号")
    assert "李明（S1）" in told["text"]
    assert "需要先绑定" in (await phone.say("/loans"))["text"]
    assert "没有借书" in (await other.say("/loans"))["text"]
    ask = await other.say("/unbind")
    await other.press(ask, "确定")
    assert "已解除绑定" in (await other.next_message())["text"]
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count(Endpoint.id))) == 0


async def test_loans_and_renewal(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5005, "S1")
    await lend(h, "S1", "B1")
    await lend(h, "S1", "B4", now=utcnow() - timedelta(days=29))
    loans = await student.say("📚 我的借阅")
    assert "我的借阅" in loans["text"] and "追风筝的人" in loans["text"]
    assert "还剩" in loans["text"]  # 三体 is due within a day
    # Buttons are named by title, in the list's order (by due date).
    assert buttons(loans)[:2] == ["🔁 续借《三体》", "🔁 续借《追风筝的人》"]
    answer = await student.press(loans, "续借《追风筝的人》")
    refreshed = await student.next_message(contains="已续借 1 次")
    assert refreshed["message_id"] == loans["message_id"]
    assert "新的应还日期" in (await student.next_message(contains="已续借，"))["text"]
    assert answer.get("text") in (None, "")
    # The renewal limit is one: no button any more, the line says why, and a press of the old
    # button is refused with the reason.
    assert "续借《追风筝的人》" not in " ".join(buttons(refreshed))
    assert "已续借 1 次，达到上限" in refreshed["text"]
    async with h.db.transaction(read_only=True) as s:
        renewed_id = await s.scalar(select(Loan.id).where(Loan.renewals == 1))
    pressed = h.emu.press_button(5005, loans["message_id"], f"rn:{renewed_id}", check=False)
    answer = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
    assert answer["show_alert"] and "上限" in answer["text"]
    # Someone waiting blocks a renewal, and the borrower's card says so.
    waiting = await h.bound(5006, "S2")
    card = await waiting.say("三体")
    await waiting.press(card, "预约")
    answer = await student.press(refreshed, "续借《三体》")
    assert "预约排队" in answer["text"] and "不能续借" in answer["text"]
    again = await student.say("/loans", contains="我的借阅")
    assert "续借《三体》" not in " ".join(buttons(again))
    assert "有 1 位同学在排队预约，不能续借" in again["text"]
    # The borrower was also told, once, that someone waits for the book.
    await h.emu.wait_for_bot_message(student.user_id, contains="有同学在排队等《三体》")
    own_card = await student.say("三体", contains="你正在借这本书")
    assert "1 位同学在等" in own_card["text"]
    assert sum("有同学在排队等《三体》" in text for text in student.texts()) == 1


async def test_overdue_loan_is_marked_and_not_renewable(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5007, "S1")
    await lend(h, "S1", "B1", now=utcnow() - timedelta(days=35))
    loans = await student.say("/loans")
    assert "已逾期 5 天" in loans["text"] and "已逾期，不能续借" in loans["text"]
    assert buttons(loans) == ["📜 借阅历史"]  # no renewal button on an overdue loan
    async with h.db.transaction(read_only=True) as s:
        loan_id = await s.scalar(select(Loan.id))
    # Even a hand-made button for it is refused with the reason.
    since = h.emu.mark()
    pressed = h.emu.press_button(5007, loans["message_id"], f"rn:{loan_id}", check=False)
    answer = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
    assert "逾期" in answer["text"] and "不能续借" in answer["text"]
    assert h.emu.mark() >= since


async def test_reserve_queue_return_and_hold_shelf(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    await lend(h, "S3", "B4")
    first = await h.bound(5008, "S1")
    second = await h.bound(5009, "S2")
    librarian = await h.bound(5010, "L1")

    for person, position in ((first, 1), (second, 2)):
        card = await person.say("三体")
        assert "全部借出" in card["text"] and "在架 0" in card["text"]
        await person.press(card, "🔖 预约")
        placed = await person.next_message(contains="已预约")
        assert f"排在第 {position} 位" in placed["text"]
    holds = await second.say("/holds")
    assert "排在第 2 位" in holds["text"]

    # A copy coming back goes to the first in the queue, with a notification row.
    back = await librarian.say("/return B4")
    assert "已还《三体》" in back["text"] and "留给 李明" in back["text"]
    # The reader is told by the outbox delivery job.
    told = await h.emu.wait_for_bot_message(5008, contains="你预约的《三体》到了")
    assert "服务台取书" in told["text"]
    assert "已到馆" in (await first.say("🔖 我的预约"))["text"]
    assert "排在第 1 位" in (await second.say("/holds"))["text"]
    async with h.db.transaction(read_only=True) as s:
        kinds = list(await s.execute(select(Notification.kind).order_by(Notification.id)))
        # S3 (the borrower) was told once that others wait; S1 that the book is ready.
        assert [k for (k,) in kinds] == ["reserved_note", "hold_ready"]
    # The hold shelf copy cannot go out to someone else.
    refused = await librarian.say("/checkout S2 B4")
    assert "预约架" in refused["text"] and "不能借给" in refused["text"]
    out = await librarian.say("/checkout S1 B4")
    assert "已借出《三体》" in out["text"] and "已取走预约书" in out["text"]

    # Cancelling from 我的预约 refreshes the list.
    holds = await second.say("/holds")
    await second.press(holds, "取消 1")
    await second.press(await second.next_message(contains="确定要取消"), "确定")
    assert "没有预约" in (await second.next_message(contains="没有预约"))["text"]
    async with h.db.transaction(read_only=True) as s:
        statuses = sorted(await s.scalars(select(Hold.status)))
    assert statuses == ["cancelled", "collected"]


async def test_librarian_commands_and_refusals(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    librarian = Person(h.emu, 5011, "周馆员")
    assert "绑定成功" in (await librarian.say(f"/bind {await h.code_for('L1')}"))["text"]
    student = await h.bound(5012, "S1")
    assert "只有图书管理员" in (await student.say("/checkout S1 B1"))["text"]
    assert "只有图书管理员" in (await student.say("/return B1"))["text"]
    assert "只有图书管理员" in (await student.say("/reader S2"))["text"]
    assert "用法" in (await librarian.say("/checkout S1"))["text"]
    out = await librarian.say("/checkout S1 B1")
    assert "已借出《追风筝的人》（B1）给 李明（S1）" in out["text"]
    assert "已被借出" in (await librarian.say("/checkout S2 B1"))["text"]
    assert "找不到条码" in (await librarian.say("/checkout S2 NOPE"))["text"]
    assert "找不到证号" in (await librarian.say("/checkout X9 B2"))["text"]
    await librarian.say("/checkout S1 B2")
    await librarian.say("/checkout S1 B4")
    assert "借满 3 本" in (await librarian.say("/checkout S1 M01"))["text"]
    info = await librarian.say("/reader S1")
    assert "李明" in info["text"] and "借阅 3 本" in info["text"] and "B4" in info["text"]
    assert "没有借出记录" in (await librarian.say("/return M01"))["text"]
    assert "已还《追风筝的人》" in (await librarian.say("/return B1"))["text"]
    # Binding gave the librarian their own command menu in their chat.
    scoped = [c for c in h.emu.calls("setMyCommands") if c.get("scope", {}).get("type") == "chat"]
    assert [c["scope"]["chat_id"] for c in scoped] == [5011]
    assert {"checkout", "return", "reader"} <= {x["command"] for x in scoped[0]["commands"]}


async def test_teacher_reserves_for_office_delivery(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    await lend(h, "S1", "B1")
    teacher = await h.bound(5013, "T1")
    librarian = await h.bound(5014, "L1")
    card = await teacher.say("追风筝")
    assert "🏫 预约并送到办公室" in buttons(card)
    await teacher.press(card, "送到办公室")
    assert "送到你的办公室" in (await teacher.next_message(contains="已预约"))["text"]
    back = await librarian.say("/return B1")
    assert "办公室" in back["text"] and "陈老师" in back["text"]
    told = await h.emu.wait_for_bot_message(5013, contains="到了")
    assert "送到你的办公室" in told["text"]
    assert "图书馆会送到你的办公室" in (await teacher.say("/holds"))["text"]


async def test_forged_and_stale_callbacks_are_refused(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    owner = await h.bound(5016, "S1")
    thief = await h.bound(5017, "S2")
    await lend(h, "S1", "B1")
    await lend(h, "S3", "B4")
    loans = await owner.say("/loans")
    async with h.db.transaction(read_only=True) as s:
        copy_id = await s.scalar(select(Copy.id).where(Copy.barcode == "B1"))
        loan_id = await s.scalar(select(Loan.id).where(Loan.copy_id == copy_id))
    mine = await thief.say("/help")
    for data, expected in (
        (f"rn:{loan_id}", "找不到这条借阅记录"),  # another reader's loan
        ("ch:99999:0", "找不到这条预约"),
        ("b:99999", "找不到这本书"),
        ("rn:not-a-number", "按钮已经失效"),
        ("zz:1", "按钮已经失效"),
    ):
        pressed = h.emu.press_button(5017, mine["message_id"], data, check=False)
        answer = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
        assert expected in answer["text"], (data, answer)
    async with h.db.transaction(read_only=True) as s:
        loan = await s.get(Loan, loan_id)
        assert loan is not None and loan.renewals == 0 and loan.reader_id != 0
    assert loans["message_id"] > 0


async def test_odd_messages_get_short_helpful_replies(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    person = Person(h.emu, 5018, "小张")
    sent = h.emu.send_sticker(5018)
    reply = await h.emu.wait_for_bot_message(5018, after_message_id=sent["message"]["message_id"])
    assert "只看得懂文字" in reply["text"]
    sent = h.emu.send_photo_from_user(5018)
    reply = await h.emu.wait_for_bot_message(5018, after_message_id=sent["message"]["message_id"])
    assert "只看得懂文字" in reply["text"]
    assert "太长" in (await person.say("书" * 4000))["text"]
    assert "没有这个命令" in (await person.say("/frobnicate"))["text"]
    for hostile in ("'; DROP TABLE records; --", "😀😀😀", "%_*()^", "\u0001\u0002"):
        reply = await person.say(hostile)
        assert "Traceback" not in reply["text"]
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count(Record.id))) == len(RECORDS)


async def test_failures_reach_users_as_a_short_apology_and_logs_hold_no_token(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5019, "S1")

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("database exploded")

    monkeypatch.setattr("handlers.loans.loans_of", broken)
    with caplog.at_level(logging.ERROR):
        reply = await student.say("/loans")
    assert reply["text"] == "抱歉，出了点问题，请稍后再试。"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed: RuntimeError: database exploded" in logged
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    # The bot keeps serving after a failure.
    monkeypatch.undo()
    assert "没有借书" in (await student.say("/loans"))["text"]


async def test_flooding_user_is_throttled(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    person = Person(h.emu, 5022, "刷屏")
    for _ in range(15):
        h.emu.send_text(5022, "/help")
    await person.emu.wait_for_bot_message(5022, contains="太频繁", timeout=10)
    await h.emu.wait_idle(timeout=10)
    texts = person.texts()
    assert sum("太频繁" in t for t in texts) == 1
    assert sum("使用说明" in t for t in texts) < 15


async def test_refusals_quoting_user_text_are_delivered_verbatim(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    librarian = await h.bound(5025, "L1")
    reply = await librarian.say("/reader <S9>&")
    assert reply["text"] == "找不到证号为 <S9>& 的读者。"


async def test_group_chats_are_ignored(harness: Harness) -> None:
    h = harness
    await setup_library(h)
    code = await h.code_for("S1")
    group = {"id": -100777, "type": "group", "title": "高一(1)班"}
    h.emu.inject_raw_update(
        {
            "message": {
                "message_id": 1,
                "date": 1_790_000_000,
                "chat": group,
                "from": {"id": 5026, "is_bot": False, "first_name": "李明"},
                "text": f"/bind {code}",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            }
        }
    )
    await h.emu.wait_idle(timeout=10)
    assert h.emu.bot_messages(-100777) == []
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count(Endpoint.id))) == 0
