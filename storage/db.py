"""Engine, sessions and the unit of work.

SQLite: WAL, a busy timeout, and every transaction that may write starts with ``BEGIN IMMEDIATE``
so that two writers queue on the lock instead of failing with "database is locked" when a read
transaction tries to upgrade. Read-only units of work start a plain deferred ``BEGIN`` and take
no lock.

A read-only unit of work is read-only in the database itself, not by a look at the SQL text,
on connections of its own (a second engine): SQLite's are ``PRAGMA query_only`` from the start
(an in-memory database, one per connection, sets the pragma for the transaction instead);
PostgreSQL's run in autocommit with ``default_transaction_read_only`` on, so a read sends no
BEGIN and COMMIT (at READ COMMITTED a transaction gives its statements no common snapshot
anyway). Whatever the database refuses there (an INSERT behind a WITH, a SELECT ... FOR UPDATE,
a COPY) raises ReadOnlyTransactionError, so work that writes without asking for a write
transaction is caught instead of taking the lock. (PostgreSQL does let an advisory lock be taken
in a read-only transaction; no unit of work takes one.)

SQLite runs in the event loop's thread (storage/sqlite_inloop.py), not on aiosqlite's threads:
each of aiosqlite's calls (four per statement) is a round trip to the connection's thread (a
queue, a GIL hand-off, a self-pipe write to wake the loop), and on the bot's small WAL database
those hops cost more than the SQL. Measured with benchmarks/throughput.py back to back on the
same (busy) machine, the bot's CPU per update fell from 29-32 ms to 20-21 ms (PostgreSQL in the
same conditions: 24-26 ms). The connections never wait for a lock inside SQLite (busy timeout
0): a statement that finds the database locked runs again after an asyncio sleep, until
``busy_timeout_s``. The price: a statement holds the loop for as long as it runs. An update's
statements take ~0.05 ms each at the median (wall time in the benchmark; p99 ~4 ms, the longest
12 ms, on a machine with other work on both cores). The long ones are a whole school's statistics
(~200 ms each at 100k loans) and the scheduled jobs' sweeps: those units of work send their
statements to a worker thread (``off_the_loop``). An import's bulk inserts and the search index
rebuild (up to seconds) run in the CLI, whose process runs one command with nothing else to keep
responsive: they stay in its loop, so one code path serves the bot and the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from storage import sqlite_inloop

READ_ONLY = "shuxiang_read_only"
# How long a SQLite writer waits for the write lock; configurable (SHUXIANG_SQLITE_BUSY_TIMEOUT_S)
# so a test proving the lock is not held over a slow reply need not wait the production 30 s.
SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_CACHE_KIB = 32_768
# Mapped pages count toward the process's memory: 32 MB keeps the search process under its
# 350 MB budget (256 MB cost ~55 MB more at 81k titles, for no measurable speed).
SQLITE_MMAP_BYTES = 32 * 1024 * 1024
# Connections each engine keeps open. An update holds one only while its transaction is open
# (never over a Bot API call), so the bot's updates in flight (max_updates_in_flight, 64) need
# fewer; the others wait their turn in the pool's queue. No overflow: a connection opened for a
# burst and closed as it ends costs more than the wait (SQLite: eight pragmas; PostgreSQL: a
# connection's startup, 3% of the bot's CPU under load). On PostgreSQL every update reads and
# about a third write; 20 a process keeps four workers and the CLI within the server's default
# max_connections (100).
POOL_SIZE = 16
PG_READ_POOL = 12
PG_WRITE_POOL = 8
# A pooled connection idle longer than this is pinged before use (see _install_idle_ping).
PING_AFTER_IDLE_S = 2.0
_IDLE_SINCE = "shuxiang_idle_since"
# Set in a pooled SQLite connection's info while it runs under PRAGMA query_only.
_QUERY_ONLY = "shuxiang_query_only"
# PostgreSQL's read_only_sql_transaction (asyncpg: ReadOnlySQLTransactionError).
_PG_READ_ONLY_SQLSTATE = "25006"


class ReadOnlyTransactionError(RuntimeError):
    """A statement that writes ran in a transaction opened with ``read_only=True``."""


def _refused_as_read_only(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it wraps) is the database refusing a write in a read-only
    transaction: SQLITE_READONLY under query_only, SQLSTATE 25006 on PostgreSQL."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            if isinstance(code, int):
                return code & 0xFF == sqlite3.SQLITE_READONLY
            return "readonly database" in str(exc)
        if getattr(exc, "sqlstate", None) == _PG_READ_ONLY_SQLSTATE:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
    return False


def _install_read_only_errors(engine: AsyncEngine) -> None:
    """The database's refusal of a write in a read-only transaction, raised where the statement
    ran as ReadOnlyTransactionError (not a SQLAlchemyError: nothing that catches those takes it
    for a database fault)."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _refusal(context: ExceptionContext) -> None:
        conn = context.connection
        if conn is None or not conn.get_execution_options().get(READ_ONLY, False):
            return
        if _refused_as_read_only(context.original_exception):
            statement = (context.statement or "").split(None, 1)[:1]
            raise ReadOnlyTransactionError(
                f"{statement[0] if statement else 'a statement'} in a read-only transaction: "
                f"{context.original_exception}"
            ) from context.original_exception


def _install_idle_ping(engine: AsyncEngine) -> None:
    """pool_pre_ping's liveness check, for connections that sat idle in the pool a while only.

    On asyncpg the stock pre-ping costs three round trips (BEGIN, ";", ROLLBACK) on every
    checkout: more than a whole search's statements on a busy bot. A connection handed back
    a moment ago is alive; one that sat idle may have been cut (a server restart, a
    firewall), and is checked and replaced as pool_pre_ping would.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine.pool, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync_engine.pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool throws this connection away and checks out a fresh one.
                raise DisconnectionError from exc
            raise


def _install_sqlite_hooks(engine: AsyncEngine, *, query_only: bool = False) -> None:
    """``query_only``: the engine of read-only transactions, whose connections refuse writes
    for good (set once as they connect, not twice per transaction)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # No waiting inside SQLite, in the loop's thread: the adapter sleeps and retries instead.
        cursor.execute("PRAGMA busy_timeout=0")
        # The default 2 MB page cache is small for an 80k-title catalogue's search index;
        # memory-mapped reads save a system call and a copy per page.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        if query_only:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if query_only:
            conn.exec_driver_sql("BEGIN")  # deferred: a reader takes no lock
            return
        info = conn.connection.info
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("PRAGMA query_only = ON")
            info[_QUERY_ONLY] = True
            conn.exec_driver_sql("BEGIN")  # deferred: a reader takes no lock
            return
        if info.get(_QUERY_ONLY):
            # A reader's connection whose clearing below failed: never lend it to a writer so.
            _query_only_off(conn)
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _query_only_off(conn: Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("PRAGMA query_only = OFF")
        finally:
            cursor.close()
        conn.connection.info.pop(_QUERY_ONLY, None)

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _on_end(conn: Connection) -> None:
        # The pragma is the connection's, not the transaction's: clear it as the transaction
        # ends, before the connection can go back to the pool.
        if conn.invalidated or not conn.connection.info.get(_QUERY_ONLY):
            return
        # Not on a dead connection (the pool drops it) nor anywhere it cannot run: the next
        # writer's BEGIN clears the pragma then, and a rollback must not fail over it.
        with contextlib.suppress(Exception):
            _query_only_off(conn)


def sqlite_file(url: str | URL) -> str | None:
    """A SQLite URL's file; None for an in-memory database (one per connection, seen by this
    process only)."""
    path = make_url(url).database
    return path if path and path != ":memory:" else None


def role_lock_file(url: str, name: str) -> str | None:
    """The file beside a SQLite database whose flock holds role ``name`` (the one place its
    name is made: who holds it and who asks must agree); None for an in-memory database."""
    path = sqlite_file(url)
    return None if path is None else f"{path}.{name}.lock"


def create_engine(
    url: str,
    *,
    echo: bool = False,
    busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
    pool_size: int | None = None,
    query_only: bool = False,
) -> AsyncEngine:
    """``pool_size``: connections kept open (by default POOL_SIZE, on PostgreSQL PG_READ_POOL
    or PG_WRITE_POOL). ``query_only``: connections that refuse every write (PostgreSQL: in
    autocommit)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = sqlite_file(parsed) is None
        # What the aiosqlite dialect would hand sqlite3.connect (the file's absolute path, uri).
        cargs, cparams = SQLiteDialect_pysqlite().create_connect_args(parsed)
        engine = create_async_engine(
            parsed,
            echo=echo,
            async_creator=sqlite_inloop.connect(str(cargs[0]), busy_timeout_s, **cparams),
            # An in-memory database is one per connection: nothing to keep in a pool.
            poolclass=NullPool if memory else None,
            **({} if memory else {"pool_size": pool_size or POOL_SIZE, "max_overflow": 0}),
        )
        _install_sqlite_hooks(engine, query_only=query_only)
    else:
        options: dict[str, Any] = {}
        if query_only:
            # Reads in autocommit: no BEGIN and COMMIT, two round trips of every read. At READ
            # COMMITTED a transaction gives its statements no common snapshot anyway, and the
            # server still refuses every write (default_transaction_read_only).
            options = {
                "isolation_level": "AUTOCOMMIT",
                "connect_args": {"server_settings": {"default_transaction_read_only": "on"}},
            }
        engine = create_async_engine(
            parsed,
            echo=echo,
            pool_size=pool_size or (PG_READ_POOL if query_only else PG_WRITE_POOL),
            max_overflow=0,
            **options,
        )
        _install_idle_ping(engine)
    _install_read_only_errors(engine)
    return engine


class Database:
    """Owns the engine and the session factory; one per process, built by the assembly function."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
        pool_size: int | None = None,
        write_wait_s: float | None = None,
    ) -> None:
        """``pool_size``: each engine's (see create_engine). ``write_wait_s``: how long a SQLite
        writer waits its turn in this process (by default ``busy_timeout_s``, what it would wait
        for the lock without the queue)."""
        self.url = url
        self.write_wait_s = busy_timeout_s if write_wait_s is None else write_wait_s
        self.engine = create_engine(
            url, echo=echo, busy_timeout_s=busy_timeout_s, pool_size=pool_size
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Read-only transactions on connections of their own that refuse writes from the
        # start: a read costs no pragma round trips on SQLite, no BEGIN and COMMIT on
        # PostgreSQL. (An in-memory SQLite database is one per connection: no second engine.)
        self._readers = self.sessionmaker
        self._read_engine: AsyncEngine | None = None
        if not self.is_sqlite or sqlite_file(url) is not None:
            self._read_engine = create_engine(
                url, echo=echo, busy_timeout_s=busy_timeout_s, pool_size=pool_size, query_only=True
            )
            self._readers = async_sessionmaker(self._read_engine, expire_on_commit=False)
        # SQLite has one write lock per file; the writers of this process queue for it here,
        # in order, instead of polling for it in SQLite's busy handler (which gives up after
        # the busy timeout with "database is locked" when many wait). Readers never take it.
        self._write_lock: asyncio.Lock | None = None
        self._write_lock_loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.Task[Any] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """The writers' engine, then the readers' when they have their own."""
        return (self.engine,) if self._read_engine is None else (self.engine, self._read_engine)

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any error. ``read_only`` takes no
        write lock (SQLite: deferred BEGIN) and the database refuses anything that writes in it:
        ReadOnlyTransactionError."""
        if not read_only:
            async with self._writing(), self.sessionmaker() as session, session.begin():
                yield session
            return
        options: dict[str, Any] = {READ_ONLY: True}
        try:
            async with self._readers() as session, session.begin():
                await session.connection(execution_options=options)
                yield session
        except ReadOnlyTransactionError:
            raise
        except Exception as exc:
            # What went around SQLAlchemy's statement execution (asyncpg's COPY for one).
            if _refused_as_read_only(exc):
                raise ReadOnlyTransactionError(str(exc)) from exc
            raise

    def reading(self) -> Reading:
        """A read-only transaction that can change hands (see :class:`Reading`)."""
        return Reading(self)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """SQLite: this process's write transactions one at a time (see __init__). A write
        transaction opened inside another by the same task does not wait for itself: it meets
        the lock in SQLite and waits out the busy timeout (storage/sqlite_inloop.py)."""
        task = asyncio.current_task()
        if not self.is_sqlite or (task is not None and task is self._writer):
            yield
            return
        loop = asyncio.get_running_loop()
        if self._write_lock is None or self._write_lock_loop is not loop:
            self._write_lock, self._write_lock_loop = asyncio.Lock(), loop
        lock = self._write_lock
        try:
            async with asyncio.timeout(self.write_wait_s):
                await lock.acquire()
        except TimeoutError:
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            ) from None
        self._writer = task
        try:
            yield
        finally:
            self._writer = None
            lock.release()

    async def vacuum(self, *tables: str) -> None:
        """After a bulk load has committed: on PostgreSQL, VACUUM the tables so their pages are
        marked all-visible (index-only scans then skip the heap, and the first searches do not
        each stop to set hint bits on thousands of fresh rows). VACUUM cannot run inside a
        transaction, hence its own autocommit connection. SQLite needs nothing of the kind."""
        if self.is_sqlite or not tables:
            return
        async with self.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for name in tables:
                await auto.exec_driver_sql(f'VACUUM "{name}"')

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()

    @asynccontextmanager
    async def role(self, name: str) -> AsyncIterator[bool]:
        """Take a part in the role ``name`` (e.g. "sender") for the block; yields True when no
        other live process holds it. The hold dies with the process (a SIGKILL too): an flock
        on a file beside the SQLite database, a session advisory lock on PostgreSQL (on a
        connection kept for the block). So a starting sender that is alone knows every claim
        still marked as sending belongs to a dead one."""
        if self.is_sqlite:
            async with _file_role(self.url, name) as alone:
                yield alone
            return
        key = role_key(name)
        async with self.engine.connect() as conn:
            alone = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            await conn.execute(text("SELECT pg_advisory_lock_shared(:k)"), {"k": key})
            if alone:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()
            try:
                yield alone
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock_shared(:k)"), {"k": key})
                await conn.commit()


@asynccontextmanager
async def off_the_loop(session: AsyncSession) -> AsyncIterator[None]:
    """SQLite: the session's statements in the block run on a worker thread, not in the event
    loop's, for a unit of work whose statements take long (a whole school's statistics: ~200 ms
    each at 100k loans), so that the loop serves other updates meanwhile. PostgreSQL waits on a
    socket anyway: nothing to do."""
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, sqlite_inloop.InLoopConnection) or driver.off_loop:
        yield
        return
    driver.off_loop = True
    try:
        yield
    finally:
        driver.off_loop = False


class Reading:
    """``Database.transaction(read_only=True)``, begun by one part of the code and ended by
    another: the update's reader lookup begins it, a read-only handler carries on in it
    (``async with reading as session``, which ends it as the transaction would) and anything
    else ends it (:meth:`end`). One BEGIN and COMMIT for both instead of two."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._context: contextlib.AbstractAsyncContextManager[AsyncSession] | None = None
        self.session: AsyncSession | None = None

    async def begin(self) -> AsyncSession:
        if self.session is None:
            context = self._db.transaction(read_only=True)
            self.session = await context.__aenter__()
            self._context = context
        return self.session

    async def end(self, exc: BaseException | None = None) -> None:
        """Commit (or with ``exc``, roll back); nothing when it has ended already."""
        context, self._context, self.session = self._context, None, None
        if context is not None:
            await context.__aexit__(
                type(exc) if exc else None, exc, exc.__traceback__ if exc else None
            )

    async def __aenter__(self) -> AsyncSession:
        return await self.begin()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        context, self._context, self.session = self._context, None, None
        return None if context is None else await context.__aexit__(*exc_info)


def role_key(name: str) -> int:
    # A stable 63-bit key per role name (Python's hash() changes between processes).
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") >> 1


@asynccontextmanager
async def _file_role(url: str, name: str) -> AsyncIterator[bool]:
    lock = role_lock_file(url, name)
    if lock is None:
        yield True  # a database only this process sees
        return
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        # Shared from now on (a conversion): later starters see us and are not alone. Another
        # starter holding it exclusively for an instant makes this wait for that instant.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_SH)
        yield alone
    finally:
        os.close(fd)  # releases the lock
