"""The librarian's terminal commands for class corners and graduation clearance."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import cli as run
from tests.factories import sample_school

CLASS = "初二(1)班"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return sample_school(tmp_path / "corners.sqlite3")


def test_monitors(env: dict[str, str]) -> None:
    code, text = run(["corners", "monitor", "add", "J24101", "--class", CLASS], env)
    assert code == 0 and "已任命" in text, text
    assert run(["corners", "monitor", "add", "J24102", "--class", CLASS], env)[0] == 0
    code, text = run(["corners", "monitor", "add", "J24103", "--class", CLASS], env)
    assert code == 1 and "已经有 2 位图书管理员" in text
    code, text = run(["corners", "monitor", "add", "J24103", "--class", "初二(3)班"], env)
    assert code == 1 and "不是初二(3)班的学生" in text
    code, text = run(["corners", "monitor", "list"], env)
    assert code == 0 and "J24101" in text and "J24102" in text
    code, text = run(["corners", "monitor", "remove", "J24101"], env)
    assert code == 0 and CLASS in text
    assert "J24101" not in run(["corners", "monitor", "list", "--class", CLASS], env)[1]


def test_batch_from_a_file_is_all_or_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    good = tmp_path / "good.txt"
    good.write_text("SX10001\nSX10005\n", encoding="utf-8")
    # Nobody could confirm a batch to a class without a monitor: refused, with how to add one.
    code, text = run(["corners", "batch", "--class", CLASS, "--file", str(good)], env)
    assert code == 1 and "还没有班级图书管理员" in text and "corners monitor add" in text, text
    assert run(["corners", "monitor", "add", "J24101", "--class", CLASS], env)[0] == 0
    bad = tmp_path / "bad.txt"
    bad.write_text("SX10001\nNOPE1\nSX10005\nSX10001\n", encoding="utf-8")
    code, text = run(["corners", "batch", "--class", CLASS, "--file", str(bad)], env)
    assert (
        code == 1 and "第 2 行 NOPE1：没有这个条码" in text and "第 4 行 SX10001：重复" in text
    ), text
    assert "已发出" not in text
    code, text = run(["corners", "status", "--class", CLASS], env)
    assert "没有待确认的一批" in text
    code, text = run(["corners", "batch", "--class", CLASS, "--file", str(good)], env)
    assert code == 0 and "送去 2 册" in text, text
    code, text = run(["corners", "status", "--class", CLASS], env)
    assert "待确认 2 / 共 2 册" in text and "SX10005" in text


def test_proposal_dry_run_saves_nothing(env: dict[str, str]) -> None:
    assert run(["corners", "monitor", "add", "J24101", "--class", CLASS], env)[0] == 0
    code, text = run(["corners", "batch", "--class", CLASS, "--propose", "12", "--dry-run"], env)
    assert code == 0 and "这一批 12 册" in text and "未发出" in text, text
    assert "没有待确认的一批" in run(["corners", "status", "--class", CLASS], env)[1]
    code, text = run(["corners", "batch", "--class", CLASS, "--propose", "12"], env)
    assert code == 0 and "送去 12 册" in text


def test_clearance_and_chase(env: dict[str, str]) -> None:
    assert run(["circ", "checkout", "J24101", "SX10001"], env)[0] == 0
    code, text = run(["clearance", "--grade", "初二"], env)
    assert code == 0 and "1 位学生" in text and "J24101" in text and "红楼梦" in text, text
    assert "没有提醒学生" in text and "--send" in text  # listing never messages anyone
    code, text = run(["clearance", "--card", "J24101", "--send"], env)
    # Nobody is bound in this library: nothing is queued to fail, the student is named instead.
    assert code == 0 and "已提醒 0 位学生" in text and "1 位无法送达" in text, text
    assert "J24101" in text.split("无法送达")[1]
    assert run(["circ", "return", "SX10001"], env)[0] == 0
    assert "全部清还完毕" in run(["clearance", "--grade", "初二"], env)[1]
    code, text = run(["clearance"], env)
    assert code == 1 and "--grade" in text
    code, text = run(["corners", "chase"], env)
    assert code == 0 and "0 份催书单" in text


async def test_weekly_chase_is_scheduled_when_the_school_says(tmp_path: Path) -> None:
    from apscheduler.triggers.cron import CronTrigger

    from bot.app import build_app
    from bot.config import ConfigError, load_settings
    from storage.db import Database

    settings = load_settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}",
        chase_weekday="mon",
        chase_time="07:45",
    )
    db = Database(settings.checked_database_url())
    app = build_app(settings, token="1:x", db=db)
    try:
        job = app.scheduler.get_job("weekly-chase")
        assert job is not None and isinstance(job.trigger, CronTrigger)
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "7", "45")
    finally:
        await app.close()
    with pytest.raises(ConfigError, match="CHASE_TIME"):
        load_settings(_env_file=None, chase_time="25:00")
