"""Command groups and hooks that other packages add to ``shuxiang`` through entry points
(bot/cli/plugins.py): found, loaded in a stable order, and never named by bot/ (the sandbox's
``demo`` comes in this way)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import build_app, plugins
from bot.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def register_hello(app: typer.Typer) -> None:
    """A fake plugin's command group."""

    @app.command("hello")
    def hello() -> None:
        typer.echo("你好")


def named_nobody(settings: Settings) -> str | None:
    return None


def named_fake_bot(settings: Settings) -> str | None:
    return "fake_school_bot"


def _point(name: str, function: str, group: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{function}", group=group)


def _commands(app: typer.Typer) -> list[str]:
    group = typer.main.get_group(app)
    return list(group.commands)


def test_a_declared_group_is_registered_and_runs() -> None:
    app = build_app([_point("fake", "register_hello", plugins.CLI_GROUPS)])
    result = CliRunner().invoke(app, ["hello"])
    assert result.exit_code == 0 and result.output == "你好\n", result.output
    # right after `run`, where `demo` has always been in the help
    assert _commands(app)[:2] == ["run", "hello"]


def test_without_entry_points_only_the_bots_own_groups() -> None:
    commands = _commands(build_app([]))
    assert "run" in commands and "db" in commands
    assert "demo" not in commands and "hello" not in commands


def test_groups_come_from_the_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        asked.append(group)
        return [_point("fake", "register_hello", group)]

    monkeypatch.setattr(plugins, "entry_points", fake_entry_points)
    assert "hello" in _commands(build_app())
    assert asked == [plugins.CLI_GROUPS]


def test_points_of_other_groups_are_left_alone() -> None:
    found = [_point("fake", "register_hello", "someone.else")]
    assert plugins.command_groups(found) == []


def test_the_sandbox_registers_demo() -> None:
    app = build_app([EntryPoint("sandbox", "sandbox.cli:register", plugins.CLI_GROUPS)])
    assert _commands(app)[:2] == ["run", "demo"]


def test_bot_username_is_the_first_a_hook_knows(tmp_path: Path) -> None:
    settings = load_settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}"
    )
    group = plugins.BOT_USERNAMES
    nobody = _point("a", "named_nobody", group)
    fake = _point("b", "named_fake_bot", group)
    assert plugins.bot_username(settings, [fake, nobody]) == "fake_school_bot"
    assert plugins.bot_username(settings, [nobody]) is None
    assert plugins.bot_username(settings, []) is None


def test_every_declared_entry_point_is_installed() -> None:
    """pyproject's entry points reach the command line only through the installed metadata."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for group, points in declared["project"]["entry-points"].items():
        installed = {p.name: p.value for p in entry_points(group=group)}
        for name, value in points.items():
            assert installed.get(name) == value, (
                f"entry point {group}:{name} is not installed: run `make install` "
                "(it re-runs `pip install -e .`)"
            )


def test_the_command_line_loads_no_sandbox_until_demo_starts() -> None:
    """sandbox/cli.py is loaded on every `shuxiang` run: the sandbox itself only by `demo`."""
    probe = (
        "import sys, bot.cli; "
        "assert 'sandbox.cli' in sys.modules; "
        "heavy = [m for m in sys.modules if m.startswith('sandbox.') and m != 'sandbox.cli']; "
        "assert not heavy, heavy"
    )
    done = subprocess.run(  # noqa: S603 — our own interpreter on a fixed probe
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
