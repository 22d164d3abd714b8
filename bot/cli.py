"""The ``shuxiang`` command."""

from __future__ import annotations

import asyncio
import signal

import typer

from bot.runtime import configure_logging, fail, run_async, run_with_db, settings_or_exit
from services.i18n import t
from storage.db import Database

app = typer.Typer(
    help=t("cli.help_app"),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help=t("cli.help_db"), no_args_is_help=True)
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
    from nlp.index import rebuild_index

    settings = settings_or_exit()
    configure_logging(settings)

    async def body(db: Database) -> int:
        async with db.transaction() as session:
            return await rebuild_index(session)

    typer.echo(t("cli.db_reindexed", count=run_with_db(settings, body)))


@app.command("run", help=t("cli.help_run"))
def run() -> None:
    """Start the bot (long polling against SHUXIANG_BOT_API_URL)."""
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import build_app
    from bot.config import ConfigError
    from storage.migrate import upgrade

    settings = settings_or_exit()
    try:
        token = settings.require_token()
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings)

    async def main() -> None:
        shuxiang = build_app(settings, token=token)
        try:
            await upgrade(shuxiang.db.engine)
            typer.echo(t("cli.run_started", api=settings.bot_api_url))
            await shuxiang.run_polling()
        except TelegramUnauthorizedError:
            fail(t("cli.run_unauthorized"))
        except TelegramNetworkError:
            fail(t("cli.run_unreachable", api=settings.bot_api_url))
        finally:
            await shuxiang.close()

    run_async(main())


@app.command("demo", help=t("cli.help_demo"))
def demo(
    port: int = typer.Option(8765, help=t("cli.help_demo_port")),
    check: bool = typer.Option(False, "--check", help=t("cli.help_demo_check")),
) -> None:
    """Local trial: SQLite, sample data, an emulated Telegram and a web chat page."""

    from bot.demo import self_check, start_sandbox

    settings = settings_or_exit()
    configure_logging(settings)

    async def main() -> None:
        try:
            sandbox, loaded = await start_sandbox(settings, port=port)
        except OSError:
            if port == 0:
                raise
            sandbox, loaded = await start_sandbox(settings, port=0)
        try:
            student = next((p.name for p in sandbox.personas if p.role == "student"), "-")
            librarian = next((p.name for p in sandbox.personas if p.role == "librarian"), "-")
            teacher = next((p.name for p in sandbox.personas if p.role == "teacher"), "-")
            typer.echo(loaded)
            typer.echo(
                t(
                    "cli.demo_ready",
                    url=sandbox.url,
                    student=student,
                    teacher=teacher,
                    librarian=librarian,
                    database=sandbox.app.db.engine.url.render_as_string(hide_password=True),
                )
            )
            if check:
                try:
                    typer.echo(await self_check(sandbox))
                except TimeoutError:
                    fail(t("cli.demo_check_timeout"))
            else:
                await _until_stopped()
        finally:
            await sandbox.stop()

    run_async(main())


async def _until_stopped() -> None:
    """Wait for Ctrl+C or SIGTERM (a service manager's stop), then return for a clean shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _register_command_groups() -> None:
    # Each group lives in its own module so the groups grow independently.
    from bot import cli_catalogue, cli_circ, cli_search

    cli_catalogue.register(app)
    cli_search.register(app)
    cli_circ.register(app)


_register_command_groups()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
