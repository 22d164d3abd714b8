"""Shared fixtures: a migrated database on SQLite and on PostgreSQL for every storage/service test.

PostgreSQL: one database per test session (named after the pid, so parallel runs don't collide),
migrated once and truncated before each test. With SHUXIANG_REQUIRE_PG=1 (CI) an unreachable server
fails the run instead of skipping; the same holds for Redis (the ``redis`` fixture).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

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
REQUIRE_PG = os.environ.get("SHUXIANG_REQUIRE_PG") == "1"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


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
        message = f"PostgreSQL is not reachable at 127.0.0.1:5432 ({type(exc).__name__})"
        if REQUIRE_PG:
            pytest.fail(message)
        pytest.skip(message)
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
def search_engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    """One search engine for the test session (jieba loads once, ~1.5 s)."""
    return SearchEngine(cache_dir=tmp_path_factory.mktemp("jieba"))


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
    names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


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
        message = f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})"
        if REQUIRE_PG:
            pytest.fail(message)
        pytest.skip(message)
    space = RedisSpace(REDIS_URL, f"shuxiang-test-{uuid.uuid4().hex}")
    try:
        yield space
    finally:
        keys = list(client.scan_iter(match=f"{space.prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
