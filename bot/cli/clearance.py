"""`shuxiang clearance`: graduation (or transfer) clearance, 毕业清还."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.runtime import run_with_db, settings_or_exit
from services.actor import Actor
from services.corners.chase import ClearanceRow, ClearanceSent, clearance, remind_owing
from services.errors import ServiceError
from services.i18n import t
from storage.db import Database


def register(app: typer.Typer) -> None:
    app.command("clearance", help=t("cli_corners.help_clearance"))(clearance_command)


def render(rows: list[ClearanceRow], sent: ClearanceSent | None = None) -> str:
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
    lines += sent_lines(sent) if sent is not None else [t("clearance.not_sent")]
    return "\n".join(lines)


def sent_lines(sent: ClearanceSent) -> list[str]:
    """How many were reminded now, earlier today, and who cannot be reached (to be told)."""
    lines = [t("clearance.sent", count=sent.sent)]
    if sent.earlier:
        lines.append(t("clearance.sent_earlier", count=sent.earlier))
    if sent.unreachable:
        names = t("scopes.separator").join(
            t("clearance.unreachable_name", name=r.name, card_no=r.card_no)
            for r in sent.unreachable
        )
        lines.append(t("clearance.unreachable", count=len(sent.unreachable), names=names))
    return lines


def clearance_command(
    grade: Annotated[str | None, typer.Option("--grade", help=t("cli_corners.help_grade"))] = None,
    card: Annotated[
        str | None, typer.Option("--card", help=t("cli_corners.help_clearance_card"))
    ] = None,
    send: Annotated[bool, typer.Option("--send", help=t("cli_corners.help_send"))] = False,
) -> None:
    """List graduating (or one transferring) student(s) who still owe books; with ``--send``
    remind each who can be reached, and say who cannot."""
    settings = settings_or_exit()

    async def body(db: Database) -> tuple[list[ClearanceRow], ClearanceSent | None]:
        async with db.transaction() as session:
            rows = await clearance(
                session, Actor.system(), grade=grade, card_no=card, tz=settings.tz
            )
            if not send or not rows:
                return rows, None
            return rows, await remind_owing(session, Actor.system(), rows, tz=settings.tz)

    try:
        rows, sent = run_with_db(settings, body)
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(render(rows, sent))
