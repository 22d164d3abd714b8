"""The command line speaks Chinese (issue 19, item 14): click's own usage, help and errors,
statuses, push kinds and failure reasons, CSV headers; ``report`` starts at this term."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer import _click

from bot.cli import app
from sandbox.sample_data import CATALOGUE_CSV, READERS_CSV
from storage.db import Database
from storage.models import ClassCorner, Copy, CopyStatus, Notification, OutboxStatus, Reader
from tests.factories import invoke

ENGLISH_CHROME = ("Usage:", "Options:", "Arguments:", "Commands:", "Show this message", "Error:")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'zh.sqlite3'}",
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    return invoke(args, env, prog_name="shuxiang")


def _paths(command: _click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, child in getattr(command, "commands", {}).items():
        found += _paths(child, (*path, name))
    return found


def test_every_help_page_is_chinese() -> None:
    paths = _paths(typer.main.get_command(app))
    assert len(paths) > 40  # every group and command, not a sample
    for path in paths:
        code, text = run([*path, "--help"])
        assert code == 0 and text.startswith("用法：shuxiang"), (path, text)
        assert "选项：" in text and "显示本帮助并退出。" in text, (path, text)
        for english in (*ENGLISH_CHROME, "[OPTIONS]", "[default:", "[required]", "<str>"):
            assert english not in text, (path, english, text)
    code, text = run(["circ", "checkout", "--help"])
    assert "用法：shuxiang circ checkout [选项] <证号> <条码>" in text and "参数：" in text
    assert "[默认：5；1<=x<=100]" in run(["report", "--help"])[1]
    assert "命令：" in run([])[1]  # no arguments: the help, in Chinese


def test_click_errors_are_chinese() -> None:
    cases = {
        ("corners", "status"): "错误：缺少选项 '--class'。",
        ("corners", "status", "--class", "x", "--bogus"): "错误：没有这个选项：--bogus",
        ("recommend", "-n", "abc"): "错误：'-n' 的值不正确：应为整数",
        ("recommend", "-n", "0"): "错误：'-n' 的值不正确：不能小于 1",
        ("nosuch",): "错误：没有这个命令：nosuch。",
        ("corners", "statu"): "你是不是要找：'status'？",
        ("corners", "status", "--class"): "错误：选项 --class 需要一个值。",
        ("circ", "checkout"): "错误：缺少参数 '证号'。",
        ("circ", "checkout", "a", "b", "c"): "错误：多余的参数：c",
    }
    for args, says in cases.items():
        code, text = run(list(args))
        assert code == 2 and says in text, (args, text)
        for english in (*ENGLISH_CHROME, "Try '", "Invalid value", "Missing", "No such"):
            assert english not in text, (args, english, text)
    code, text = run(["circ", "checkout"])
    assert text.startswith("用法：shuxiang circ checkout [选项] <证号> <条码>\n查看帮助：")


FAILURES = ("no Telegram binding", "unreachable", "403: Forbidden: bot was blocked by the user")


async def _listings(env: dict[str, str]) -> None:
    """A corner holding a copy and a damaged one; three failed pushes."""
    db = Database(env["SHUXIANG_DATABASE_URL"])
    try:
        async with db.transaction() as s:
            reader = await s.scalar(select(Reader).order_by(Reader.id).limit(1))
            assert reader is not None
            corner = ClassCorner(class_name="初二(1)班")
            s.add(corner)
            await s.flush()
            for barcode, status in (("SX10001", CopyStatus.IN_CORNER), ("SX10005", "damaged")):
                copy = await s.scalar(select(Copy).where(Copy.barcode == barcode))
                assert copy is not None
                copy.status, copy.corner_id = str(status), corner.id
            for n, error in enumerate(FAILURES):
                s.add(
                    Notification(
                        kind="clearance_reminder",
                        reader_id=reader.id,
                        dedupe_key=f"k{n}",
                        status=OutboxStatus.FAILED.value,
                        last_error=error,
                    )
                )
    finally:
        await db.dispose()


def test_statuses_kinds_and_reasons_are_words(env: dict[str, str], tmp_path: Path) -> None:
    assert run(["import", "catalogue", str(CATALOGUE_CSV)], env)[0] == 0
    assert run(["import", "readers", str(READERS_CSV)], env)[0] == 0
    asyncio.run(_listings(env))
    code, text = run(["corners", "status", "--class", "初二(1)班"], env)
    assert code == 0 and "在班级图书角" in text and "破损待修" in text, text
    assert "in_corner" not in text and "damaged" not in text
    code, text = run(["outbox", "failed"], env)
    assert code == 0 and "毕业清还提醒" in text and "clearance_reminder" not in text, text
    assert "读者没有绑定书香" in text and "读者屏蔽了机器人" in text
    assert "no Telegram binding" not in text and "Forbidden" not in text
    assert text.startswith("编号\t类型\t证号\t姓名\t原因")
    code, text = run(["scheduler", "--list"], env)
    assert code == 0 and "due-soon\t每天 07:30\t" in text and "weekly\t每周五 16:00\t" in text
    assert "cron[" not in text and "interval[" not in text


def test_report_without_from_starts_at_this_term(env: dict[str, str], tmp_path: Path) -> None:
    assert run(["import", "readers", str(READERS_CSV)], env)[0] == 0
    out = tmp_path / "r"
    code, text = run(["report", "--to", "2026-12-01", "--out", str(out)], env)
    assert code == 0, text
    summary = (out / "summary.csv").read_text(encoding="utf-8-sig")
    assert "2026-09-01 至 2026-12-01" in summary, summary
    code, text = run(["report", "--to", "2027-03-10", "--out", str(out)], env)
    assert "2027-02-01 至 2027-03-10" in (out / "summary.csv").read_text(encoding="utf-8-sig")


def test_readers_codes_on_the_demo_database(env: dict[str, str], tmp_path: Path) -> None:
    """The demo's database (its sandbox lock beside it) gets links to the sandbox's bot."""
    assert run(["import", "readers", str(READERS_CSV)], env)[0] == 0
    out = tmp_path / "codes.csv"
    args = ["readers", "codes", "--class", "初二(1)班", "--out", str(out)]
    code, text = run(args, {**env, "SHUXIANG_BOT_USERNAME": ""})
    assert code == 1 and "SHUXIANG_BOT_USERNAME" in text  # not a demo: the name is needed
    (tmp_path / "zh.sqlite3.lock").touch()  # what `shuxiang demo` leaves beside its database
    code, text = run(args, {**env, "SHUXIANG_BOT_USERNAME": ""})
    assert code == 0, text
    assert "https://t.me/shuxiang_sandbox_bot?start=" in out.read_text(encoding="utf-8-sig")
