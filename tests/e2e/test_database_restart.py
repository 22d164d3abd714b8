"""Pooled connections cut under a running bot (PostgreSQL: a restart, a firewall's idle timeout):
the next updates are answered as usual, not with an apology, and a write still happens once."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from services import circulation
from services.actor import Actor
from storage import db as db_module
from storage.db import Database
from storage.models import Loan
from tests.e2e.conftest import Harness
from tests.factories import make_world


async def _cut_pooled_connections(url: str) -> int:
    """Every connection to the test database but ours and the sender's (which holds its role's
    advisory lock for the whole run and is not what this test is about)."""
    admin = Database(url)
    try:
        async with admin.transaction() as session:
            return len(
                (
                    await session.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"
                        )
                    )
                ).all()
            )
    finally:
        await admin.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_updates_after_the_connections_died_are_answered(
    harness: Harness, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await make_world(
        h.db, records={"r1": ("追风筝的人", ["B1"])}, readers={"S1": ("李明", "student")}
    )
    async with h.db.transaction() as session:
        await circulation.checkout(
            session, actor=Actor.cli(), card_no="S1", barcode="B1", policy=h.policy
        )
    student = await h.bound(9401, "S1")
    loans = await student.say("/loans")
    assert "追风筝的人" in loans["text"]

    # No idle ping to catch it: the dead connections are met by the updates themselves.
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 1e9)
    assert await _cut_pooled_connections(db_url) >= 1

    again = await student.say("/loans")
    assert "追风筝的人" in again["text"], again["text"]
    await _cut_pooled_connections(db_url)
    await student.press(again, "续借")
    renewed = await student.next_message(contains="已续借，新的应还日期")
    assert "追风筝的人" in renewed["text"]
    async with h.db.transaction(read_only=True) as session:
        loan = await session.scalar(select(Loan))
    assert loan is not None and loan.renewals == 1  # once, though the first try died
    assert not any("出了点问题" in t for t in student.texts())
