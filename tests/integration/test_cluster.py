"""Several workers on one PostgreSQL and one Redis: exactly one scheduler and its takeover, the
shared send rate and throttling window across instances (on an injected clock), and what
`shuxiang health` reports."""

from __future__ import annotations

import asyncio
import contextlib
from itertools import pairwise
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from bot.config import load_settings
from bot.health import check_health
from bot.leader import Leader, scheduler_holder
from bot.shared_rate import SharedRate
from handlers.throttle import ALLOWED, REFUSED, REFUSED_FIRST, RedisWindow
from storage.db import Database
from tests.conftest import RedisSpace


class FakeScheduler:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def resume(self) -> None:
        self.calls.append("resume")

    def pause(self) -> None:
        self.calls.append("pause")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_exactly_one_scheduler_and_a_takeover_when_its_holder_dies(
    db: Database, db_url: str
) -> None:
    other_db = Database(db_url)  # another worker: its own engine and connections
    first, second = Leader(db, identity="w1:101"), Leader(other_db, identity="w2:202")
    try:
        assert [await first.step(), await second.step()] == [True, False]
        assert [await first.step(), await second.step()] == [True, False]
        assert await scheduler_holder(db) == "w1:101"
        # The holder dies (its connection ends, as a SIGKILL ends it): the next look of the
        # other worker takes over, and the dead holder's process, were it alive, would see it
        # lost the lock and not take it back.
        async with other_db.transaction() as s:
            killed = await s.scalar(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'shuxiang-scheduler:w1:101'"
                )
            )
        assert killed
        # pg_terminate_backend only signals: the lock is free once that backend has exited.
        gone = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"
        for _ in range(200):
            async with other_db.transaction(read_only=True) as s:
                if not await s.scalar(text(gone), {"n": "shuxiang-scheduler:w1:101"}):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the terminated holder's backend is still there after 10 s")
        assert await second.step() is True
        assert await first.step() is False
        assert await scheduler_holder(db) == "w2:202"
        await second.release()
        assert await scheduler_holder(db) is None
        assert await first.step() is True
    finally:
        await first.release()
        await second.release()
        await other_db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_scheduler_runs_only_while_its_worker_holds_the_lock(
    db: Database, db_url: str
) -> None:
    other_db = Database(db_url)
    first, second = Leader(db, identity="w1:1"), Leader(other_db, identity="w2:2")
    one, two = FakeScheduler(), FakeScheduler()
    ticks = 0

    async def tick(_: float) -> None:  # the injected wait: three looks, then stop
        nonlocal ticks
        ticks += 1
        if ticks == 3:
            first.stop()

    try:
        await first.run(one, wait=tick)
        assert one.calls == ["resume", "pause"]  # held throughout, paused when stopping
        assert await scheduler_holder(db) is None  # released on the way out
        # Another worker holds it: this one's scheduler stays paused until the holder is gone.
        assert await first.step()
        looks = 0

        async def look(_: float) -> None:
            nonlocal looks
            looks += 1
            if looks == 2:
                assert two.calls == []
                await first.release()
            if looks == 3:
                second.stop()

        await second.run(two, wait=look)
        assert two.calls == ["resume", "pause"]
    finally:
        await other_db.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_one_scheduler_on_sqlite_too(db: Database, db_url: str) -> None:
    other_db = Database(db_url)
    first, second = Leader(db, identity="a:1"), Leader(other_db, identity="b:2")
    try:
        assert [await first.step(), await second.step()] == [True, False]
        assert await scheduler_holder(db) == "a:1"
        await first.release()
        assert await second.step() is True
        assert await scheduler_holder(db) == "b:2"
    finally:
        await second.release()
        await other_db.dispose()


async def test_the_shared_send_rate_holds_across_two_limiters(redis: RedisSpace) -> None:
    client: Redis = Redis.from_url(redis.url)
    try:
        key = f"{redis.prefix}:send-rate"
        a, b = SharedRate(client, key, rate=25.0), SharedRate(client, key, rate=25.0)
        now = 1_000.0
        slots: list[float] = []
        # Two workers asking in turns, 200 sends, the clock moving unevenly.
        for i in range(200):
            limiter = a if i % 3 else b
            slots.append(now + await limiter.reserve(now=now))
            now += (0.001, 0.05, 0.0)[i % 3]
        gaps = [later - earlier for earlier, later in pairwise(slots)]
        assert min(gaps) >= 1 / 25 - 1e-6
        # In any one second, never more than the rate (the slot at the edge included).
        for start in slots:
            assert sum(start <= s < start + 1 - 1e-6 for s in slots) <= 25
    finally:
        await client.aclose()


async def test_throttling_is_counted_once_across_two_workers(redis: RedisSpace) -> None:
    client: Redis = Redis.from_url(redis.url)
    try:
        one = RedisWindow(client, prefix=redis.prefix, limit=3, window_s=5.0)
        two = RedisWindow(client, prefix=redis.prefix, limit=3, window_s=5.0)
        t = 500.0
        verdicts = [await (one if i % 2 else two).check(42, now=t + i * 0.1) for i in range(6)]
        assert verdicts == [ALLOWED] * 3 + [REFUSED_FIRST, REFUSED, REFUSED]
        assert await one.check(43, now=t) == ALLOWED  # another user has a window of their own
        # The window slides: once the first three are older than 5 s, the user is let in again.
        assert await two.check(42, now=t + 5.25) == ALLOWED
    finally:
        await client.aclose()


async def test_throttling_falls_back_to_the_workers_own_window_without_redis() -> None:
    client: Redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        assert await RedisWindow(client, prefix="x").check(1) is None
    finally:
        await client.aclose()


async def test_health_says_what_is_down_without_secrets(redis: RedisSpace) -> None:
    password = "s3cret-pw"
    settings = load_settings(
        _env_file=None,
        database_url=f"postgresql://shuxiang:{password}@127.0.0.1:1/library",
        redis_url=redis.url,
        bot_token="123:abc",
    )
    db = Database(settings.checked_database_url())
    try:
        report = await check_health(settings, db=db, bot=None)
    finally:
        await db.dispose()
    checks: dict[str, Any] = report.as_json()["checks"]
    assert not report.ok
    assert checks["database"]["ok"] is False
    assert "无法连接数据库服务器 127.0.0.1:1" in checks["database"]["text"]
    assert checks["redis"]["ok"] is True
    assert "outbox" not in checks  # nothing to say about the outbox without the database
    assert password not in str(report.as_json()) and "123:abc" not in str(report.as_json())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_health_names_the_scheduler_holder_and_the_backlog(db: Database, db_url: str) -> None:
    settings = load_settings(_env_file=None, database_url=db_url, bot_token="123:abc")
    leader = Leader(db, identity="web-2:4242")
    try:
        report = await check_health(settings, db=db, bot=None)
        checks: dict[str, Any] = report.as_json()["checks"]
        assert checks["scheduler"]["ok"] is False and "没有进程" in checks["scheduler"]["text"]
        assert checks["outbox"]["value"] == 0
        await leader.step()
        report = await check_health(settings, db=db, bot=None)
        checks = report.as_json()["checks"]
        assert checks["scheduler"]["value"] == "web-2:4242"
        assert "web-2:4242" in checks["scheduler"]["text"]
    finally:
        await leader.release()


def test_the_health_command_says_what_is_down_in_chinese_without_secrets() -> None:
    from tests.factories import cli

    password, token = "s3cret-pw", "123456:HEALTH-secret-token"
    code, out = cli(
        ["health"],
        {
            "SHUXIANG_DATABASE_URL": f"postgresql://shuxiang:{password}@127.0.0.1:1/library",
            "SHUXIANG_BOT_TOKEN": token,
            "SHUXIANG_BOT_API_URL": "http://127.0.0.1:1",
            "SHUXIANG_REDIS_URL": "",
            "SHUXIANG_PROXY": "",
        },
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("✗ 数据库不可用：无法连接数据库服务器 127.0.0.1:1")
    assert lines[1].startswith("✓ 未配置 Redis")
    assert lines[2].startswith("✗ 无法连接 Bot API 服务器 http://127.0.0.1:1")
    assert lines[-1] == "有部件不可用，见上"
    assert password not in out and token not in out and "Traceback" not in out


def test_webhook_mode_needs_its_public_url() -> None:
    from tests.factories import cli

    code, out = cli(
        ["run", "--webhook"],
        {"SHUXIANG_BOT_TOKEN": "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0", "SHUXIANG_PROXY": ""},
    )
    assert code == 2 and "webhook 方式需要公开地址" in out


def test_deadlocks_and_dropped_connections_are_left_for_telegram_to_retry() -> None:
    from sqlalchemy.exc import DBAPIError

    from bot.webhook import is_transient

    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    def wrapped(sqlstate: str) -> DBAPIError:
        return DBAPIError("INSERT …", {}, PgError(sqlstate))

    assert is_transient(wrapped("40P01")) and is_transient(wrapped("40001"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(wrapped("23505"))  # a broken rule is a bug, not bad luck
    assert not is_transient(ValueError("bug"))


async def test_a_users_lock_is_let_go_even_when_a_renewal_loses_its_cancel(
    redis: RedisSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal's Redis call that swallows the cancel (as asyncio.wait_for can before Python
    3.12, seen under load): the update still leaves its lock at once, not after the renewer's
    minute."""
    from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
    from redis.asyncio.lock import Lock

    from bot import webhook

    real = Lock.reacquire
    renewing = asyncio.Event()

    async def swallowing(self: Lock) -> bool:
        renewing.set()
        with contextlib.suppress(asyncio.CancelledError):  # lost, as in the race
            await asyncio.sleep(0.05)
        return bool(await real(self))

    monkeypatch.setattr(Lock, "reacquire", swallowing)
    monkeypatch.setattr(webhook, "USER_LOCK_S", 0.3)  # a renewal every 0.1 s
    client = Redis.from_url(redis.url)
    isolation = webhook.KeptRedisEventIsolation(
        client, key_builder=DefaultKeyBuilder(prefix=redis.prefix), lock_kwargs={"timeout": 0.3}
    )
    key = StorageKey(bot_id=1, chat_id=7, user_id=7)
    try:
        # A hang here (the renewer's whole minute before the fix) fails rather than passes.
        async with asyncio.timeout(30):
            async with isolation.lock(key):
                assert await client.exists(isolation.key_builder.build(key, "lock"))
                await renewing.wait()  # the update ends while a renewal is under way
        assert not [
            t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_renew"
        ]
        assert not await client.exists(isolation.key_builder.build(key, "lock"))
    finally:
        await client.aclose()
