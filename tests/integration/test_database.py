"""Database plumbing: the pool's liveness check on PostgreSQL (pinged after idling only, a cut
connection replaced), no connection opened beyond the pool, and bulk loads inside the unit of
work."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, text

from storage import db as db_module
from storage.bulk import insert_rows
from storage.db import Database
from storage.search_tables import SearchTerm

PG_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
TERMS = cast(Table, SearchTerm.__table__)


async def _backend_pid(db: Database) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


@pytest.fixture
def pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the liveness checks the pool makes (the dialect's own ping, as pool_pre_ping's)."""
    calls: list[int] = []
    for engine in db.engines:  # the readers' engine has a dialect of its own
        dialect = engine.sync_engine.dialect
        real = dialect.do_ping

        def counting(dbapi_connection: Any, real: Any = real) -> bool:
            calls.append(1)
            return bool(real(dbapi_connection))

        monkeypatch.setattr(dialect, "do_ping", counting)
    return calls


@PG_ONLY
async def test_a_connection_back_from_use_a_moment_ago_is_not_pinged(
    db: Database, pings: list[int]
) -> None:
    first = await _backend_pid(db)
    for _ in range(5):
        assert await _backend_pid(db) == first  # the same pooled connection, reused
    assert pings == []


@PG_ONLY
async def test_an_idle_connection_cut_by_the_server_is_replaced_unseen(
    db: Database, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = await _backend_pid(db)
    admin = Database(db.url)
    try:
        async with admin.transaction() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
    finally:
        await admin.dispose()
    # "Idle for long enough" without waiting: every pooled connection counts as idle now.
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    replacement = await _backend_pid(db)  # no error reaches the unit of work
    assert replacement != victim
    assert pings  # the cut connection was found out by the ping, not by the query
    assert await _backend_pid(db) == replacement


@PG_ONLY
async def test_an_idle_connection_still_alive_is_pinged_and_kept(
    db: Database, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _backend_pid(db)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    assert await _backend_pid(db) == first
    assert len(pings) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_a_bulk_load_first_in_its_unit_of_work_is_rolled_back_with_it(db: Database) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.transaction() as session:
            await insert_rows(session, TERMS, [("红楼", 1, 1), ("楼梦", 1, 1)])
            assert await session.scalar(text("SELECT count(*) FROM search_terms")) == 2
            raise Abandon
    async with db.transaction(read_only=True) as session:
        assert await session.scalar(text("SELECT count(*) FROM search_terms")) == 0


@PG_ONLY
async def test_a_burst_wider_than_the_pool_waits_for_it_and_opens_no_more(db: Database) -> None:
    """A connection opened for a burst and closed after it costs its startup and an empty
    statement cache (3% of the bot's CPU under load): the burst waits for the pool instead."""
    opened: list[int] = []
    for engine in db.engines:
        event.listen(engine.sync_engine, "connect", lambda *_: opened.append(1))

    async def read() -> None:
        async with db.transaction(read_only=True) as session:
            await session.execute(text("SELECT pg_sleep(0.01)"))

    async def write() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_sleep(0.01)"))

    for _ in range(2):
        await asyncio.gather(*(read() for _ in range(40)), *(write() for _ in range(40)))
    assert 0 < len(opened) <= db_module.PG_READ_POOL + db_module.PG_WRITE_POOL
