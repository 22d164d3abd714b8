"""The ``shuxiang`` command: one Typer app, one module per command group, and the groups other
packages declare as ``shuxiang.cli`` entry points (the sandbox's ``demo``: bot/ never names it)."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint

import typer

from bot.cli import plugins
from bot.cli.chrome import ChineseGroup
from services.i18n import t


def build_app(found: Iterable[EntryPoint] | None = None) -> typer.Typer:
    """The command line with every group; ``found`` stands in for the installed entry points."""
    app = typer.Typer(
        cls=ChineseGroup,  # usage, help and click's errors in Chinese
        help=t("cli.help_app"),
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
    )
    # Each group lives in its own module so the groups grow independently.
    from bot.cli import (
        calendar,
        clearance,
        corners,
        db,
        desk,
        health,
        imports,
        lists,
        readers,
        recommend,
        report,
        run,
        scheduler,
        search,
        suggestions,
    )

    run.register(app)
    # Right after `run`, so that the help lists `demo` second, where a newcomer looks first.
    for register in plugins.command_groups(found):
        register(app)
    groups = (
        db,
        imports,
        readers,
        desk,
        search,
        corners,
        clearance,
        report,
        suggestions,
        recommend,
        lists,
        scheduler,
        calendar,
        health,
    )
    for group in groups:
        group.register(app)
    return app


app = build_app()


def main() -> None:
    app()
