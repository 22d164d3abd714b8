"""SQLite in the event loop's own thread, behind the interface SQLAlchemy's aiosqlite dialect
drives.

Why: aiosqlite runs each connection's statements on a thread of its own, and every call (the
cursor, execute, fetchall, close: four per statement) is a hop there and back: a queue put, a
GIL hand-off, and ``call_soon_threadsafe`` with a self-pipe write and read to wake the loop. On
the bot's small WAL database the statements themselves take microseconds; the hops took about
half of the bot's CPU per update (benchmarks/throughput.py: ~20 ms per update on SQLite against
~11 ms on PostgreSQL). Here every call runs the stdlib ``sqlite3`` connection directly.

What must never happen in the loop is a wait for a lock. The connections open with no busy
timeout (``timeout=0``, ``PRAGMA busy_timeout=0``), so a lock another connection holds makes a
statement fail at once with SQLITE_BUSY; the statement is then run again after an
``asyncio.sleep`` (1 ms, doubling to 50 ms, like SQLite's own busy handler), until
``busy_timeout_s`` has passed, when the last "database is locked" OperationalError is raised:
what SQLite's busy handler raised before, after the same time.

Running the failed statement again is what SQLite's busy handler does, one level up: SQLite
returns SQLITE_BUSY where it could not take a lock, before the statement has changed anything
(an aborted statement's changes are rolled back with it), so in WAL mode:

* ``BEGIN IMMEDIATE`` (every write transaction): fails before it holds anything; again is safe.
* Reads (a read transaction's first statement opens its snapshot; the WAL index may be busy
  for an instant in a checkpoint or recovery): nothing done, again is safe.
* Statements inside a write transaction and its ``COMMIT`` hold the write lock already; WAL
  writers do not wait for readers, so SQLITE_BUSY does not arise there. (Were it to, as with
  COMMIT in rollback-journal mode, SQLite documents COMMIT as safe to retry.)
* SQLITE_BUSY_SNAPSHOT (a deferred transaction that read an old snapshot and then tried to
  write) can never succeed by waiting: raised at once, as SQLite's busy handler does too.
* ``executemany`` is run again only when it changed no row (``total_changes`` unchanged), so
  the rows before a failing one are never written twice.

A long statement holds the loop for its length. Where a unit of work's statements are known to
be long (a whole school's statistics: ~200 ms each at 100k loans), ``off_loop`` sends them,
and their fetches, to a worker thread (``asyncio.to_thread``) for the while: storage.db's
``off_the_loop``.

No maintained library does this for SQLAlchemy (aiosqlite, aiosqlitepool, asqlite and the
like all run sqlite3 on threads), hence this small adapter.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

__all__ = ["BUSY_BACKOFF_MAX_S", "InLoopConnection", "InLoopCursor", "connect"]

T = TypeVar("T")

BUSY_BACKOFF_FIRST_S = 0.001
BUSY_BACKOFF_MAX_S = 0.05
# SQLite's extended code: an old read snapshot cannot be upgraded to write; waiting never helps.
_SQLITE_BUSY_SNAPSHOT = getattr(sqlite3, "SQLITE_BUSY_SNAPSHOT", 517)


# Each sleep on a locked database is logged here at DEBUG (diagnostics; the tests count them).
log = logging.getLogger(__name__)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return "database is locked" in str(exc)
    return code & 0xFF == sqlite3.SQLITE_BUSY and code != _SQLITE_BUSY_SNAPSHOT


class InLoopConnection:
    """``aiosqlite.Connection`` as far as SQLAlchemy's aiosqlite dialect uses it (``cursor``,
    ``execute``, ``commit``, ``rollback``, ``close``, ``stop``, ``create_function``,
    ``isolation_level``, and the private ``_conn`` and ``_tx`` its isolation_level setter
    reaches for) and nlp.search (``execute_fetchall``), each call run at once on the loop's
    thread."""

    def __init__(self, conn: sqlite3.Connection, busy_timeout_s: float) -> None:
        self._conn = conn
        self.busy_timeout_s = busy_timeout_s
        self._tx = _RunNow()
        # Statements (and fetches) on a worker thread instead of the loop's (see the module).
        self.off_loop = False

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes

    async def cursor(self) -> InLoopCursor:
        return InLoopCursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = None) -> InLoopCursor:
        cursor = await self.cursor()
        return await cursor.execute(sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: Any = None) -> list[Any]:
        """aiosqlite's one-call read (nlp.search runs its statements so)."""
        cursor = self._conn.cursor()
        try:
            if parameters is None:
                return await self.retrying(lambda: cursor.execute(sql).fetchall())
            return await self.retrying(lambda: cursor.execute(sql, parameters).fetchall())
        finally:
            cursor.close()

    async def commit(self) -> None:
        await self.retrying(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        """aiosqlite's forced close (SQLAlchemy's terminate)."""
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def retrying(
        self, call: Callable[[], T], *, again: Callable[[], bool] | None = None
    ) -> T:
        """``call()``; on SQLITE_BUSY, again after a sleep until ``busy_timeout_s`` has passed
        (``again``: whether a failed call may be repeated)."""
        try:
            return await self.run(call)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or (again is not None and not again()):
                raise
        deadline = time.monotonic() + self.busy_timeout_s
        delay = BUSY_BACKOFF_FIRST_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return await self.run(call)  # once more: its "database is locked" is the answer
            log.debug("database is locked: statement again in %.3f s", min(delay, left))
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, BUSY_BACKOFF_MAX_S)
            try:
                return await self.run(call)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or (again is not None and not again()):
                    raise

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` here and now, or with ``off_loop`` on a worker thread."""
        if not self.off_loop:
            return call()
        try:
            return await asyncio.to_thread(call)
        except asyncio.CancelledError:
            # Nobody waits for the statement any more: stop it, so the connection is free
            # for the rollback that follows.
            self._conn.interrupt()
            raise


class InLoopCursor:
    """``aiosqlite.Cursor``'s coroutines over a ``sqlite3.Cursor``."""

    def __init__(self, owner: InLoopConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    async def execute(self, sql: str, parameters: Any = None) -> InLoopCursor:
        cursor = self._cursor
        if parameters is None:
            await self._owner.retrying(lambda: cursor.execute(sql))
        else:
            await self._owner.retrying(lambda: cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InLoopCursor:
        rows = (
            seq_of_parameters
            if isinstance(seq_of_parameters, list | tuple)
            else list(seq_of_parameters)
        )
        conn = self._owner
        before = conn.total_changes
        await conn.retrying(
            lambda: self._cursor.executemany(sql, rows), again=lambda: conn.total_changes == before
        )
        return self

    async def fetchone(self) -> Any:
        return await self._owner.run(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        cursor = self._cursor
        return await self._owner.run(
            lambda: cursor.fetchmany(cursor.arraysize if size is None else size)
        )

    async def fetchall(self) -> list[Any]:
        return await self._owner.run(self._cursor.fetchall)

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """aiosqlite's request queue as SQLAlchemy's isolation_level setter uses it
    (``put_nowait((future, function))``): the function runs here and now."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to whoever awaits the future
            future.set_exception(exc)


def connect(
    database: str, busy_timeout_s: float, **kwargs: Any
) -> Callable[[], Awaitable[InLoopConnection]]:
    """An ``async_creator`` for ``create_async_engine``: connections that never wait for a lock
    in SQLite (``kwargs``: sqlite3.connect's, e.g. ``uri``)."""
    options = {**kwargs, "timeout": 0, "isolation_level": None, "check_same_thread": False}

    async def creator() -> InLoopConnection:
        return InLoopConnection(sqlite3.connect(database, **options), busy_timeout_s)

    return creator
