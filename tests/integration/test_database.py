"""The pool's liveness check on PostgreSQL: pinged after idling only, a cut connection replaced."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from storage import db as db_module
from storage.db import Database

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def _backend_pid(db: Database) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


@pytest.fixture
def pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the liveness checks the pool makes (the dialect's own ping, as pool_pre_ping's)."""
    calls: list[int] = []
    dialect = db.engine.sync_engine.dialect
    real = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        calls.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counting)
    return calls


async def test_a_connection_back_from_use_a_moment_ago_is_not_pinged(
    db: Database, pings: list[int]
) -> None:
    first = await _backend_pid(db)
    for _ in range(5):
        assert await _backend_pid(db) == first  # the same pooled connection, reused
    assert pings == []


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


async def test_an_idle_connection_still_alive_is_pinged_and_kept(
    db: Database, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _backend_pid(db)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    assert await _backend_pid(db) == first
    assert len(pings) == 1
