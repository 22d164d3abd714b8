"""Helpers the CLI commands share: settings, the database, one-line errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer
from asyncpg import PostgresError
from asyncpg import exceptions as pg_errors
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
    for chatty in (
        "aiogram.event",
        "alembic",
        "apscheduler.executors.default",
        "apscheduler.scheduler",  # "Adding job tentatively", once per job at every start
        "aiosqlite",  # two lines per cursor call: a migration alone fills a pipe's buffer
    ):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))


class RedactingFormatter(logging.Formatter):
    """The token sits in every Bot API URL and passwords in the database, proxy and Redis URLs:
    mask them, in messages and in tracebacks alike."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = [
            value
            for secret in (settings.bot_token, settings.database_url)
            if secret is not None and (value := secret.get_secret_value())
        ]
        passwords = [_url_password(settings.database_url.get_secret_value())]
        for url in (settings.proxy, settings.redis_url):
            if url is not None and (value := url.get_secret_value()):
                self.secrets.append(value)
                passwords.append(_split_password(value))
        self.secrets.extend(p for p in passwords if p)
        self.secrets.sort(key=len, reverse=True)  # a URL before the password inside it

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _split_password(url: str) -> str | None:
    try:
        return urlsplit(url.strip()).password
    except ValueError:
        return None


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
    if migrate or not require_schema:
        try:
            settings.ensure_database_dir()
        except ConfigError as exc:
            fail(str(exc))
    if not migrate and require_schema:
        path = make_url(url).database
        if make_url(url).get_backend_name() == "sqlite" and path and not Path(path).exists():
            fail(t("cli.schema_missing", where=Path(path).resolve()))

    async def main() -> T:
        from storage.migrate import current_revision, head_revision, upgrade

        db = Database(url, busy_timeout_s=settings.sqlite_busy_timeout_s)
        try:
            if migrate:
                await upgrade(db.engine)
            elif require_schema and await current_revision(db.engine) != head_revision():
                fail(t("cli.schema_outdated"))
            return await body(db)
        finally:
            await db.dispose()

    return run_async(main(), database_url=url)


def run_async(coro: Coroutine[Any, Any, T], *, database_url: str | None = None) -> T:
    """Run a command's coroutine; configuration and database failures become one line that
    says what to do (``database_url`` names the server or file in it)."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(str(exc))
    except (
        ConnectionError,
        socket.gaierror,
        TimeoutError,
        PostgresError,
        InterfaceError,
        OperationalError,
    ) as exc:
        fail(database_problem(exc, database_url))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def database_problem(exc: BaseException, database_url: str | None = None) -> str:
    """One Chinese line for a database failure: server down, login refused, database missing,
    file not openable, locked; never the bare exception name."""
    url = make_url(database_url) if database_url else None
    for error in _causes(exc):
        if isinstance(error, pg_errors.InvalidCatalogNameError):
            return t("cli_run.db_missing", name=url.database if url else "")
        if isinstance(error, pg_errors.InvalidAuthorizationSpecificationError):
            return t("cli_run.db_login_refused")  # a wrong password or an unknown user
        if isinstance(error, sqlite3.OperationalError):
            if "locked" in str(error):
                return t("cli_run.db_locked")
            if "unable to open" in str(error):
                where = Path(url.database).resolve() if url and url.database else ""
                return t("cli_run.db_cannot_open", where=where)
        if isinstance(error, OSError):  # refused, unknown host, timed out
            where = f"{url.host or 'localhost'}:{url.port or 5432}" if url else ""
            return t("cli_run.db_server_down", where=where)
    return t("cli_run.db_other")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, what SQLAlchemy wrapped (``orig``) and what caused each, in order."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 10:
        error = todo.pop(0)
        if error is None or any(error is s for s in seen):
            continue
        seen.append(error)
        todo += [getattr(error, "orig", None), error.__cause__, error.__context__]
    return seen
