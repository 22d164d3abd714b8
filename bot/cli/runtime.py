"""Helpers the CLI commands share: settings, the database, one-line errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from asyncpg import PostgresError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.config import ConfigError, Settings, load_settings
from services.i18n import t
from storage.db import Database

T = TypeVar("T")
log = logging.getLogger("shuxiang")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(t("cli.error", message=message), fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
        settings.checked_database_url()
    except ConfigError as exc:
        fail(str(exc))
    return settings


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # One line per update and per migration step drowns what matters at INFO.
    for chatty in ("aiogram.event", "alembic", "apscheduler.executors.default"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))


class RedactingFormatter(logging.Formatter):
    """The token sits in every Bot API URL and the password in the database URL: mask both,
    in messages and in tracebacks alike."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = [
            value
            for secret in (settings.bot_token, settings.database_url)
            if secret is not None and (value := secret.get_secret_value())
        ]
        password = _url_password(settings.database_url.get_secret_value())
        if password:
            self.secrets.append(password)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except ArgumentError:
        return None


def run_with_db(
    settings: Settings,
    body: Callable[[Database], Awaitable[T]],
    *,
    migrate: bool = False,
    require_schema: bool = True,
) -> T:
    """Run ``body`` with a Database; database connection failures become one clear line.

    ``migrate`` brings the schema up to date first (imports create the library). Otherwise the
    schema must already be current, so that a desk command run from the wrong folder says so
    instead of quietly creating an empty SQLite file there and finding nothing."""
    url = settings.checked_database_url()
    if not migrate and require_schema:
        path = make_url(url).database
        if make_url(url).get_backend_name() == "sqlite" and path and not Path(path).exists():
            fail(t("cli.schema_missing", where=Path(path).resolve()))

    async def main() -> T:
        from storage.migrate import current_revision, head_revision, upgrade

        db = Database(url)
        try:
            if migrate:
                await upgrade(db.engine)
            elif require_schema and await current_revision(db.engine) != head_revision():
                fail(t("cli.schema_outdated"))
            return await body(db)
        finally:
            await db.dispose()

    return run_async(main())


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(str(exc))
    except (ConnectionError, socket.gaierror, PostgresError, InterfaceError) as exc:
        fail(t("cli.db_unreachable", error=type(exc).__name__))
    except OperationalError as exc:
        fail(t("cli.db_error", error=type(exc.orig).__name__))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
