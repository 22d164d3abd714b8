"""`shuxiang db`: migrations and the search index."""

from __future__ import annotations

import typer

from bot.cli.runtime import configure_logging, run_with_db, settings_or_exit
from services.i18n import t
from storage.db import Database

db_app = typer.Typer(help=t("cli.help_db"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade", help=t("cli.help_db_upgrade"))
def db_upgrade(
    revision: str = typer.Argument("head", help=t("cli.help_db_upgrade_revision")),
) -> None:
    """Migrate the database to the newest (or the given) revision."""
    from storage.migrate import current_revision, upgrade

    settings = settings_or_exit()
    configure_logging(settings)

    async def body(db: Database) -> str | None:
        await upgrade(db.engine, revision)
        return await current_revision(db.engine)

    rev = run_with_db(settings, body, require_schema=False)
    typer.echo(t("cli.db_upgraded", revision=rev))


@db_app.command("downgrade", help=t("cli.help_db_downgrade"))
def db_downgrade(
    revision: str = typer.Argument(..., help=t("cli.help_db_downgrade_revision")),
) -> None:
    """Roll migrations back (drops tables)."""
    from storage.migrate import current_revision, downgrade

    settings = settings_or_exit()

    async def body(db: Database) -> str | None:
        await downgrade(db.engine, revision)
        return await current_revision(db.engine)

    rev = run_with_db(settings, body, require_schema=False)
    typer.echo(t("cli.db_downgraded", revision=rev or "base"))


@db_app.command("reindex", help=t("cli.help_db_reindex"))
def db_reindex() -> None:
    """Rebuild the whole search index from the records (after edits made outside Shuxiang)."""
    from nlp.index import INDEX_TABLES

    settings = settings_or_exit()
    configure_logging(settings)
    engine = settings.search_engine()

    async def body(db: Database) -> int:
        async with db.transaction() as session:
            count = await engine.rebuild_index(session)
        await db.vacuum(*INDEX_TABLES)
        return count

    typer.echo(t("cli.db_reindexed", count=run_with_db(settings, body)))


@db_app.command("revision", help=t("cli_db.help_revision"))
def db_revision(
    message: str = typer.Option(..., "-m", "--message", help=t("cli_db.help_revision_message")),
    autogenerate: bool = typer.Option(
        False, "--autogenerate", help=t("cli_db.help_revision_autogenerate")
    ),
) -> None:
    """Write the next migration file (NNNN_<slug>.py), compared with a database at the head."""
    from storage.migrate import new_revision

    settings = settings_or_exit()

    async def body(db: Database) -> str:
        return await new_revision(db.engine, message, autogenerate=autogenerate)

    path = run_with_db(settings, body, require_schema=autogenerate)
    typer.echo(t("cli_db.revision_written", path=path))
