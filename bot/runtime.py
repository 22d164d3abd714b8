"""Helpers the CLI commands share: settings, the database, one-line errors."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from bot.config import ConfigError, Settings, load_settings
from storage.db import Database

T = TypeVar("T")
log = logging.getLogger("shuxiang")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"错误：{message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
        settings.checked_database_url()
    except ConfigError as exc:
        fail(str(exc))
    return settings


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiohttp/aiogram may log request URLs; the token is part of the Bot API path.
    logging.getLogger().addFilter(_redactor(settings))


def _redactor(settings: Settings) -> logging.Filter:
    secrets = [s for s in (settings.bot_token, settings.database_url) if s is not None]

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            changed = False
            for secret in secrets:
                value = secret.get_secret_value()
                if value and value in message:
                    message = message.replace(value, "***")
                    changed = True
            if changed:
                record.msg, record.args = message, None
            return True

    return Redact()


def run_with_db(
    settings: Settings, body: Callable[[Database], Awaitable[T]], *, migrate: bool = False
) -> T:
    """Run ``body`` with a Database; database connection failures become one clear line."""

    async def main() -> T:
        db = Database(settings.checked_database_url())
        try:
            if migrate:
                from storage.migrate import upgrade

                await upgrade(db.engine)
            return await body(db)
        finally:
            await db.dispose()

    return run_async(main())


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(str(exc))
    except (OSError, ConnectionError) as exc:
        fail(f"无法连接数据库或服务：{type(exc).__name__}（请检查 SHUXIANG_DATABASE_URL）")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
