"""`shuxiang health`: is every part of the deployment answering (bot/health.py)?"""

from __future__ import annotations

import typer

from bot.cli.runtime import fail, settings_or_exit
from services.i18n import t


def register(app: typer.Typer) -> None:
    app.command("health", help=t("cli.help_health"))(health)


def health() -> None:
    """One line per part of the deployment; exit code 1 when any is down."""
    import asyncio

    from aiogram import Bot
    from aiogram.utils.token import TokenValidationError, validate_token

    from bot.config import ConfigError
    from bot.health import check_health
    from bot.proxy import bot_session
    from storage.db import Database

    settings = settings_or_exit()
    try:
        url = settings.checked_database_url()
        settings.checked_redis_url()
        token = settings.require_token()
        validate_token(token)
    except ConfigError as exc:
        fail(str(exc))
    except TokenValidationError:
        fail(t("cli_run.bad_token"))

    async def main() -> bool:
        db = Database(url, busy_timeout_s=settings.sqlite_busy_timeout_s)
        bot = Bot(token, session=bot_session(settings))  # no retries: a health check answers now
        try:
            report = await check_health(settings, db=db, bot=bot)
        finally:
            await bot.session.close()
            await db.dispose()
        for line in report.lines():
            typer.echo(line)
        typer.echo(t("health.all_ok") if report.ok else t("health.some_down"))
        return report.ok

    if not asyncio.run(main()):
        raise typer.Exit(1)
