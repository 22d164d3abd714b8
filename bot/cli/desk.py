"""`shuxiang circ`: the circulation desk at the terminal (checkout and return by barcode)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from bot.cli.runtime import run_with_db, settings_or_exit
from bot.config import Settings
from services import circulation
from services.actor import Actor
from services.errors import ServiceError
from services.i18n import t
from services.policy import calendar_days
from storage.db import Database

circ_app = typer.Typer(help=t("cli.help_circ"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(circ_app, name="circ")


@circ_app.command("checkout", help=t("cli.help_checkout"))
def checkout(
    card_no: Annotated[str, typer.Argument(help=t("cli.help_checkout_card"))],
    barcode: Annotated[str, typer.Argument(help=t("cli.help_barcode"))],
    from_corner: Annotated[
        bool, typer.Option("--from-corner", help=t("cli.help_checkout_from_corner"))
    ] = False,
) -> None:
    """Lend one copy to a reader."""
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction() as session:
            done = await circulation.checkout(
                session,
                actor=Actor.cli(),
                card_no=card_no,
                barcode=barcode,
                policy=settings.loan_policy(),
                from_corner=from_corner,
            )
        return t(
            "cli.checkout_done",
            title=done.title,
            barcode=done.barcode,
            name=done.reader_name,
            card_no=done.card_no,
            due=done.due_at.astimezone(settings.tz).date().isoformat(),
        )

    _run_desk(settings, body)


@circ_app.command("return", help=t("cli.help_return"))
def return_(barcode: Annotated[str, typer.Argument(help=t("cli.help_barcode"))]) -> None:
    """Return a copy by barcode; say so when it goes to the hold shelf."""
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction() as session:
            done = await circulation.return_copy(
                session, actor=Actor.cli(), barcode=barcode, policy=settings.loan_policy()
            )
        lines = [
            t(
                "cli.return_done",
                title=done.title,
                barcode=done.barcode,
                name=done.reader_name,
                card_no=done.card_no,
            )
        ]
        late = calendar_days(done.due_at, done.returned_at, settings.tz)
        if late:
            lines.append(t("cli.return_overdue", days=late))
        if done.held_for_name:
            key = "cli.return_hold_office" if done.deliver_to_office else "cli.return_hold"
            lines.append(t(key, name=done.held_for_name, card_no=done.held_for_card))
        return "\n".join(lines)

    _run_desk(settings, body)


def _run_desk(settings: Settings, body: Callable[[Database], Awaitable[str]]) -> None:
    try:
        typer.echo(run_with_db(settings, body))
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
