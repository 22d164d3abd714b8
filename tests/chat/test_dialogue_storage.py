"""Dialogue state across a restart: with SHUXIANG_REDIS_URL a half-done 借出 survives a new bot
process on the same database and Redis; in memory (the default) the new process forgets it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from bot.app import DIALOGUE_TTL
from tests.chat.harness import Harness
from tests.chat.test_desk_flows import open_loans, setup_desk
from tests.conftest import RedisSpace


async def _lend_begun(h: Harness) -> None:
    """The librarian scans 《三体》 and presses 借出: the desk now waits for a reader's card."""
    await setup_desk(h)
    librarian = await h.bound(6101, "L1")
    shown = await librarian.say("B4")
    await librarian.press(shown, "借出")
    asked = await librarian.next_message()
    assert "借给哪位读者" in asked["text"]


@pytest.mark.redis
async def test_lending_carries_on_after_a_restart_with_redis(
    harness: Harness, redis: RedisSpace
) -> None:
    h = harness
    await _lend_begun(h)
    # In Redis under the bot's prefix, and it expires: a forgotten draft does not stay forever.
    client = Redis.from_url(redis.url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{redis.prefix}:*")]
        assert keys
        for key in keys:
            assert timedelta(0) < timedelta(seconds=await client.ttl(key)) <= DIALOGUE_TTL
    finally:
        await client.aclose()
    await h.restart()
    lent = await h.bound(6101, "L1")  # the same chat, talking to the new process
    done = await lent.say("S1")
    assert "已借出《三体》" in done["text"] and "S1" in done["text"]
    assert await open_loans(h, "S1") == ["B4"]


async def test_lending_is_forgotten_after_a_restart_in_memory(harness: Harness) -> None:
    h = harness
    await _lend_begun(h)
    await h.restart()
    librarian = await h.bound(6101, "L1")
    shown = await librarian.say("S1")  # just a card scanned: the reader's page, nothing lent
    assert "李明" in shown["text"] and "已借出" not in shown["text"]
    assert await open_loans(h, "S1") == []
