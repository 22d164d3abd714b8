"""`shuxiang readers`: binding codes and their printable sheets."""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.runtime import run_with_db, settings_or_exit
from services.errors import ServiceError
from services.i18n import t
from services.readers import IssuedCode, issue_codes
from storage.db import Database

readers_app = typer.Typer(help=t("cli.help_readers"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(readers_app, name="readers")


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


def write_sheet(path: Path, codes: list[IssuedCode], bot_username: str) -> None:
    """A printable A4 sheet: one cut-out slip per reader."""
    slips = []
    for c in codes:
        link = deep_link(bot_username, c.code)
        slips.append(
            '<div class="slip">'
            f"<b>{html.escape(c.name)}</b> {html.escape(c.class_name or '')}<br>"
            f"{html.escape(t('cli.codes_sheet_card', card_no=c.card_no))}<br>"
            f'<span class="code">{c.code}</span><br>'
            f"<small>{html.escape(t('cli.codes_sheet_hint', code=c.code))}<br>{link}<br>"
            f"{t('cli.codes_sheet_expires', date=c.expires_at.date().isoformat())}</small>"
            "</div>"
        )
    title = html.escape(t("cli.codes_sheet_title"))
    path.write_text(
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
        f"<title>{title}</title><style>"
        "body{font-family:sans-serif;margin:1cm}.slip{display:inline-block;width:8.5cm;"
        "border:1px dashed #888;padding:.4cm;margin:.2cm;vertical-align:top}"
        ".code{font:bold 20pt monospace;letter-spacing:2px}"
        f"</style><h1>{title}</h1>{''.join(slips)}</html>",
        encoding="utf-8",
    )


@readers_app.command("codes", help=t("cli.help_codes"))
def codes(
    class_name: Annotated[
        str | None, typer.Option("--class", help=t("cli.help_codes_class"))
    ] = None,
    card: Annotated[list[str] | None, typer.Option("--card", help=t("cli.help_codes_card"))] = None,
    out: Annotated[Path, typer.Option("--out", help=t("cli.help_codes_out"))] = Path(
        "binding-codes.csv"
    ),
    bot_username: Annotated[str | None, typer.Option("--bot", help=t("cli.help_codes_bot"))] = None,
) -> None:
    """One-time binding codes for a class or for given readers: a CSV and a printable sheet."""
    settings = settings_or_exit()
    username = (bot_username or settings.bot_username).lstrip("@")

    async def body(db: Database) -> list[IssuedCode]:
        async with db.transaction() as session:
            return await issue_codes(
                session,
                policy=settings.loan_policy(),
                class_name=class_name,
                card_nos=card or (),
            )

    try:
        issued = run_with_db(settings, body)
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["card_no", "name", "class_name", "code", "link"])
        for c in issued:
            writer.writerow(
                [c.card_no, c.name, c.class_name or "", c.code, deep_link(username, c.code)]
            )
    sheet = out.with_suffix(".html")
    write_sheet(sheet, issued, username)
    typer.echo(t("cli.codes_written", count=len(issued), csv=out, sheet=sheet))
