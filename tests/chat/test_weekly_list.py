"""The weekly new-book list in the chat: the weekly job (injected clock) queues it, the sender
delivers it, the student reserves from it and unsubscribes, and the next week's run leaves them
out. Also 猜你喜欢, 同学在读, /subscribe and /lists through the real bot."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import jobs
from services import circulation
from services.actor import Actor
from services.reading_lists import add_to_list, create_list
from storage.models import (
    Copy,
    CopyStatus,
    Hold,
    HoldStatus,
    Notification,
    OutboxStatus,
    Reader,
    Record,
    Subscription,
    utcnow,
)
from tests.chat.harness import Harness, buttons

WEEKLY = "本周新书推荐"
TZ = ZoneInfo("Asia/Shanghai")


async def library(h: Harness, catalogued: datetime) -> None:
    """Two students of 高一(3)班; 三体 was borrowed and returned by S1 long ago."""
    old = catalogued - timedelta(days=300)
    async with h.db.transaction() as s:
        books = [
            ("sf1", "三体", "刘慈欣", "I247.55", "科幻", CopyStatus.ON_SHELF, old),
            ("sf2", "球状闪电", "刘慈欣", "I247.55", "科幻", CopyStatus.ON_SHELF, old),
            ("cl1", "红楼梦", "曹雪芹", "I242.47", "名著", CopyStatus.ON_SHELF, old),
            ("new1", "流浪地球", "刘慈欣", "I247.55", "科幻", CopyStatus.IN_TRANSIT, catalogued),
            ("new2", "西游记", "吴承恩", "I242.4", "名著", CopyStatus.IN_TRANSIT, catalogued),
        ]
        for record_id, title, authors, clc, tags, status, at in books:
            rec = Record(
                record_id=record_id,
                title=title,
                authors=authors,
                clc=clc,
                tags=tags,
                catalogued_at=at,
            )
            s.add(rec)
            await s.flush()
            # The copy arrives with its title (a new book is one whose copies came in the window).
            s.add(
                Copy(barcode=f"{record_id}-0", record_pk=rec.id, status=status.value, created_at=at)
            )
        for card, name in (("S1", "李明"), ("S2", "王芳")):
            s.add(
                Reader(
                    card_no=card, name=name, role="student", grade="高一", class_name="高一(3)班"
                )
            )
    async with h.db.transaction() as s:
        await circulation.checkout(
            s, actor=Actor.cli(), card_no="S1", barcode="sf1-0", policy=h.policy, now=old
        )
    async with h.db.transaction() as s:
        await circulation.return_copy(
            s, actor=Actor.cli(), barcode="sf1-0", policy=h.policy, now=old + timedelta(days=9)
        )


async def test_weekly_list_reserve_and_unsubscribe(harness: Harness) -> None:
    h = harness
    # The injected clock: "this week" is a week ago, "next week" is now (both already due).
    this_week = utcnow() - timedelta(days=7)
    await library(h, catalogued=this_week - timedelta(days=1))
    s1 = await h.bound(8101, "S1", "李明")
    await h.bound(8102, "S2", "王芳")

    mark = h.emu.mark()
    assert await jobs.weekly_new_books(h.db, days=7, now=this_week) == 2
    weekly = await h.emu.wait_for_bot_message(8101, since=mark, contains=WEEKLY, timeout=15)
    text = weekly["text"]
    assert text.index("流浪地球") < text.index("西游记")
    assert "因为你借过《三体》" in text
    labels = buttons(weekly)
    assert {"预约 1", "详情 1", "预约 2", "退订", "少一点"} <= set(labels)
    # The slot running again that week queues nothing: one list per reader per week.
    assert await jobs.weekly_new_books(h.db, days=7, now=this_week) == 0

    # 预约 from the list: the hold starts the queue before the book is shelved.
    await s1.press(weekly, "预约 1")
    placed = await s1.next_message(contains="流浪地球")
    assert "预约" in placed["text"]
    async with h.db.transaction(read_only=True) as s:
        hold = await s.scalar(
            select(Hold).join(Record, Record.id == Hold.record_pk).where(Record.record_id == "new1")
        )
    assert hold is not None and hold.status == HoldStatus.WAITING

    # 详情 shows the book card.
    await s1.press(weekly, "详情 2")
    card = await s1.next_message(contains="西游记")
    assert "吴承恩" in card["text"]

    # 退订: next week S1 gets nothing, S2 still does.
    await s1.press(weekly, "退订")
    assert "已退订" in (await s1.next_message(contains="退订"))["text"]
    next_week = utcnow()
    async with h.db.transaction() as s:
        rec = Record(
            record_id="new3",
            title="三体II 黑暗森林",
            authors="刘慈欣",
            clc="I247.55",
            catalogued_at=next_week - timedelta(days=1),
        )
        s.add(rec)
        await s.flush()
        s.add(Copy(barcode="new3-0", record_pk=rec.id, status=CopyStatus.IN_TRANSIT.value))
    mark = h.emu.mark()
    assert await jobs.weekly_new_books(h.db, days=3, now=next_week) == 1
    await h.emu.wait_for_bot_message(8102, since=mark, contains="黑暗森林", timeout=15)
    async with h.db.transaction(read_only=True) as s:
        s1_id = await s.scalar(select(Reader.id).where(Reader.card_no == "S1"))
        weeks = list(
            await s.scalars(select(Notification.dedupe_key).where(Notification.reader_id == s1_id))
        )
    assert len(weeks) == 1  # only this week's list; nothing after 退订
    assert not any(WEEKLY in m.get("text", "") for m in h.emu.bot_messages(8101)[-3:])

    # /subscribe (no topic) restarts the list.
    reply = await s1.say("/subscribe")
    assert "已重新订阅" in reply["text"]


async def test_recommend_classmates_subscribe_and_lists(harness: Harness) -> None:
    h = harness
    await library(h, catalogued=utcnow() - timedelta(days=1))
    s1 = await h.bound(8201, "S1", "李明")
    await h.bound(8202, "S2", "王芳")
    async with h.db.transaction() as s:
        await circulation.checkout(
            s, actor=Actor.cli(), card_no="S2", barcode="cl1-0", policy=h.policy
        )

    reply = await s1.say("/recommend")
    assert "猜你喜欢" in reply["text"]
    assert "球状闪电" in reply["text"] and "因为你借过《三体》" in reply["text"]
    assert ". 《三体》" not in reply["text"]  # borrowed before: never recommended
    assert "流浪地球" not in reply["text"]  # not on the shelf yet

    await s1.press(reply, "同学在读")
    peers = await s1.next_message(contains="同学在读")
    assert "红楼梦" in peers["text"] and "高一(3)班 1 位同学在读" in peers["text"]

    reply = await s1.say("/subscribe 科幻")
    assert "已关注「科幻」" in reply["text"]
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(Subscription.topic)) == "科幻"

    async with h.db.transaction() as s:
        await create_list(s, Actor.cli(), "我爱名著")
        await add_to_list(s, Actor.cli(), "我爱名著", "cl1-0", blurb="四大名著之首")
    reply = await s1.say("/lists")
    assert "我爱名著（1 本）" in reply["text"]
    await s1.press(reply, "1")
    shown = await s1.next_message(contains="四大名著之首")
    assert "红楼梦" in shown["text"]


@pytest.mark.settings(quiet_hours="21:30-07:00")
async def test_weekly_slot_waits_out_quiet_hours_with_a_row_per_button(harness: Harness) -> None:
    """The registry's weekly slot queues the lists; the sender keeps them through the night."""
    h = harness
    night = datetime(2027, 3, 5, 22, 0, tzinfo=TZ).astimezone(UTC)  # a Friday, after 21:30
    h.clock.set(night)
    await library(h, catalogued=night - timedelta(days=1))
    await h.bound(8301, "S1", "李明")
    await h.bound(8302, "S2", "王芳")
    mark = h.emu.mark()
    assert await h.app.jobs.run_once("weekly", h.app.job_context) == 2
    assert await h.app.sender.drain() == 0
    async with h.db.transaction(read_only=True) as s:
        waiting = Counter(await s.scalars(select(Notification.status)))
    assert waiting == Counter({OutboxStatus.PENDING: 2})

    h.clock.set(datetime(2027, 3, 6, 7, 0, tzinfo=TZ).astimezone(UTC))
    h.app.sender.poke()
    weekly = await h.emu.wait_for_bot_message(8301, since=mark, contains=WEEKLY, timeout=15)
    rows = [[b["text"] for b in row] for row in weekly["reply_markup"]["inline_keyboard"]]
    assert rows == [["预约 1", "预约 2"], ["详情 1", "详情 2"], ["退订", "少一点"]]
