"""The ``shuxiang`` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from bot.cli.chrome import ChineseGroup
from services.i18n import t

app = typer.Typer(
    cls=ChineseGroup,  # usage, help and click's errors in Chinese
    help=t("cli.help_app"),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _register_command_groups() -> None:
    # Each group lives in its own module so the groups grow independently.
    from bot.cli import (
        calendar,
        clearance,
        corners,
        db,
        desk,
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

    groups = (
        run,
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
    )
    for group in groups:
        group.register(app)


_register_command_groups()


def main() -> None:
    app()
