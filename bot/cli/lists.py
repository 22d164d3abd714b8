"""``shuxiang lists``: the librarian's themed lists (书单) — create, add, show, send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.cli.runtime import configure_logging, fail, run_with_db, settings_or_exit
from services.actor import Actor
from services.i18n import t
from services.titles import record_name
from storage.db import Database

lists_app = typer.Typer(help=t("cli_lists.help"), no_args_is_help=True, rich_markup_mode=None)


@lists_app.command("create", help=t("cli_lists.help_create"))
def create(name: Annotated[str, typer.Argument(help=t("cli_lists.help_name"))]) -> None:
    from services.errors import ServiceError
    from services.reading_lists import create_list

    settings = settings_or_exit()
    configure_logging(settings)

    async def body(db: Database) -> str:
        try:
            async with db.transaction() as session:
                made = await create_list(session, Actor.system(), name)
                return t("cli_lists.created", name=made.name, list_id=made.id)
        except ServiceError as exc:
            fail(exc.render(), code=1)

    typer.echo(run_with_db(settings, body, migrate=True))


@lists_app.command("add", help=t("cli_lists.help_add"))
def add(
    name: Annotated[str, typer.Argument(help=t("cli_lists.help_name"))],
    book: Annotated[str, typer.Argument(help=t("cli_lists.help_book"))],
    blurb: Annotated[str | None, typer.Option("--blurb", help=t("cli_lists.help_blurb"))] = None,
) -> None:
    from services.errors import ServiceError
    from services.reading_lists import add_to_list

    settings = settings_or_exit()
    configure_logging(settings)

    async def body(db: Database) -> str:
        try:
            async with db.transaction() as session:
                found, record, added = await add_to_list(
                    session,
                    Actor.system(),
                    name,
                    book,
                    blurb=blurb,
                    search=settings.search_engine(),
                )
                key = "cli_lists.added" if added else "cli_lists.already"
                return t(key, title=record_name(record), name=found.name)
        except ServiceError as exc:
            fail(exc.render(), code=1)

    typer.echo(run_with_db(settings, body))


@lists_app.command("show", help=t("cli_lists.help_show"))
def show(
    name: Annotated[str | None, typer.Argument(help=t("cli_lists.help_name"))] = None,
) -> None:
    from services.errors import ServiceError
    from services.reading_lists import all_lists, entries, find_list

    settings = settings_or_exit()
    configure_logging(settings)

    async def body(db: Database) -> list[str]:
        try:
            async with db.transaction(read_only=True) as session:
                if name is None:
                    summaries = await all_lists(session)
                    if not summaries:
                        return [t("cli_lists.none")]
                    return [
                        t("cli_lists.list_summary", list_id=s.list_id, name=s.name, count=s.count)
                        for s in summaries
                    ]
                found = await find_list(session, name)
                books = await entries(session, found.id)
                if not books:
                    return [t("cli_lists.empty", name=found.name)]
                return [
                    t("cli_lists.item", n=n, title=b.title, blurb=b.blurb or "")
                    for n, b in enumerate(books, 1)
                ]
        except ServiceError as exc:
            fail(exc.render(), code=1)

    for line in run_with_db(settings, body):
        typer.echo(line)


def _parse_at(value: str | None, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(t("cli_lists.bad_at", value=value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment


@lists_app.command("send", help=t("cli_lists.help_send"))
def send(
    name: Annotated[str, typer.Argument(help=t("cli_lists.help_name"))],
    grade: Annotated[
        list[str] | None, typer.Option("--grade", help=t("cli_lists.help_grade"))
    ] = None,
    klass: Annotated[
        list[str] | None, typer.Option("--class", help=t("cli_lists.help_class"))
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=t("cli_lists.help_at"))] = None,
) -> None:
    from services.errors import ServiceError
    from services.reading_lists import schedule_send, send_due_lists

    settings = settings_or_exit()
    configure_logging(settings)
    moment = _parse_at(at, settings.tz)
    grades, classes = list(grade or []), list(klass or [])
    audience = t("import.list_separator").join(grades + classes) or t("cli_lists.everyone")

    async def body(db: Database) -> str:
        try:
            async with db.transaction() as session:
                actor = Actor.system()
                planned = await schedule_send(
                    session, actor, name, grades=grades, classes=classes, at=moment
                )
                if moment is None:
                    count = await send_due_lists(session, actor, now=planned.send_at)
                    return t("cli_lists.sent", name=name, count=count)
                when = moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
                # As the roster spells them (初二3班 → 初二(3)班).
                named = [*planned.audience["grades"], *planned.audience["classes"]]
                said = t("import.list_separator").join(named) or audience
                return t("cli_lists.scheduled", name=name, at=when, audience=said)
        except ServiceError as exc:
            fail(exc.render(), code=1)

    typer.echo(run_with_db(settings, body))


def register(app: typer.Typer) -> None:
    app.add_typer(lists_app, name="lists")
