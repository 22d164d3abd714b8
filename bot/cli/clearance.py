"""`shuxiang clearance`: graduation (or transfer) clearance, 毕业清还."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.runtime import run_with_db, settings_or_exit
from services.chase import ClearanceRow, clearance
from services.corners import Actor
from services.errors import ServiceError
from services.i18n import t
from storage.db import Database


def register(app: typer.Typer) -> None:
    app.command("clearance", help=t("cli_corners.help_clearance"))(clearance_command)


def render(rows: list[ClearanceRow], *, reminded: bool) -> str:
    if not rows:
        return t("clearance.none")
    lines = [t("clearance.title", count=len(rows))]
    for row in rows:
        books = "、".join(
            t("clearance.book", title=b.title, lost=t("clearance.lost") if b.lost else "")
            for b in row.books
        )
        lines.append(
            t(
                "clearance.line",
                class_name=row.class_name or "",
                name=row.name,
                card_no=row.card_no,
                books=books,
            )
        )
    if reminded:
        lines.append(t("clearance.reminded", count=len(rows)))
    return "\n".join(lines)


def clearance_command(
    grade: Annotated[str | None, typer.Option("--grade", help=t("cli_corners.help_grade"))] = None,
    card: Annotated[
        str | None, typer.Option("--card", help=t("cli_corners.help_clearance_card"))
    ] = None,
    no_remind: Annotated[
        bool, typer.Option("--no-remind", help=t("cli_corners.help_no_remind"))
    ] = False,
) -> None:
    """List graduating (or one transferring) student(s) who still owe books; remind each."""
    settings = settings_or_exit()

    async def body(db: Database) -> list[ClearanceRow]:
        async with db.transaction() as session:
            return await clearance(
                session,
                Actor.cli(),
                grade=grade,
                card_no=card,
                remind=not no_remind,
                tz=settings.tz,
            )

    try:
        rows = run_with_db(settings, body)
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(render(rows, reminded=not no_remind))
