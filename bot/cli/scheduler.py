"""`shuxiang scheduler`: the scheduled sweeps and the sender without the bot (webhook deployments,
cron), and `shuxiang outbox`: readers who cannot be reached, pushes that failed."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from sqlalchemy import select

from bot.cli.runtime import configure_logging, fail, run_with_db, settings_or_exit
from bot.config import ConfigError, Settings
from bot.jobs import JobContext, JobRegistry, build_registry
from services.i18n import t
from services.school_order import class_key
from storage.db import Database
from storage.models import Notification, OutboxStatus, Reader, TelegramBinding

outbox_app = typer.Typer(help=t("cli_scheduler.help_outbox"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("scheduler", help=t("cli_scheduler.help"))(scheduler)
    app.add_typer(outbox_app, name="outbox")


def describe(registry: JobRegistry, settings: Settings) -> list[tuple[str, str, str]]:
    return [(job.name, str(job.trigger(settings)), t(job.help)) for job in registry]


def scheduler(
    list_jobs: Annotated[bool, typer.Option("--list", help=t("cli_scheduler.help_list"))] = False,
    once: Annotated[
        str | None, typer.Option("--once", metavar="JOB", help=t("cli_scheduler.help_once"))
    ] = None,
) -> None:
    """Run every scheduled job and the sender until stopped; or list them; or run one now."""
    settings = settings_or_exit()
    registry = build_registry()
    if list_jobs:
        for name, when, what in describe(registry, settings):
            typer.echo(f"{name}\t{when}\t{what}")
        return
    if once is not None:
        if registry.get(once) is None:
            fail(t("cli_scheduler.unknown_job", job=once, jobs=", ".join(registry.names())))
        configure_logging(settings)

        async def body(db: Database) -> int:
            return await registry.run_once(once, JobContext(db=db, settings=settings))

        count = run_with_db(settings, body)
        typer.echo(t("cli_scheduler.ran", job=once, count=count))
        return
    _run_forever(settings, registry)


def _run_forever(settings: Settings, registry: JobRegistry) -> None:
    from bot.sender import Sender, build_sender_bot

    try:
        token = settings.require_token()
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings)

    async def body(db: Database) -> None:
        sender = Sender(db, build_sender_bot(settings, token), settings)
        ctx = JobContext(db=db, settings=settings, poke=sender.poke)
        timers = registry.build_scheduler(ctx)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        timers.start()
        sending = asyncio.create_task(sender.run(), name="sender")
        typer.echo(t("cli_scheduler.started", jobs=", ".join(registry.names())))
        try:
            await stop.wait()
        finally:
            timers.shutdown(wait=False)
            sender.stop()
            await asyncio.wait_for(sending, 30)
            await sender.bot.session.close()

    run_with_db(settings, body)


@outbox_app.command("unreachable", help=t("cli_scheduler.help_unreachable"))
def unreachable() -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> list[str]:
        async with db.transaction(read_only=True) as session:
            result = await session.execute(
                select(Reader, TelegramBinding)
                .join(TelegramBinding, TelegramBinding.reader_id == Reader.id)
                .where(TelegramBinding.unreachable_at.is_not(None))
                .order_by(Reader.card_no)
            )
            rows = sorted(result, key=lambda row: class_key(row[0].class_name))
            return [
                t(
                    "cli_scheduler.unreachable_line",
                    card_no=reader.card_no,
                    name=reader.name,
                    class_name=reader.class_name or "",
                    since=binding.unreachable_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
                    if binding.unreachable_at
                    else "",
                    reason=binding.unreachable_reason or "",
                )
                for reader, binding in rows
            ]

    lines = run_with_db(settings, body)
    typer.echo("\n".join(lines) if lines else t("cli_scheduler.none"))


@outbox_app.command("failed", help=t("cli_scheduler.help_failed"))
def failed(limit: int = typer.Option(100, min=1)) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> list[str]:
        async with db.transaction(read_only=True) as session:
            rows = await session.execute(
                select(Notification, Reader)
                .join(Reader, Reader.id == Notification.reader_id)
                .where(Notification.status == OutboxStatus.FAILED.value)
                .order_by(Notification.id.desc())
                .limit(limit)
            )
            return [
                t(
                    "cli_scheduler.failed_line",
                    id=note.id,
                    kind=note.kind,
                    card_no=reader.card_no,
                    name=reader.name,
                    error=note.last_error or "",
                )
                for note, reader in rows
            ]

    lines = run_with_db(settings, body)
    typer.echo("\n".join(lines) if lines else t("cli_scheduler.none"))
