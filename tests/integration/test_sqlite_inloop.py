"""SQLite in the event loop's thread (storage/sqlite_inloop.py): a statement that finds the
database locked by another connection (another engine, another process) sleeps in the loop and
runs again, and the loop keeps running meanwhile; after the busy timeout it fails as SQLite's
busy handler did; reads in WAL never wait for a writer; an old snapshot's write is refused at
once."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from storage import sqlite_inloop
from storage.db import Database, ReadOnlyTransactionError, off_the_loop
from storage.models import ClosedDay

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# A second process holding SQLite's write lock (BEGIN IMMEDIATE, one row written) until told to
# let go: the CLI importing while the bot runs.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO closed_days (day, name) VALUES ('2026-03-01', 'held')")
print("holding", flush=True)
sys.stdin.readline()
conn.execute(sys.stdin.readline().strip() or "COMMIT")
print("done", flush=True)
"""


class Ticker:
    """A task that counts while the loop is free to run it."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


@asynccontextmanager
async def _held_by_another_process(path: str) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """Yields ``release(how)``: "COMMIT" or "ROLLBACK" ends the other process's transaction."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    assert (await stdout.readline()).strip() == b"holding"
    released = False

    async def release(how: str) -> None:
        nonlocal released
        released = True
        stdin.write(f"\n{how}\n".encode())
        await stdin.drain()
        assert (await stdout.readline()).strip() == b"done"

    try:
        yield release
    finally:
        if not released:
            stdin.write(b"\nROLLBACK\n")
            await stdin.drain()
        await proc.wait()


async def _add(db: Database, day: date, name: str) -> None:
    async with db.transaction() as s:
        s.add(ClosedDay(day=day, name=name))


async def _names(db: Database) -> set[str]:
    async with db.transaction(read_only=True) as s:
        return {str(n) for n in (await s.scalars(select(ClosedDay.name)))}


class _Waits(logging.Handler):
    """Counts the adapter's sleeps on a locked database (its DEBUG lines)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    def __call__(self) -> int:
        return self.count


@pytest.fixture
def busy_waits() -> Iterator[_Waits]:
    logger = sqlite_inloop.log
    waits, level = _Waits(), logger.level
    logger.addHandler(waits)
    logger.setLevel(logging.DEBUG)
    try:
        yield waits
    finally:
        logger.removeHandler(waits)
        logger.setLevel(level)


async def _until(condition: Callable[[], bool]) -> None:
    # The adapter only counts its waits (no event to wait on): look again each millisecond.
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.001)


@SQLITE
async def test_a_writer_waits_in_the_loop_for_another_process_then_writes(
    db: Database, busy_waits: _Waits
) -> None:
    path = str(db.engine.url.database)
    ticker = Ticker()
    try:
        async with _held_by_another_process(path) as release:
            waits = busy_waits()
            writer = asyncio.create_task(_add(db, date(2026, 3, 2), "ours"))
            # The writer found the lock taken and slept, three times over, and each time the
            # loop went on running the other task.
            await _until(lambda: busy_waits() >= waits + 3)
            ticks = ticker.ticks
            await _until(lambda: busy_waits() >= waits + 4)
            assert ticker.ticks > ticks
            assert not writer.done()
            await release("COMMIT")
            await writer
    finally:
        ticker.stop()
    assert await _names(db) == {"held", "ours"}


@SQLITE
async def test_two_engines_on_one_file_take_turns_without_blocking_the_loop(
    db: Database, db_url: str, busy_waits: _Waits
) -> None:
    # Two Database objects on one file: two pools and two in-process write queues, as two
    # processes would have.
    other = Database(db_url)
    ticker = Ticker()
    try:
        waits = busy_waits()
        async with other.transaction() as s:
            s.add(ClosedDay(day=date(2026, 3, 3), name="first"))
            await s.flush()
            second = asyncio.create_task(_add(db, date(2026, 3, 4), "second"))
            await _until(lambda: busy_waits() >= waits + 2)
            ticks = ticker.ticks
            await _until(lambda: busy_waits() >= waits + 3)
            assert ticker.ticks > ticks
            assert not second.done()
        await second
    finally:
        ticker.stop()
        await other.dispose()
    assert await _names(db) == {"first", "second"}


@SQLITE
async def test_a_reader_does_not_wait_for_another_process_holding_the_write_lock(
    db: Database, db_url: str, busy_waits: _Waits
) -> None:
    await _add(db, date(2026, 3, 5), "committed")
    path = str(db.engine.url.database)
    async with _held_by_another_process(path) as release:
        waits = busy_waits()
        assert await _names(db) == {"committed"}  # the last committed snapshot, at once
        assert busy_waits() == waits
        await release("ROLLBACK")
    assert await _names(db) == {"committed"}


@SQLITE
async def test_after_the_busy_timeout_the_writer_fails_as_before(db_url: str) -> None:
    impatient = Database(db_url, busy_timeout_s=0.02)
    try:
        path = str(impatient.engine.url.database)
        async with _held_by_another_process(path) as release:
            with pytest.raises(OperationalError, match="database is locked") as caught:
                await _add(impatient, date(2026, 3, 6), "late")
            assert isinstance(caught.value.orig, sqlite3.OperationalError)
            await release("COMMIT")
        # The pooled connection that gave up writes again once the lock is free.
        await _add(impatient, date(2026, 3, 7), "later")
        assert await _names(impatient) == {"held", "later"}
    finally:
        await impatient.dispose()


@SQLITE
async def test_a_read_only_unit_of_work_still_refuses_a_write(db: Database) -> None:
    with pytest.raises(ReadOnlyTransactionError):
        async with db.transaction(read_only=True) as s:
            await s.execute(text("INSERT INTO closed_days (day, name) VALUES ('2026-03-08', 'x')"))
    async with db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(ClosedDay)) == 0


async def test_an_old_snapshot_that_tries_to_write_fails_at_once(
    tmp_path: Path, busy_waits: _Waits
) -> None:
    """SQLITE_BUSY_SNAPSHOT: waiting cannot help a deferred transaction whose snapshot is older
    than the last commit, so it is not retried (SQLite's own busy handler does not retry it)."""
    path = str(tmp_path / "snap.sqlite3")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    connect = sqlite_inloop.connect(path, busy_timeout_s=30.0)
    old, new = await connect(), await connect()
    try:
        await old.execute("BEGIN")
        await (await old.execute("SELECT count(*) FROM t")).fetchall()  # the snapshot
        await new.execute("INSERT INTO t VALUES (1)")  # autocommit: a newer version
        waits = busy_waits()
        with pytest.raises(sqlite3.OperationalError) as caught:
            await old.execute("INSERT INTO t VALUES (2)")
        assert caught.value.sqlite_errorcode == sqlite3.SQLITE_BUSY_SNAPSHOT
        assert busy_waits() == waits
        await old.rollback()
    finally:
        await old.close()
        await new.close()
        setup.close()


@SQLITE
async def test_off_the_loop_runs_the_statements_on_a_worker_thread(db: Database) -> None:
    """A statement in ``off_the_loop`` runs while the loop goes on: here the statement itself
    waits until a task in the loop has let it go (in the loop's thread it would wait forever)."""
    loop_thread = threading.get_ident()
    released = threading.Event()

    def wait_for_the_loop() -> int:
        return int(released.wait(timeout=30))

    async def release() -> None:
        released.set()

    async with db.transaction(read_only=True) as s:
        raw = await (await s.connection()).get_raw_connection()
        sqlite = raw.driver_connection._conn  # type: ignore[union-attr]
        sqlite.create_function("thread_id", 0, threading.get_ident)
        sqlite.create_function("wait_for_the_loop", 0, wait_for_the_loop)
        assert await s.scalar(text("SELECT thread_id()")) == loop_thread
        async with off_the_loop(s):
            assert await s.scalar(text("SELECT thread_id()")) != loop_thread
            releaser = asyncio.create_task(release())
            assert await s.scalar(text("SELECT wait_for_the_loop()")) == 1
            await releaser
        assert await s.scalar(text("SELECT thread_id()")) == loop_thread
