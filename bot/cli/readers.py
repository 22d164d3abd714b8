"""`shuxiang readers`: binding codes and their printable sheets; a reader's endpoints, listed
and revoked."""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.cli import plugins
from bot.cli.runtime import run_with_db, settings_or_exit
from services.actor import Actor, Channel
from services.errors import ServiceError
from services.i18n import t
from services.readers.binding import (
    EndpointView,
    IssuedCode,
    endpoints_of,
    issue_codes,
    revoke_endpoints,
)
from services.readers.sheet import deep_link, web_link, write_binding_sheet
from storage.db import Database

CODES_COLUMNS = ("card_no", "name", "class_name", "code", "link")
readers_app = typer.Typer(help=t("cli.help_readers"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(readers_app, name="readers")


@readers_app.command("codes", help=t("cli.help_codes"))
def codes(
    class_names: Annotated[
        list[str] | None, typer.Option("--class", help=t("cli.help_codes_class"))
    ] = None,
    card: Annotated[list[str] | None, typer.Option("--card", help=t("cli.help_codes_card"))] = None,
    out: Annotated[Path, typer.Option("--out", help=t("cli.help_codes_out"))] = Path(
        "binding-codes.csv"
    ),
    bot_username: Annotated[str | None, typer.Option("--bot", help=t("cli.help_codes_bot"))] = None,
) -> None:
    """One-time binding codes for classes or for given readers: a CSV and a printable PDF sheet
    (one page per class, a QR code of the bot's deep link per reader)."""
    settings = settings_or_exit()
    # On the demo's database the sandbox's bot (an entry point: bot/ never names the sandbox).
    configured = bot_username or settings.bot_username or plugins.bot_username(settings) or ""
    username = configured.strip().lstrip("@")
    # The web chat's sign-in link too, when the school runs it (alone: no bot name needed).
    web_url = settings.web_base_url()
    needed = bool(username) or not web_url
    if needed and not re.fullmatch(r"[A-Za-z0-9_]{4,32}", username):  # Telegram's name rules
        problem = t("binding_sheet.bad_bot", name=username) if username else None
        typer.secho(problem or t("binding_sheet.need_bot"), fg=typer.colors.RED, err=True)
        raise typer.Exit(1)

    async def body(db: Database) -> list[IssuedCode]:
        async with db.transaction() as session:  # all classes or none
            if not class_names:
                return await issue_codes(
                    session, policy=settings.loan_policy(), card_nos=card or ()
                )
            issued: list[IssuedCode] = []
            for name in dict.fromkeys(class_names):
                issued += await issue_codes(
                    session, policy=settings.loan_policy(), class_name=name, card_nos=card or ()
                )
            return issued

    try:
        issued = run_with_db(settings, body)
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    # Chinese headers, and a BOM so that Excel on a Chinese Windows opens it as UTF-8.
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        columns = CODES_COLUMNS + (("web_link",) if web_url else ())
        writer.writerow([t(f"cli_codes.column_{c}") for c in columns])
        for c in issued:
            link = deep_link(username, c.code) if username else ""
            web = [web_link(web_url, c.code)] if web_url else []
            writer.writerow([c.card_no, c.name, c.class_name or "", c.code, link, *web])
    sheet = out.with_suffix(".pdf")
    try:
        write_binding_sheet(
            sheet,
            issued,
            bot_username=username,
            web_url=web_url,
            issued_on=datetime.now(settings.tz).date(),
        )
    except ServiceError as exc:  # no CJK font: the CSV is written, say how to get the sheet
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(t("cli.codes_written", count=len(issued), csv=out, sheet=sheet))


def _endpoint_line(e: EndpointView, tz: ZoneInfo) -> str:
    def local(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    unreachable = ""
    if e.unreachable_at is not None:
        reason = e.unreachable_reason or ""
        unreachable = t("cli.endpoint_unreachable", since=local(e.unreachable_at), reason=reason)
    return t(
        "cli.endpoint_line",
        channel=t(f"cli.channel_{e.channel}"),
        address=e.address,
        bound_at=local(e.bound_at),
        unreachable=unreachable,
    )


@readers_app.command("endpoints", help=t("cli.help_endpoints"))
def endpoints(
    card: Annotated[str, typer.Argument(help=t("cli.help_endpoint_card"))],
) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> list[EndpointView]:
        async with db.transaction(read_only=True) as session:
            return await endpoints_of(session, Actor.cli(), card)

    try:
        found = run_with_db(settings, body)
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    if not found:
        typer.echo(t("cli.endpoints_none", card_no=card))
        return
    typer.echo("\n".join(_endpoint_line(e, settings.tz) for e in found))


@readers_app.command("revoke", help=t("cli.help_revoke"))
def revoke(
    card: Annotated[str, typer.Argument(help=t("cli.help_endpoint_card"))],
    channel: Annotated[
        str | None, typer.Option("--channel", help=t("cli.help_endpoint_channel"))
    ] = None,
) -> None:
    settings = settings_or_exit()
    if channel is not None and channel not in {c.value for c in Channel}:
        typer.secho(t("cli.endpoint_bad_channel", channel=channel), fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    async def body(db: Database) -> int:
        async with db.transaction() as session:
            return await revoke_endpoints(session, Actor.cli(), card, channel=channel)

    try:
        count = run_with_db(settings, body)
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(t("cli.endpoints_revoked", card_no=card, count=count))
