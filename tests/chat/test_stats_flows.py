"""/stats, /stars and /suggestions in the chat: the real bot, real SQL, the charts as sent."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select, update

from services import circulation
from services.actor import Actor
from services.stats.figures import month_period
from services.stats.reports.charts import DPI, MIN_TEXT_PX, WIDTH_IN
from services.stats.stars import previous_month
from storage.models import PurchaseSuggestion, Reader, utcnow
from tests import factories
from tests.chat.harness import Harness, Person
from tests.factories import make_world
from tests.integration.test_reports import bar_pitch_on_phone

READERS = {
    "S1": ("李明", "student"),
    "S2": ("王芳", "student"),
    "S3": ("赵雷", "student"),
    "L1": ("周馆员", "librarian"),
}
RECORDS = {
    "r1": ("追风筝的人", ["B1"]),
    "r2": ("解忧杂货店", ["B2", "B3"]),
    "r3": ("三体", ["B4"]),
}


async def setup(h: Harness) -> None:
    await make_world(
        h.db,
        records=RECORDS,
        readers=READERS,
        monitors={"S2": "高一(1)班"},
        clc={"r1": "I712.45", "r3": "I247.5"},
    )
    async with h.db.transaction() as s:
        # S3 in another class: a monitor of 高一(1)班 may not look at it.
        await s.execute(update(Reader).where(Reader.card_no == "S3").values(class_name="高一(2)班"))
        await s.execute(update(Reader).where(Reader.class_name == "高一(1)班").values(grade="高一"))


async def lend(h: Harness, card: str, barcode: str, *, now: datetime | None = None) -> None:
    await factories.lend(h.db, card, barcode, now=now, policy=h.policy)


async def photos_after(person: Person, since: int, count: int) -> list[bytes]:
    """The pictures of the next ``count`` photos the bot sent after ``since``."""
    found: list[bytes] = []
    after: int | None = None  # the photo found last: the next one comes after it
    for _ in range(count):
        message = await person.emu.wait_for_bot_message(
            person.user_id, lambda m: "photo" in m, since=since, after_message_id=after
        )
        after = message["message_id"]
        found.append(person.emu.file(message["photo"][-1]["file_id"]).data)
    return found


async def test_stats_text_and_charts_for_librarian_and_monitor(harness: Harness) -> None:
    h = harness
    await setup(h)
    # Lent now: inside the current term whatever the date.
    await lend(h, "S1", "B1")
    await lend(h, "S1", "B2")
    await lend(h, "S3", "B4")
    librarian = await h.bound(7001, "L1")
    since = h.emu.mark()
    reply = await librarian.say("/stats")
    # School: 3 loans for 3 students, all of them by students; 2 of 3 students borrowed.
    assert "借阅统计 · 全校" in reply["text"]
    assert "生均借书：1.00" in reply["text"]
    assert "借书率：66.7%（2/3）" in reply["text"]
    assert "流通率：75.0%（3/4）" in reply["text"]
    charts = await photos_after(librarian, since, 3)
    for png in charts:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        # Drawn for a phone: 720 px wide, bars far enough apart to read at 360 px.
        assert image.size[0] == int(WIDTH_IN * DPI)
        assert bar_pitch_on_phone(png) >= MIN_TEXT_PX
    captions = [m.get("caption") for m in h.emu.bot_messages(7001) if "photo" in m]
    assert captions == ["按中图法大类的借阅量", "借阅排行榜", "各班借阅量"]

    since = h.emu.mark()
    reply = await librarian.say("/stats 高一（1）班")
    assert "借阅统计 · 高一(1)班" in reply["text"] and "生均借书：1.00" in reply["text"]
    # One class: no chart comparing classes.
    assert len(await photos_after(librarian, since, 2)) == 2
    unknown = (await librarian.say("/stats 九年级"))["text"]
    assert (
        "没有班级或年级「九年级」" in unknown and "高一(1)班、高一(2)班" in unknown
    )  # what exists

    monitor = await h.bound(7002, "S2")
    since = h.emu.mark()
    reply = await monitor.say("/stats")
    assert "借阅统计 · 高一(1)班" in reply["text"]
    await photos_after(monitor, since, 2)
    assert "只能查看本班" in (await monitor.say("/stats 高一(2)班"))["text"]
    student = await h.bound(7003, "S3")
    assert "只对图书管理员" in (await student.say("/stats"))["text"]
    assert "图书管理员" in (await student.say("/suggestions"))["text"]


async def test_suggestions_decided_and_readers_told(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await setup(h)
    librarian = await h.bound(7001, "L1")
    reader = await h.bound(7003, "S1")
    async with h.db.transaction() as s:
        for card in ("S1", "S2"):
            reader_id = await s.scalar(select(Reader.id).where(Reader.card_no == card))
            s.add(PurchaseSuggestion(reader_id=reader_id, query="小王子"))
        s.add(PurchaseSuggestion(telegram_user_id=99, query="夏洛的网"))
    listing = await librarian.say("/suggestions")
    assert "1. 「小王子」2 人荐购" in listing["text"]
    assert "2. 「夏洛的网」1 人荐购" in listing["text"]
    with caplog.at_level(logging.WARNING):
        answer = await librarian.press(listing, "已购 1")
    assert "已通知 2 位" in answer["text"]
    edited = await librarian.next_message()
    assert "小王子" not in edited["text"] and "夏洛的网" in edited["text"]
    told = await reader.emu.wait_for_bot_message(
        reader.user_id, contains="图书馆已经买了", timeout=15
    )
    assert "小王子" in told["text"]
    # Flagged as a writer: run once, not rolled back and rerun (which would answer twice).
    assert "without flags" not in caplog.text


async def test_stars_announced_to_winner_and_monitor(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await setup(h)
    today = utcnow()
    year, month = previous_month(today.year, today.month)
    start = month_period(year, month, h.app.settings.tz).start + timedelta(hours=1)
    # S1 kept two books two days each last month; S2 brought hers back within the hour.
    for n, (card, barcode, kept) in enumerate(
        [
            ("S1", "B1", timedelta(days=2)),
            ("S1", "B2", timedelta(days=2)),
            ("S2", "B4", timedelta(hours=1)),
        ]
    ):
        lent = start + timedelta(hours=n)
        await lend(h, card, barcode, now=lent)
        async with h.db.transaction() as s:
            await circulation.return_copy(
                s, actor=Actor.cli(), barcode=barcode, policy=h.policy, now=lent + kept
            )
    librarian = await h.bound(7001, "L1")
    winner = await h.bound(7003, "S1")
    monitor = await h.bound(7002, "S2")
    listing = await librarian.say("/stars")
    assert "高一(1)班：李明（2 本）" in listing["text"]
    with caplog.at_level(logging.WARNING):
        answer = await librarian.press(listing, "班级图书管理员")
    assert "已发出 3 条通知" in answer["text"]
    star = await winner.emu.wait_for_bot_message(winner.user_id, contains="读书之星", timeout=15)
    assert "读完了 2 本书" in star["text"]
    told = await monitor.emu.wait_for_bot_message(monitor.user_id, contains="读书之星", timeout=15)
    assert "李明" in told["text"]
    assert "without flags" not in caplog.text
