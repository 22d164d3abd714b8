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
from storage.models import Endpoint, Notification, OutboxStatus, Reader

outbox_app = typer.Typer(help=t("cli_scheduler.help_outbox"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("scheduler", help=t("cli_scheduler.help"))(scheduler)
    app.add_typer(outbox_app, name="outbox")


def describe(registry: JobRegistry, settings: Settings) -> list[tuple[str, str, str]]:
    return [(job.name, when(job.trigger(settings)), t(job.help)) for job in registry]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def when(trigger: object) -> str:
    """A job's timer in words (每天 07:30, 每周五 16:00, 每 10 分钟); APScheduler's own text
    for a timer too unusual to say simply."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if isinstance(trigger, IntervalTrigger):
        seconds = int(trigger.interval.total_seconds())
        for unit, size in (("hours", 3600), ("minutes", 60)):
            if seconds % size == 0:
                return t(f"cli_jobs.every_{unit}", count=seconds // size)
        return t("cli_jobs.every_seconds", count=seconds)
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        hour, minute = fields.get("hour", "*"), fields.get("minute", "*")
        rest = {k: v for k, v in fields.items() if k not in ("hour", "minute", "second")}
        if hour.isdigit() and minute.isdigit() and fields.get("second", "0") == "0":
            clock = f"{int(hour):02d}:{int(minute):02d}"
            day, weekday = rest.pop("day", "*"), rest.pop("day_of_week", "*")
            if any(v != "*" for v in rest.values()):
                return str(trigger)
            if day == "*" and weekday == "*":
                return t("cli_jobs.daily", clock=clock)
            if day == "*" and weekday in WEEKDAYS:
                name = t(f"cli_jobs.weekday_{WEEKDAYS.index(weekday)}")
                return t("cli_jobs.weekly", weekday=name, clock=clock)
            if weekday == "*" and day.isdigit():
                return t("cli_jobs.monthly", day=day, clock=clock)
    return str(trigger)


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


def kind_label(kind: str) -> str:
    """A push's kind in words (毕业清还提醒), as /settings names it; the raw name if undeclared."""
    from services.notifications.registry import KINDS

    declared = KINDS.get(kind)
    return t(declared.label) if declared is not None and declared.label else kind


def _telegram_words(detail: str) -> str:
    """Telegram's common refusals in words; anything else as Telegram said it."""
    lowered = detail.lower()
    for marker, key in (
        ("blocked", "cli_outbox.reason_blocked"),
        ("deactivated", "cli_outbox.reason_deactivated"),
        ("chat not found", "cli_outbox.reason_chat_not_found"),
    ):
        if marker in lowered:
            return t(key)
    return t("cli_outbox.reason_telegram", detail=detail)


def why_unreachable(reason: str | None) -> str:
    return _telegram_words(reason) if reason else ""


def why_failed(error: str | None) -> str:
    """Why a push failed, in Chinese: the outbox's own reasons and Telegram's answers."""
    if not error:
        return ""
    own = {
        "unreachable": "cli_outbox.reason_unreachable",
        "no endpoint": "cli_outbox.reason_no_binding",
        "no Telegram binding": "cli_outbox.reason_no_binding",  # written before endpoints
        "lease expired": "cli_outbox.reason_lease_expired",
    }
    if error in own:
        return t(own[error])
    code, _, detail = error.partition(": ")
    if code in ("400", "403"):
        return _telegram_words(detail)
    return t("cli_outbox.reason_error", detail=error)


@outbox_app.command("unreachable", help=t("cli_scheduler.help_unreachable"))
def unreachable() -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> list[str]:
        async with db.transaction(read_only=True) as session:
            result = await session.execute(
                select(Reader, Endpoint)
                .join(Endpoint, Endpoint.reader_id == Reader.id)
                .where(Endpoint.unreachable_at.is_not(None))
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
                    reason=why_unreachable(binding.unreachable_reason),
                )
                for reader, binding in rows
            ]

    lines = run_with_db(settings, body)
    header = [t("cli_outbox.unreachable_header")]
    typer.echo("\n".join(header + lines) if lines else t("cli_scheduler.none"))


@outbox_app.command("failed", help=t("cli_scheduler.help_failed"))
def failed(
    limit: int = typer.Option(100, min=1, help=t("cli_outbox.help_failed_limit")),
) -> None:
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
                    kind=kind_label(note.kind),
                    card_no=reader.card_no,
                    name=reader.name,
                    error=why_failed(note.last_error),
                )
                for note, reader in rows
            ]

    lines = run_with_db(settings, body)
    header = [t("cli_outbox.failed_header")]
    typer.echo("\n".join(header + lines) if lines else t("cli_scheduler.none"))
