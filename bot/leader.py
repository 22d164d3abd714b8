"""Exactly one active scheduler among several workers, without home-made coordination.

PostgreSQL: a session advisory lock held on a connection kept for it. PostgreSQL drops it the
moment the holder's connection ends (a SIGKILLed worker's socket closes at once), and every other
worker tries to take it every ``check_every_s`` seconds, so one of them takes over within that
(5 s by default; the issue asks for 30). The holder also looks at its own connection each time:
if PostgreSQL dropped it (a restart, a network cut), it pauses its scheduler before anyone else can
have taken over the lock. The holder names itself in ``application_name``, which is how
``shuxiang health`` tells who holds the scheduler.

SQLite (one machine): an flock on a file beside the database, the holder's name written in it.

Every worker runs an APScheduler that starts paused and is resumed only while it holds the lock:
on taking over, APScheduler runs what fell due while it was paused (within each job's
``misfire_grace_time``, coalesced), and the sweeps are idempotent (dedupe keys), so a job that
both the dead holder and the new one ran queues nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database, role_key, role_lock_file

log = logging.getLogger(__name__)

ROLE = "scheduler"
APP_PREFIX = "shuxiang-scheduler:"


class Pausable(Protocol):
    """What the leader drives: APScheduler's AsyncIOScheduler fits."""

    def resume(self) -> None: ...
    def pause(self) -> None: ...


def default_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_parts(name: str) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as classid (high half) and objid (low half)."""
    key = role_key(name)
    return key >> 32, key & 0xFFFFFFFF


class Leader:
    def __init__(
        self,
        db: Database,
        *,
        identity: str | None = None,
        name: str = ROLE,
        check_every_s: float = 5.0,
    ) -> None:
        self.db = db
        self.identity = (identity or default_identity())[:40]
        self.name = name
        self.check_every_s = check_every_s
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None
        self._stopping = asyncio.Event()

    @property
    def holding(self) -> bool:
        return self._conn is not None or self._fd is not None

    async def step(self) -> bool:
        """One look: keep the lock if still ours, else try to take it. True while holding."""
        if self.db.is_sqlite:
            return self._step_file()
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()
                return True
            except (SQLAlchemyError, OSError):
                log.warning("scheduler lock: connection lost, pausing the scheduler")
                await self._drop_connection()
        try:
            conn = await self.db.engine.connect()
        except (SQLAlchemyError, OSError):
            return False
        try:
            got = bool(
                await conn.scalar(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": role_key(self.name)}
                )
            )
            if got:
                await conn.execute(
                    text("SELECT set_config('application_name', :n, false)"),
                    {"n": APP_PREFIX + self.identity},
                )
            await conn.commit()
        except (SQLAlchemyError, OSError):
            with contextlib.suppress(Exception):
                await conn.invalidate()
            return False
        if not got:
            await conn.close()
            return False
        self._conn = conn
        log.info("scheduler lock taken by %s", self.identity)
        return True

    def _step_file(self) -> bool:
        if self._fd is not None:
            return True
        lock = role_lock_file(self.db.url, self.name)
        if lock is None:
            self._fd = -1  # a database only this process sees
            return True
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.identity.encode(), 0)
        self._fd = fd
        return True

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # A pooled connection would keep the session lock: never hand it back to the pool.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": role_key(self.name)}
                )
            await self._drop_connection()
        if self._fd is not None:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = None

    def stop(self) -> None:
        self._stopping.set()

    async def run(
        self,
        scheduler: Pausable,
        *,
        wait: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        """Until stopped: resume ``scheduler`` while holding the lock, pause it otherwise."""
        active = False
        try:
            while not self._stopping.is_set():
                holding = await self.step()
                if holding and not active:
                    log.info("%s now runs the scheduled jobs", self.identity)
                    scheduler.resume()
                elif active and not holding:
                    scheduler.pause()
                active = holding
                if wait is not None:
                    await wait(self.check_every_s)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self.check_every_s)
        finally:
            if active:
                scheduler.pause()
            await self.release()


async def scheduler_holder(db: Database, name: str = ROLE) -> str | None:
    """Who runs the scheduled jobs now (``host:pid``), None when nobody does."""
    if db.is_sqlite:
        lock = role_lock_file(db.url, name)
        if lock is None:
            return None
        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 100, 0).decode(errors="replace") or "?"
            return None  # nobody holds it exclusively
        finally:
            os.close(fd)
    high, low = lock_parts(name)
    async with db.transaction(read_only=True) as session:
        holder = await session.scalar(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock'"
                " AND l.classid = :high AND l.objid = :low AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"high": high, "low": low},
        )
    if holder is None:
        return None
    return str(holder).removeprefix(APP_PREFIX) or "?"
