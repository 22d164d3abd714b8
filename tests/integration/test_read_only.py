"""Read-only units of work are read-only in the database itself (SQLite's PRAGMA query_only,
PostgreSQL's default_transaction_read_only, in autocommit): whatever writes in one is refused as
ReadOnlyTransactionError, however it is spelt. Readers have connections of their own that stay
read-only, and the writers' connections write."""

from __future__ import annotations

from datetime import date
from typing import cast

import pytest
from sqlalchemy import Connection, Table, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import db as db_module
from storage.bulk import insert_rows
from storage.db import Database, ReadOnlyTransactionError
from storage.models import ClosedDay
from storage.search_tables import SearchTerm

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
PG_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
TERMS = cast(Table, SearchTerm.__table__)

WRITES_ON_BOTH = {
    "insert": "INSERT INTO closed_days (day, name) VALUES ('2026-01-02', '假')",
    "update": "UPDATE closed_days SET name = '改'",
    "delete": "DELETE FROM closed_days",
    "delete after a WITH": (
        "WITH d AS (SELECT day FROM closed_days) "
        "DELETE FROM closed_days WHERE day IN (SELECT day FROM d)"
    ),
}
WRITES_ON_PG = {
    "insert inside a WITH": (
        "WITH d AS (INSERT INTO closed_days (day, name) VALUES ('2026-01-03', '假') "
        "RETURNING day) SELECT count(*) FROM d"
    ),
    "select for update": "SELECT day FROM closed_days FOR UPDATE",
}


async def _seed(db: Database) -> None:
    async with db.transaction() as s:
        s.add(ClosedDay(day=date(2026, 1, 1), name="元旦"))


async def _days(db: Database) -> dict[date, str | None]:
    async with db.transaction(read_only=True) as s:
        return {day: name for day, name in (await s.execute(select(ClosedDay.day, ClosedDay.name)))}


async def _connection_id(s: AsyncSession) -> int:
    """Which pooled connection the unit of work runs on (the driver's connection object)."""
    raw = await (await s.connection()).get_raw_connection()
    return id(raw.dbapi_connection)


async def _a_writer_still_writes(db: Database, day: date, *, on: int | None = None) -> None:
    """A writer writes (``on``: the connection a reader just gave back, never a writer's:
    readers have connections of their own, read-only for good)."""
    async with db.transaction() as s:
        if on is not None:
            assert await _connection_id(s) != on
        if db.is_sqlite:
            assert await s.scalar(text("PRAGMA query_only")) == 0
        else:
            assert await s.scalar(text("SHOW transaction_read_only")) == "off"
        s.add(ClosedDay(day=day, name="补"))
    assert (await _days(db))[day] == "补"


@BOTH
@pytest.mark.parametrize("statement", list(WRITES_ON_BOTH), ids=list(WRITES_ON_BOTH))
async def test_a_write_in_a_read_only_transaction_is_refused(db: Database, statement: str) -> None:
    await _seed(db)
    with pytest.raises(ReadOnlyTransactionError):
        async with db.transaction(read_only=True) as s:
            reader = await _connection_id(s)
            await s.execute(text(WRITES_ON_BOTH[statement]))
    await _a_writer_still_writes(db, date(2026, 2, 1), on=reader)
    assert await _days(db) == {date(2026, 1, 1): "元旦", date(2026, 2, 1): "补"}


@PG_ONLY
@pytest.mark.parametrize("statement", list(WRITES_ON_PG), ids=list(WRITES_ON_PG))
async def test_a_lock_or_a_hidden_write_in_a_read_only_transaction_is_refused(
    db: Database, statement: str
) -> None:
    await _seed(db)
    with pytest.raises(ReadOnlyTransactionError):
        async with db.transaction(read_only=True) as s:
            reader = await _connection_id(s)
            await s.execute(text(WRITES_ON_PG[statement]))
    await _a_writer_still_writes(db, date(2026, 2, 1), on=reader)
    assert await _days(db) == {date(2026, 1, 1): "元旦", date(2026, 2, 1): "补"}


@PG_ONLY
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="PostgreSQL takes advisory locks in a READ ONLY transaction (they work on a hot "
    "standby too): no native guard refuses them, and no unit of work takes one",
)
async def test_an_advisory_lock_in_a_read_only_transaction(db: Database) -> None:
    try:
        async with db.transaction(read_only=True) as s:
            await s.execute(text("SELECT pg_advisory_xact_lock(4242)"))
    except ReadOnlyTransactionError:
        return
    raise AssertionError("pg_advisory_xact_lock ran in a read-only transaction")


@BOTH
async def test_an_orm_flush_and_a_bulk_load_are_refused_too(db: Database) -> None:
    with pytest.raises(ReadOnlyTransactionError):
        async with db.transaction(read_only=True) as s:
            s.add(ClosedDay(day=date(2026, 1, 5), name="假"))  # flushed at commit
    with pytest.raises(ReadOnlyTransactionError):  # PostgreSQL: a COPY, around SQLAlchemy
        async with db.transaction(read_only=True) as s:
            await insert_rows(s, TERMS, [("红楼", 1, 1)])
    assert await _days(db) == {}
    await _a_writer_still_writes(db, date(2026, 2, 1))


@BOTH
async def test_every_pooled_connection_goes_back_writable(db: Database) -> None:
    """Several readers at once (so several pooled connections), each refused, then as many
    writers at once: none of them inherits the readers' read-only mode."""
    import asyncio

    async def refused() -> None:
        with pytest.raises(ReadOnlyTransactionError):
            async with db.transaction(read_only=True) as s:
                await s.execute(select(ClosedDay.day))
                await asyncio.sleep(0)
                await s.execute(text(WRITES_ON_BOTH["insert"]))

    async def reads() -> None:
        async with db.transaction(read_only=True) as s:
            await s.execute(select(ClosedDay.day))
            await asyncio.sleep(0)

    await asyncio.gather(refused(), reads(), refused(), reads())
    for n in range(1, 5):
        await _a_writer_still_writes(db, date(2026, 3, n))


@BOTH
async def test_reads_work_in_a_read_only_transaction(db: Database) -> None:
    await _seed(db)
    async with db.transaction(read_only=True) as s:
        assert await s.scalar(select(ClosedDay.name)) == "元旦"
        assert await s.scalar(text("SELECT count(*) FROM closed_days")) == 1
        if db.is_sqlite:
            assert await s.scalar(text("PRAGMA query_only")) == 1
        else:
            assert await s.scalar(text("SHOW transaction_read_only")) == "on"
            # Autocommit: no BEGIN and COMMIT around the reads (two round trips saved).
            raw = await (await s.connection()).get_raw_connection()
            assert not raw.driver_connection.is_in_transaction()  # type: ignore[union-attr]


@BOTH
async def test_other_errors_in_a_read_only_transaction_are_not_taken_for_writes(
    db: Database,
) -> None:
    with pytest.raises(SQLAlchemyError) as raised:
        async with db.transaction(read_only=True) as s:
            await s.execute(text("SELECT no_such_column FROM closed_days"))
    assert not isinstance(raised.value, ReadOnlyTransactionError)
    await _a_writer_still_writes(db, date(2026, 2, 1))


@BOTH
async def test_a_writer_refusal_is_not_a_read_only_error(db: Database) -> None:
    await _seed(db)
    with pytest.raises(SQLAlchemyError):  # a duplicate key, in a writer: a database error
        async with db.transaction() as s:
            await s.execute(text(WRITES_ON_BOTH["insert"].replace("01-02", "01-01")))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_writer_clears_query_only_a_reader_could_not(db: Database) -> None:
    """The pragma left on (its clearing at the reader's end failed): the next writer's BEGIN
    clears it before BEGIN IMMEDIATE."""

    def leave_it_on(conn: Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()
        conn.connection.info[db_module._QUERY_ONLY] = True

    async with db.engine.connect() as conn:  # no transaction: no end to clear it at
        await conn.run_sync(leave_it_on)
    await _a_writer_still_writes(db, date(2026, 2, 1))
