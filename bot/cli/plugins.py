"""What other packages add to ``shuxiang`` through entry points (pyproject.toml), so that bot/
never names them: the sandbox's ``demo`` command group, and who the bot is on the demo's
database. Entry points are read from the installed metadata: a new one needs ``make install``
(``pip install -e .``) before the command line sees it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, cast

import typer

if TYPE_CHECKING:
    from bot.config import Settings

CLI_GROUPS = "shuxiang.cli"
BOT_USERNAMES = "shuxiang.bot_username"

Register = Callable[[typer.Typer], None]
BotUsername = Callable[["Settings"], "str | None"]


def _loaded(group: str, found: Iterable[EntryPoint] | None) -> list[object]:
    # By name, so that the help lists the groups in the same order on every machine.
    points = entry_points(group=group) if found is None else [p for p in found if p.group == group]
    return [point.load() for point in sorted(points, key=lambda p: p.name)]


def command_groups(found: Iterable[EntryPoint] | None = None) -> list[Register]:
    """Each ``shuxiang.cli`` entry point's ``register(app)``; ``found`` stands in for the
    installed entry points (tests)."""
    return [cast(Register, register) for register in _loaded(CLI_GROUPS, found)]


def bot_username(settings: Settings, found: Iterable[EntryPoint] | None = None) -> str | None:
    """The first user name a ``shuxiang.bot_username`` entry point knows for ``settings``'
    database (the sandbox's bot on the demo's), else None."""
    for known in _loaded(BOT_USERNAMES, found):
        name = cast(BotUsername, known)(settings)
        if name:
            return name
    return None
