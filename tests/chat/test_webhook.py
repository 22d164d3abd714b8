"""Webhook mode over real HTTP (aiohttp's test server on loopback) in front of the chat tier's
bot: the secret header, 2xx only once the update is handled and committed, a transient failure
answered 503 and handled once when Telegram sends it again, repeats changing nothing twice, and
one user's updates never handled two at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.webhook import SECRET_HEADER, WebhookServer, share_between_workers
from handlers.middlewares import Handler
from storage.models import Endpoint, ProcessedUpdate
from tests.chat.harness import Harness
from tests.chat.test_bot_flows import setup_library

SECRET = "test-secret_42"
PATH = "/telegram"
JSON = dict[str, Any]


@pytest.fixture
async def hook(harness: Harness) -> AsyncIterator[TestClient[Any, Any]]:
    share_between_workers(harness.app)
    server = WebhookServer(harness.app, secret=SECRET, path=PATH)
    async with TestClient(TestServer(server.web)) as client:
        yield client


def queued(harness: Harness, user_id: int, text: str) -> JSON:
    """An update as Telegram would post it (queued in the emulator, then taken from it)."""
    harness.emu.add_user(user_id, first_name=f"u{user_id}")
    harness.emu.send_text(user_id, text)
    raw = harness.emu.next_update()
    assert raw is not None
    return raw


async def post(client: TestClient[Any, Any], update: JSON, secret: str | None = SECRET) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with client.post(PATH, json=update, headers=headers) as response:
        return response.status


async def bindings(h: Harness) -> int:
    async with h.db.transaction(read_only=True) as s:
        return int(await s.scalar(select(func.count()).select_from(Endpoint)) or 0)


async def test_refuses_requests_without_the_secret_header(
    harness: Harness, hook: TestClient[Any, Any]
) -> None:
    h = harness
    await setup_library(h)
    code = await h.code_for("S1")
    update = queued(h, 6001, f"/start {code}")
    assert await post(hook, update, secret=None) == 403
    assert await post(hook, update, secret="wrong") == 403
    assert await post(hook, update, secret=SECRET + "x") == 403
    # Nothing was read: no reply, no binding, no processed-update record.
    assert h.emu.bot_messages(6001) == []
    assert await bindings(h) == 0
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 0
    assert await post(hook, update) == 200
    assert await bindings(h) == 1
    assert "绑定成功" in h.emu.bot_messages(6001)[-1]["text"]


class FailFirst(BaseMiddleware):
    """The database drops the connection under the first update (before anything commits)."""

    def __init__(self) -> None:
        self.failed = 0

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not self.failed:
            self.failed += 1
            raise OperationalError("SELECT 1", {}, ConnectionResetError("server closed"))
        return await handler(event, data)


async def test_a_transient_failure_is_answered_503_and_the_retry_handled_once(
    harness: Harness, hook: TestClient[Any, Any]
) -> None:
    h = harness
    await setup_library(h)
    failing = FailFirst()
    h.app.dp.message.outer_middleware(failing)
    code = await h.code_for("S1")
    update = queued(h, 6002, f"/start {code}")
    # Not handled: not 2xx, so Telegram sends it again; no apology for what will be retried.
    assert await post(hook, update) == 503
    assert failing.failed == 1
    assert h.emu.bot_messages(6002) == [] and await bindings(h) == 0
    # Telegram's retry, then a retry of a handled update whose 200 was lost (a killed worker
    # after the commit): bound once, told once.
    assert await post(hook, update) == 200
    assert await post(hook, update) == 200
    assert await bindings(h) == 1
    assert [m["text"] for m in h.emu.bot_messages(6002) if "绑定成功" in m["text"]] != []
    assert len(h.emu.bot_messages(6002)) == 1


async def answered_once(h: Harness, hook: TestClient[Any, Any]) -> None:
    await setup_library(h)
    update = queued(h, 6003, "三体")
    assert await post(hook, update) == 200
    assert await post(hook, update) == 200
    assert len(h.emu.bot_messages(6003)) == 1
    assert "三体" in h.emu.bot_messages(6003)[0]["text"]


async def test_a_read_posted_again_is_not_answered_again(
    harness: Harness, hook: TestClient[Any, Any]
) -> None:
    """A search changes nothing, so the database keeps no record of it: the answered mark (the
    worker's memory here) keeps a repeat from replying twice."""
    await answered_once(harness, hook)


@pytest.mark.redis
async def test_a_read_posted_again_to_another_worker_is_not_answered_again(
    harness: Harness, hook: TestClient[Any, Any]
) -> None:
    """The same with the mark in Redis, shared by workers."""
    await answered_once(harness, hook)


@pytest.mark.redis
async def test_one_users_updates_are_handled_one_at_a_time_and_each_once(
    harness: Harness, hook: TestClient[Any, Any]
) -> None:
    """Two workers' worth of requests at once (Redis holds the per-user lock): a user's updates
    never overlap, every update is handled once however often it is posted."""
    h = harness
    await setup_library(h)
    users = [6100, 6101, 6102]
    for user, card in zip(users, ("S1", "S2", "S3"), strict=True):
        await h.bound(user, card)
    overlap: list[int] = []
    running: set[int] = set()

    class Watch(BaseMiddleware):
        async def __call__(
            self,
            handler: Handler,
            event: TelegramObject,
            data: dict[str, Any],
        ) -> Any:
            user = data["event_from_user"].id
            if user in running:
                overlap.append(user)
            running.add(user)
            try:
                await asyncio.sleep(0)  # let another request of the same user try to enter
                return await handler(event, data)
            finally:
                running.discard(user)

    h.app.dp.message.outer_middleware(Watch())
    words = ("/subscribe", "/unsubscribe", "/subscribe")
    updates = [queued(h, user, word) for word in words for user in users]
    # Every update posted twice, all at once (a retry racing the first attempt).
    statuses = await asyncio.gather(*(post(hook, u) for u in updates + updates))
    assert set(statuses) == {200}
    assert overlap == []
    async with h.db.transaction(read_only=True) as s:
        handled = await s.scalar(select(func.count()).select_from(ProcessedUpdate))
    # Each a writer: each update id recorded once, never twice.
    assert handled == len(updates)
