"""``shuxiang report``, ``shuxiang stars`` and ``shuxiang suggestions`` at the terminal."""

from __future__ import annotations

import asyncio
import csv
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from bot.cli import app
from bot.config import load_settings
from sandbox.demo import load_sample_data, seed_history
from services.stats.figures import Scope, Stats, compute, period_for_dates
from storage.db import Database
from storage.migrate import upgrade
from storage.models import utcnow
from tests.stats_world import build_stats_world


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'report.sqlite3'}",
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def _migrated(env: dict[str, str]) -> Database:
    db = Database(env["SHUXIANG_DATABASE_URL"])
    await upgrade(db.engine)
    return db


async def _demo(env: dict[str, str], first: date, last: date) -> Stats:
    """The sandbox's sample library with its history; the figures the report should show."""
    db = await _migrated(env)
    settings = load_settings(_env_file=None, database_url=env["SHUXIANG_DATABASE_URL"])
    await load_sample_data(db)
    await seed_history(db, settings)
    async with db.transaction(read_only=True) as s:
        expected = await compute(
            s, Scope.school(), period_for_dates(first, last, settings.tz), tz=settings.tz
        )
    await db.dispose()
    return expected


def test_report_on_the_demo_data(env: dict[str, str], tmp_path: Path) -> None:
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    first = today - timedelta(days=90)
    expected = asyncio.run(_demo(env, first, today))
    assert expected.loans > 40  # the demo has a history to report on
    out = tmp_path / "report"
    args = ["report", "--from", first.isoformat(), "--to", today.isoformat(), "--out", str(out)]
    code, text = run(args, env)
    assert code == 0, text
    names = {p.name for p in out.iterdir()}
    assert {"report.pdf", "clc.png", "top_books.png", "classes.png"} <= names
    assert {"summary.csv", "top_books.csv", "top_readers.csv", "weeding.csv"} <= names
    pdf_text = "".join(p.extract_text() for p in PdfReader(out / "report.pdf").pages)
    assert "借阅量" in pdf_text and str(expected.loans) in pdf_text
    assert f"{expected.loans_per_student:.2f}" in pdf_text
    with (out / "top_books.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[1] == [expected.top_books[0].title, str(expected.top_books[0].count)]

    code, text = run([*args[:-2], "--out", str(tmp_path / "x"), "--format", "xlsx"], env)
    assert code == 0, text
    assert (tmp_path / "x" / "report.xlsx").is_file()


async def _empty(env: dict[str, str]) -> None:
    await (await _migrated(env)).dispose()


def test_report_refuses_bad_input(env: dict[str, str], tmp_path: Path) -> None:
    asyncio.run(_empty(env))
    out = str(tmp_path / "o")
    code, text = run(["report", "--from", "2026-13-01", "--out", out], env)
    assert code == 2 and "2026-13-01" in text
    code, text = run(["report", "--from", "2026-09-02", "--to", "2026-09-01", "--out", out], env)
    assert code == 2 and "结束日期不能早于开始日期" in text
    code, text = run(["report", "--from", "2026-09-01", "--scope", "九年级", "--out", out], env)
    assert code == 2 and "九年级" in text
    code, text = run(["report", "--from", "2026-09-01", "--format", "doc", "--out", out], env)
    assert code == 2 and "doc" in text


async def _world(env: dict[str, str]) -> None:
    db = await _migrated(env)
    await build_stats_world(db)
    await db.dispose()


def test_stars_and_suggestions_commands(env: dict[str, str]) -> None:
    asyncio.run(_world(env))
    code, text = run(["stars", "--month", "2026-09"], env)
    assert code == 0, text
    assert "高一(1)班：张一（2 本）" in text and "<b>" not in text
    code, text = run(["stars", "--month", "2026-09", "--monitors"], env)
    assert code == 0 and "已发出 6 条通知" in text
    code, text = run(["stars", "--month", "2026-9x"], env)
    assert code == 2 and "2026-9x" in text

    code, text = run(["suggestions", "list"], env)
    assert code == 0
    assert text.splitlines()[0] == "3 人\t哈利波特"
    code, text = run(["suggestions", "bought", "哈利波特"], env)
    assert code == 0 and "已通知 2 位" in text
    code, text = run(["suggestions", "declined", "哈利波特"], env)
    assert code == 1 and "哈利波特" in text
    code, text = run(["suggestions", "list"], env)
    assert "哈利波特" not in text
