"""Shared fixtures: a migrated database on SQLite and on PostgreSQL for every storage/service test.

PostgreSQL: one database per test session (named after the pid, so parallel runs don't collide),
migrated once and truncated before each test.

Outside resources (PostgreSQL, Redis, Chromium and its driver, the shared data in ../shared/data)
may be missing on a laptop: a test that needs one is skipped there. With
SHUXIANG_TESTS_REQUIRE_ALL=1 (CI, .ci/run) it fails instead. Every such skip goes through
:func:`resource_missing` (or the ``needs`` mark, :func:`needs`), never a bare ``pytest.skip``.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import text

from nlp.search import SearchEngine
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Base

PG_ADMIN_URL = os.environ.get(
    "SHUXIANG_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SHUXIANG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# SHUXIANG_REQUIRE_PG is this variable's old name (it came to govern more than PostgreSQL): still
# honoured, as an alias, for one release after 0.1.0; remove it then.
REQUIRE_ALL = "1" in (
    os.environ.get("SHUXIANG_TESTS_REQUIRE_ALL"),
    os.environ.get("SHUXIANG_REQUIRE_PG"),
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# jieba's dictionary cache, shared by every test, worker and process the tests start (through
# SHUXIANG_CACHE_DIR): built once, where each test's own data folder rebuilt it (~1.5 s) every time.
JIEBA_CACHE = Path(tempfile.gettempdir()) / f"shuxiang-tests-{getpass.getuser()}" / "cache"


def resource_missing(message: str) -> NoReturn:
    """The test cannot run for want of an outside resource: skip it, or fail it when
    SHUXIANG_TESTS_REQUIRE_ALL=1 (there everything must run)."""
    if REQUIRE_ALL:
        pytest.fail(f"{message} (required: SHUXIANG_TESTS_REQUIRE_ALL=1)", pytrace=False)
    pytest.skip(message)


def needs(present: bool, reason: str) -> pytest.MarkDecorator:
    """A mark for a test (or a module's ``pytestmark``) that needs an outside resource: when
    ``present`` is false, :func:`resource_missing` with ``reason`` (in place of ``skipif``)."""
    return pytest.mark.needs(present=present, reason=reason)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("SHUXIANG_CACHE_DIR", str(JIEBA_CACHE))
    config.addinivalue_line(
        "markers",
        "needs(present, reason): an outside resource; skipped without it, failed without it "
        "when SHUXIANG_TESTS_REQUIRE_ALL=1 (tests/conftest.py's needs())",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An order that keeps both cores busy to the end under xdist (``make test`` hands tests out
    two at a time, in this order): the ``slow`` tests first (tens of seconds each, mostly
    waiting: a rate-limited broadcast, a property test), each beside a quick one so that no
    worker gets two; then the e2e tests (real processes and sockets, which wait) spread evenly
    among the CPU-bound rest, so that no worker is left with a run of waiting tests."""
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    waiting = [item for item in rest if item.nodeid.startswith("tests/e2e/")]
    busy = [item for item in rest if not item.nodeid.startswith("tests/e2e/")]
    order: list[pytest.Item] = []
    for item in slow:
        order.append(item)
        if busy:
            order.append(busy.pop(0))
    step = len(busy) / (len(waiting) + 1)
    spread = 0
    for n, item in enumerate(busy, 1):
        order.append(item)
        while spread < len(waiting) and (spread + 1) * step <= n:
            order.append(waiting[spread])
            spread += 1
    order += waiting[spread:]
    items[:] = order


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        if not mark.kwargs["present"]:
            resource_missing(str(mark.kwargs["reason"]))


def _pg_db_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a migrated PostgreSQL database private to this test session."""
    name = f"shuxiang_test_{os.getpid()}"
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, ConnectionError) as exc:
        resource_missing(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
    url = _pg_db_url(name)

    async def migrate() -> None:
        db = Database(url)
        try:
            await upgrade(db.engine)
        finally:
            await db.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def search_engine() -> SearchEngine:
    """One search engine for the test session (jieba loads once, ~0.5 s from the shared cache)."""
    return SearchEngine(cache_dir=JIEBA_CACHE)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating every time would be slow)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(db.engine)
        finally:
            # Closing the last connection checkpoints the WAL into the file we copy.
            await db.dispose()

    asyncio.run(migrate())
    return path


async def truncate_all(db: Database) -> None:
    """Empty every table the previous test used and restart its ids. TRUNCATE costs ~0.1 s a
    call (new files for every table named), DELETE of a test's few rows next to nothing: so only
    tables holding rows are emptied, children first, and only sequences that moved restart."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]  # children first
    holding = " UNION ALL ".join(
        # Names from our own metadata, not input.
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")"  # noqa: S608
        for name in tables
    )
    moved = (
        "SELECT schemaname || '.' || sequencename FROM pg_sequences"
        " WHERE schemaname = 'public' AND last_value IS NOT NULL"
    )
    async with db.engine.begin() as conn:
        full = set((await conn.execute(text(holding))).scalars())
        for name in (t for t in tables if t in full):
            await conn.execute(text(f'DELETE FROM "{name}"'))  # noqa: S608
        for sequence in (await conn.execute(text(moved))).scalars():
            await conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "shuxiang.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
async def db(db_url: str, backend: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    if backend == "postgresql":
        await truncate_all(database)
    try:
        yield database
    finally:
        await database.dispose()


@dataclass(frozen=True)
class RedisSpace:
    url: str
    prefix: str  # private to one test: parallel tests never see each other's keys


@pytest.fixture
def redis() -> Iterator[RedisSpace]:
    """The test Redis with a key prefix of the test's own; its keys are deleted afterwards.
    (A plain fixture, so that the async e2e harness can ask for it.)"""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        client.close()
        resource_missing(f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})")
    space = RedisSpace(REDIS_URL, f"shuxiang-test-{uuid.uuid4().hex}")
    try:
        yield space
    finally:
        keys = list(client.scan_iter(match=f"{space.prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
