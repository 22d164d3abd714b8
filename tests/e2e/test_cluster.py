"""Several workers over HTTP: senders draining one outbox together never send a row twice
(PostgreSQL's SKIP LOCKED), and the emulator delivers to a webhook as Telegram does — several
updates in flight, one user's in order, non-2xx retried — which the cluster benchmark relies on."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.emulator import BotApiEmulator
from services.notifications import claim
from storage.db import Database
from tests.e2e.conftest import TOKEN, Clock
from tests.e2e.test_pushes import make_sender, queue_overdue


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(TOKEN, webhook_retries=20, webhook_backoff=0.001) as emulator:
        yield emulator


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_senders_draining_together_never_send_a_row_twice(
    db: Database, emu: BotApiEmulator
) -> None:
    clock = Clock()
    chats = await queue_overdue(db, emu, 40, clock())
    # Two claims at once skip each other's rows instead of waiting for them or taking them.
    async with db.transaction() as first:
        mine = await claim(first, now=clock(), limit=5)
        async with db.transaction() as second:
            theirs = await claim(second, now=clock(), limit=5)
            await second.rollback()
        await first.rollback()
    assert len(mine) == len(theirs) == 5
    assert not {n.notification_id for n in mine} & {n.notification_id for n in theirs}
    senders = [make_sender(db, emu, clock) for _ in range(2)]
    for sender in senders:  # no pacing: this is about who sends what, not how fast
        sender.settings = sender.settings.model_copy(update={"chat_gap_seconds": 1e-6})
    try:
        await asyncio.gather(*(s.drain() for s in senders))
    finally:
        for sender in senders:
            await sender.bot.session.close()
    assert emu.sent_counts() == dict.fromkeys(chats, 1)
    assert sum(s.stats.sent for s in senders) == 40


async def test_webhook_delivery_keeps_each_users_order_and_retries_until_2xx(
    emu: BotApiEmulator,
) -> None:
    handled: dict[int, list[str]] = defaultdict(list)
    attempts: Counter[int] = Counter()
    in_flight: set[int] = set()
    overlapping: list[int] = []
    most_at_once = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal most_at_once
        assert request.headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret"
        update: dict[str, Any] = await request.json()
        user = update["message"]["from"]["id"]
        if user in in_flight:
            overlapping.append(user)
        in_flight.add(user)
        most_at_once = max(most_at_once, len(in_flight))
        try:
            await asyncio.sleep(0.002 * (user % 3))
            attempts[update["update_id"]] += 1
            if update["update_id"] % 4 == 0 and attempts[update["update_id"]] < 3:
                return web.Response(status=502)  # a worker killed mid-update, twice
            handled[user].append(update["message"]["text"])
            return web.Response(status=200)
        finally:
            in_flight.discard(user)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app) as server:
        users = list(range(7000, 7008))
        for user in users:
            emu.add_user(user)
        sent = {user: [f"{user}-{n}" for n in range(6)] for user in users}
        for n in range(6):
            for user in users:
                emu.send_text(user, sent[user][n])
        bot = Bot(TOKEN, session=emu.aiogram_session())
        try:
            await bot.set_webhook(str(server.make_url("/hook")), secret_token="s3cret")
            await emu.wait_idle(timeout=30)
        finally:
            await bot.session.close()
    assert dict(handled) == sent  # every update once, each user's in the order sent
    assert overlapping == [] and most_at_once > 1
    assert emu.webhook_errors == []
