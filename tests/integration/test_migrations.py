"""Migrations: upgrade, downgrade to base, upgrade again, on both databases; models match."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Base
from tests.conftest import BACKENDS, _pg_admin, _pg_db_url, resource_missing


@pytest.fixture
async def empty_db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        yield Database(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")
        return
    name = f"shuxiang_mig_{os.getpid()}"
    try:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, ConnectionError) as exc:
        resource_missing(f"PostgreSQL unreachable: {exc}")
    db = Database(_pg_db_url(name))
    yield db
    await db.dispose()  # the tests dispose of it too: a second time is harmless
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def _revisions() -> list[tuple[str, str | None]]:
    """(revision, down_revision) from the first to the head."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    ordered = list(scripts.walk_revisions("base", "heads"))
    ordered.reverse()
    return [(s.revision, s.down_revision) for s in ordered]  # type: ignore[misc]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_stairway_each_revision_up_down_up(empty_db: Database) -> None:
    """Each revision on its own: upgrade to it, downgrade one step, upgrade again; the schema after
    the round trip is the schema before it."""
    db = empty_db
    revisions = _revisions()
    assert [r for r, _ in revisions][:2] == ["0001", "0002"]

    def schema(conn: Connection) -> dict[str, set[str]]:
        inspector = inspect(conn)
        return {
            table: {c["name"] for c in inspector.get_columns(table)}
            | {f"ix:{i['name']}" for i in inspector.get_indexes(table)}
            for table in _tables(conn)
        }

    try:
        for revision, down in revisions:
            await upgrade(db.engine, revision)
            async with db.engine.connect() as conn:
                up_schema = await conn.run_sync(schema)
            await downgrade(db.engine, down or "base")
            assert await current_revision(db.engine) == down
            await upgrade(db.engine, revision)
            assert await current_revision(db.engine) == revision
            async with db.engine.connect() as conn:
                assert await conn.run_sync(schema) == up_schema, revision
    finally:
        await db.dispose()


def test_db_revision_autogenerate_writes_the_next_numbered_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shuxiang db revision -m ... --autogenerate` against a database at the head of a copy of
    the migrations without the newest one writes that difference again, numbered after the head,
    and the result migrates to exactly the models."""
    import asyncio
    import shutil

    from typer.testing import CliRunner

    import storage.migrate
    from bot.cli import app

    migrations = tmp_path / "migrations"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(storage.migrate.MIGRATIONS, migrations, ignore=skip)
    *older, newest = sorted((migrations / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    newest.unlink()
    # Numbered after the remaining head (numbers the lead hands out may leave a gap).
    number = f"{int(older[-1].name[:4]) + 1:04d}"
    monkeypatch.setattr(storage.migrate, "MIGRATIONS", migrations)
    url = f"sqlite+aiosqlite:///{tmp_path / 'rev.sqlite3'}"
    env = {"SHUXIANG_DATABASE_URL": url, "SHUXIANG_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(app, ["db", "revision", "-m", "again", "--autogenerate"], env=env)
    assert result.exit_code == 0, result.output
    (written,) = (migrations / "versions").glob(f"{number}_again.py")
    source = written.read_text(encoding="utf-8")
    assert f'revision: str = "{number}"' in source or f"revision: str = '{number}'" in source
    assert "storage.models" not in source  # no import of our code in a migration
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0

    async def diff() -> list[object]:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        db = Database(url)
        try:
            assert await current_revision(db.engine) == number

            def compare(conn: Connection) -> list[object]:
                ctx = MigrationContext.configure(conn, opts={"compare_type": False})
                return list(compare_metadata(ctx, Base.metadata))

            async with db.engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await db.dispose()

    assert asyncio.run(diff()) == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_codes_stored_before_cleaning_are_cleaned(empty_db: Database) -> None:
    """0007: ``b0012 ``, full-width ``Ｓ１`` become ``B0012``, ``S1``; a clean form another row
    already has is left alone rather than merged or lost."""
    from sqlalchemy import select

    from storage.models import Copy, Reader
    from tests.factories import make_world

    db = empty_db
    try:
        await upgrade(db.engine, "0006")
        await make_world(
            db,
            records={"r1": ("追风筝的人", ["b0012 ", "B7", "b7", "C1"])},
            readers={"Ｓ１": ("张三", "student"), " t9": ("李老师", "teacher")},
        )
        await upgrade(db.engine)
        async with db.transaction(read_only=True) as s:
            barcodes = set(await s.scalars(select(Copy.barcode)))
            cards = set(await s.scalars(select(Reader.card_no)))
        assert barcodes == {"B0012", "B7", "b7", "C1"}
        assert cards == {"S1", "T9"}
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_endpoints_keep_every_binding_both_ways(empty_db: Database) -> None:
    """0011: every Telegram binding becomes the reader's own Telegram endpoint, its unreachable
    mark kept, and every queued push stays a Telegram push; downgrading gives the bindings back."""
    from datetime import datetime

    from sqlalchemy import text

    at = datetime(2026, 12, 1, 8)  # naive UTC, as the columns store it
    db = empty_db
    try:
        await upgrade(db.engine, "0010")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO readers (id, card_no, name, role, active, created_at, updated_at)"
                    " VALUES (1, 'S1', 'a', 'student', true, :t, :t),"
                    " (2, 'S2', 'b', 'student', true, :t, :t)"
                ),
                {"t": at},
            )
            await conn.execute(
                text(
                    "INSERT INTO telegram_bindings (reader_id, telegram_user_id, chat_id, bound_at,"
                    " unreachable_at, unreachable_reason) VALUES"
                    " (1, 9000000001, 9000000002, :t, NULL, NULL),"
                    " (2, 77, 77, :t, :t, 'Forbidden: bot was blocked by the user')"
                ),
                {"t": at},
            )
            await conn.execute(
                text(
                    "INSERT INTO notifications (kind, reader_id, dedupe_key, payload, status,"
                    " attempts, next_attempt_at, created_at)"
                    " VALUES ('notice', 1, 'notice:x:1', '{}', 'pending', 0, :t, :t)"
                ),
                {"t": at},
            )
        await upgrade(db.engine)
        async with db.engine.connect() as conn:
            endpoints = (
                await conn.execute(
                    text(
                        "SELECT channel, address, chat, reader_id, relation, unreachable_reason"
                        " FROM endpoints ORDER BY reader_id"
                    )
                )
            ).all()
            channels = (await conn.execute(text("SELECT channel FROM notifications"))).all()
        assert [tuple(e) for e in endpoints] == [
            ("telegram", "9000000001", "9000000002", 1, "self", None),
            ("telegram", "77", None, 2, "self", "Forbidden: bot was blocked by the user"),
        ]
        assert [c for (c,) in channels] == ["telegram"]
        await downgrade(db.engine, "0010")
        async with db.engine.connect() as conn:
            bindings = (
                await conn.execute(
                    text(
                        "SELECT reader_id, telegram_user_id, chat_id, unreachable_reason IS NULL"
                        " FROM telegram_bindings ORDER BY reader_id"
                    )
                )
            ).all()
        assert [tuple(b) for b in bindings] == [
            (1, 9000000001, 9000000002, True),
            (2, 77, 77, False),
        ]
    finally:
        await db.dispose()
