"""Pushes to every endpoint (issue 23), through the real bot and sender in process, on both
databases: a reader bound on Telegram and on the web gets each push once per channel, a second
sweep sends nothing again, and one endpoint that cannot be reached (a blocked bot, a web account
gone) does not hold up the other. In most tests the web chat's transport is stood in for by an
inbox keeping what the sender hands it; the last one runs the real web chat (bot/web/) signed in
over HTTP beside the emulated Telegram. Also: the channel
of the Bot carrying an update decides whose endpoint the sender of the update is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.channels import Push, Unreachable
from handlers.channels import mark_channel
from services.actor import Channel
from services.notifications import enqueue_many
from services.notifications.notice import NOTICE, NoticePayload
from services.notifications.reminders import ReminderRules, sweep_due_soon
from services.readers.binding import bind
from storage.models import Endpoint, Loan, Notification, OutboxStatus, Reader
from tests.chat.harness import Harness, Person
from tests.chat.test_web_channel import Browser
from tests.factories import lend, make_world

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)
READERS = {"S1": ("张三", "student"), "S2": ("李四", "student")}
RECORDS = {"r1": ("追风筝的人", ["B1"]), "r2": ("三体", ["B2"])}


class WebInbox:
    """The web chat's transport as the sender sees it: every push handed over, per address."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []
        self.gone: set[str] = set()

    async def deliver(self, push: Push) -> None:
        if push.address in self.gone:
            raise Unreachable("web account closed")
        self.pushes.append(push)

    def to(self, address: str) -> list[Push]:
        return [p for p in self.pushes if p.address == address]


def at(day: str, clock: str = "07:30") -> datetime:
    local = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=TZ)
    hh, mm = clock.split(":")
    return local.replace(hour=int(hh), minute=int(mm)).astimezone(UTC)


async def on_the_web(h: Harness, card: str, address: str) -> None:
    code = await h.code_for(card)
    async with h.db.transaction() as s:
        outcome = await bind(s, code=code, channel=Channel.WEB, address=address)
    assert outcome.reader is not None


async def school(h: Harness) -> tuple[Person, Person, WebInbox]:
    """S1 on Telegram (7001) and the web (web-S1); S2 on Telegram (7002) and the web (web-S2)."""
    await make_world(h.db, records=RECORDS, readers=READERS)
    s1, s2 = await h.bound(7001, "S1"), await h.bound(7002, "S2")
    await on_the_web(h, "S1", "web-S1")
    await on_the_web(h, "S2", "web-S2")
    inbox = WebInbox()
    h.app.sender.add_channel(Channel.WEB, inbox)
    return s1, s2, inbox


async def notice(h: Harness, name: str, *cards: str) -> None:
    async with h.db.transaction() as s:
        ids = await s.scalars(select(Reader.id).where(Reader.card_no.in_(cards)))
        items = [(r, NoticePayload(notice=name, reader_id=r, text=name)) for r in ids]
        await enqueue_many(s, NOTICE, items, now=h.clock())


async def rows(h: Harness, kind: str) -> list[tuple[str, str, str | None]]:
    async with h.db.transaction(read_only=True) as s:
        found = await s.execute(
            select(Notification.channel, Notification.status, Notification.last_error)
            .where(Notification.kind == kind)
            .order_by(Notification.channel, Notification.reader_id)
        )
        return [(c, status, error) for c, status, error in found]


async def test_each_push_once_per_channel_and_a_second_sweep_sends_nothing(
    harness: Harness,
) -> None:
    h = harness
    _, _, inbox = await school(h)
    await lend(h.db, "S1", "B1", now=T0)  # due 2027-03-31
    rules = ReminderRules(tz=TZ)
    h.clock.set(at("2027-03-28"))
    async with h.db.transaction() as s:
        assert await sweep_due_soon(s, rules, h.clock()) == 1  # one push, to two channels
    await h.settle()
    h.clock.set(at("2027-03-28", "15:00"))
    async with h.db.transaction() as s:
        assert await sweep_due_soon(s, rules, h.clock()) == 0
    await h.settle()
    assert h.app.sender.stats.sent == 2
    assert h.emu.sent_counts().get(7001) == 1 and h.emu.sent_counts().get(7002) is None
    (web,) = inbox.pushes
    assert web.address == "web-S1" and web.kind == "due_soon" and "追风筝的人" in web.text
    # Rendered at send time for each channel from the same data: the same buttons.
    (telegram,) = h.emu.bot_messages(7001)
    assert "追风筝的人" in telegram["text"]
    assert (
        web.keyboard is not None
        and web.keyboard.model_dump(exclude_none=True)["inline_keyboard"]
        == telegram["reply_markup"]["inline_keyboard"]
    )
    assert await rows(h, "due_soon") == [("telegram", "sent", None), ("web", "sent", None)]


async def test_an_unreachable_endpoint_does_not_hold_up_the_other(harness: Harness) -> None:
    h = harness
    _, _, inbox = await school(h)
    h.emu.block(7001)  # S1 blocked the bot on Telegram
    inbox.gone.add("web-S2")  # S2's web account is gone
    await notice(h, "n1", "S1", "S2")
    await h.settle()
    assert [p.address for p in inbox.pushes] == ["web-S1"]
    assert h.emu.sent_counts().get(7002) == 1 and h.emu.sent_counts().get(7001) is None
    channels = await rows(h, "notice")
    assert ("web", "sent", None) in channels and ("telegram", "sent", None) in channels
    failed = sorted(c for c, status, _ in channels if status == OutboxStatus.FAILED)
    assert failed == ["telegram", "web"]
    async with h.db.transaction(read_only=True) as s:
        marked = set(
            (
                await s.execute(
                    select(Endpoint.channel, Endpoint.address).where(
                        Endpoint.unreachable_at.is_not(None)
                    )
                )
            ).tuples()
        )
    assert marked == {("telegram", "7001"), ("web", "web-S2")}
    # From now on each reader's push goes only where it can arrive: one row each, both sent.
    await notice(h, "n2", "S1", "S2")
    await h.settle()
    async with h.db.transaction(read_only=True) as s:
        n2 = (
            (
                await s.execute(
                    select(Notification.channel, Notification.status)
                    .where(Notification.dedupe_key.like("notice:n2:%"))
                    .order_by(Notification.channel)
                )
            )
            .tuples()
            .all()
        )
    assert n2 == [("telegram", "sent"), ("web", "sent")]
    assert [p.address for p in inbox.pushes] == ["web-S1", "web-S1"]
    assert h.emu.sent_counts().get(7002) == 2


async def test_the_bot_an_update_came_through_names_its_channel(harness: Harness) -> None:
    h = harness
    await make_world(h.db, records=RECORDS, readers=READERS)
    await on_the_web(h, "S1", "7005")  # a web account whose id reads like a Telegram user's
    visitor = Person(h.emu, 7005, "visitor")
    assert "你好！我是" in (await visitor.say("/start"))["text"]  # on Telegram: a stranger
    mark_channel(h.app.bot, Channel.WEB)
    assert "你好，张三" in (await visitor.say("/start"))["text"]


@pytest.mark.settings(web_listen="127.0.0.1:0")
async def test_telegram_and_the_real_web_chat_each_get_a_reminder_once(harness: Harness) -> None:
    """The same, with the school's web chat itself (bot/web) beside the emulated Telegram: S1
    signs in on the web with a code and is bound on Telegram; the due-soon reminder arrives once
    in each; once Telegram says S1 blocked the bot, the next reminder still reaches the page."""
    h = harness
    await make_world(h.db, records=RECORDS, readers=READERS)
    telegram = await h.bound(7001, "S1")
    web = h.app.web
    assert web is not None
    server = TestServer(web.server(h.app.dp, poll_seconds=0).app())
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    try:
        page = Browser(client, f"http://{server.host}:{server.port}")
        assert await page.sign_in(await h.code_for("S1")) == 200
        await page.changes()
        await lend(h.db, "S1", "B1", policy=h.app.settings.loan_policy())
        async with h.db.transaction(read_only=True) as s:
            due = await s.scalar(select(Loan.due_at))
        assert due is not None

        async def reminder(before: timedelta, words: str) -> list[dict[str, Any]]:
            h.clock.set(due - before)
            assert await h.app.jobs.run_once("due-soon", h.app.job_context) == 1
            await h.settle()
            await h.settle()  # delivered already: nothing goes out twice
            return [m for m in await page.changes() if words in m["html"]]

        shown = await reminder(timedelta(days=3, hours=1), "还有 3 天到期")
        assert len(shown) == 1 and "追风筝的人" in shown[0]["html"]
        on_telegram = [m for m in h.emu.bot_messages(7001) if "还有 3 天到期" in m["text"]]
        assert len(on_telegram) == 1

        h.emu.block(telegram.user_id)
        assert len(await reminder(timedelta(days=1, hours=1), "还有 1 天到期")) == 1
        assert not [m for m in h.emu.bot_messages(7001) if "还有 1 天到期" in m["text"]]
        async with h.db.transaction(read_only=True) as s:
            marked = (
                await s.execute(
                    select(Endpoint.channel).where(Endpoint.unreachable_at.is_not(None))
                )
            ).scalars()
            assert list(marked) == ["telegram"]
    finally:
        await client.close()
