"""Migrations: upgrade, downgrade to base, upgrade again, on both databases; models match."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Base
from tests.conftest import BACKENDS, _pg_admin, _pg_db_url


@pytest.fixture
async def empty_db(backend: str, tmp_path: Path) -> Database:
    if backend == "sqlite":
        return Database(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")
    name = f"shuxiang_mig_{os.getpid()}"
    try:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, ConnectionError) as exc:
        if os.environ.get("SHUXIANG_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip("PostgreSQL unreachable")
    return Database(_pg_db_url(name))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade(empty_db: Database) -> None:
    db = empty_db
    try:
        await upgrade(db.engine)
        assert await current_revision(db.engine) == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set(Base.metadata.tables)

        await downgrade(db.engine, "base")
        assert await current_revision(db.engine) is None
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()

        await upgrade(db.engine)
        assert await current_revision(db.engine) == head_revision()
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrations_match_models(empty_db: Database) -> None:
    """Autogenerate finds nothing to do: the migrations create exactly what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = empty_db
    try:
        await upgrade(db.engine)

        def diff(conn: Connection) -> list[object]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            return list(compare_metadata(ctx, Base.metadata))

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.dispose()
