"""``shuxiang suggestions``: purchase suggestions by title; mark one bought or declined."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.runtime import fail, run_with_db, settings_or_exit
from services.actor import Actor
from services.errors import ServiceError
from services.i18n import t
from storage.db import Database
from storage.models import SuggestionStatus

suggestions_app = typer.Typer(help=t("stats.suggest.cli_help"), no_args_is_help=True)
Query = Annotated[str, typer.Argument(help=t("stats.suggest.cli_help_query"))]


def register(app: typer.Typer) -> None:
    app.add_typer(suggestions_app, name="suggestions")


@suggestions_app.command("list", help=t("stats.suggest.cli_help_list"))
def list_() -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        from services.suggestions import pending_groups

        async with db.transaction(read_only=True) as session:
            groups = await pending_groups(session, Actor.system())
        if not groups:
            return t("stats.suggest.none")
        lines = [
            t("stats.suggest.cli_line", readers=g.readers, query=g.query)
            + (
                t("stats.suggest.held", on_shelf=g.held.on_shelf, copies=g.held.copies)
                if g.held
                else ""
            )
            for g in groups
        ]
        return "\n".join(lines)

    typer.echo(run_with_db(settings, body))


@suggestions_app.command("bought", help=t("stats.suggest.cli_help_bought"))
def bought(query: Query) -> None:
    _decide(query, SuggestionStatus.PURCHASED)


@suggestions_app.command("declined", help=t("stats.suggest.cli_help_declined"))
def declined(query: Query) -> None:
    _decide(query, SuggestionStatus.REJECTED)


def _decide(query: str, decision: SuggestionStatus) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        from services.suggestions import resolve

        async with db.transaction() as session:
            done = await resolve(session, Actor.system(), decision=decision, query=query)
        return t(
            "stats.suggest.done",
            query=done.query,
            status=t(f"stats.suggestion_status.{decision.value}"),
            count=done.notified,
        )

    try:
        typer.echo(run_with_db(settings, body))
    except ServiceError as exc:
        fail(exc.render(), code=1)
