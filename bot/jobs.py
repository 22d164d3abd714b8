"""The one registry of scheduled jobs (name, trigger, function), read by the assembly function
(bot/app.py) and by `shuxiang scheduler`.

Jobs are short, idempotent sweeps over state kept in the database (APScheduler's own job store is
never shared between processes, so it holds nothing but these timers). Each takes a ``JobContext``
and returns how many things it did. The ``weekly`` slot sends the recommendations' new-book list
(its pushes go through the sender, so quiet hours and rate limits apply). A job's SQL reads
every open loan or a term's history, rarely: on SQLite it runs on a worker thread
(storage.db.off_the_loop), not in the event loop's, so the bot's chats are not held up meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from services.actor import Actor
from services.corners.chase import weekly_chase as chase_sweep
from services.notifications.quiet import parse_clock
from services.notifications.reminders import (
    ReminderRules,
    sweep_due_day,
    sweep_due_soon,
    sweep_hold_ending,
    sweep_hold_expiry,
    sweep_overdue,
)
from services.policy import LoanPolicy
from services.reading_lists import send_due_lists
from services.recommend.model import MODEL_REFRESH_MINUTES, ModelCache, fit
from services.recommend.weekly import enqueue_weekly
from services.stats.stars import announce_stars as announce_stars_service
from services.stats.stars import monthly_stars, previous_month
from storage.db import Database, off_the_loop
from storage.models import utcnow
from storage.updates import forget_old_updates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    db: Database
    settings: Settings
    clock: Callable[[], datetime] = utcnow
    # Called after a job queued pushes, so a running sender sends them at once.
    poke: Callable[[], None] = lambda: None
    # The bot's fitted recommender, refitted by its job (a standalone scheduler keeps its own).
    recommender: ModelCache = field(default_factory=ModelCache)

    @property
    def policy(self) -> LoanPolicy:
        return self.settings.loan_policy()

    @property
    def rules(self) -> ReminderRules:
        s = self.settings
        return ReminderRules(
            tz=s.tz,
            due_soon_days=tuple(s.due_soon_days),
            overdue_every_days=s.overdue_every_days,
            overdue_max=s.overdue_max_reminders,
            defaults_off=frozenset(s.reminders_default_off),
            policy=self.policy,
        )


JobFunction = Callable[[JobContext], Awaitable[int]]
TriggerFactory = Callable[[Settings], BaseTrigger]


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    trigger: TriggerFactory
    function: JobFunction
    # Locale key describing the job (`shuxiang scheduler --list`).
    help: str
    misfire_grace_s: int = 3600


@dataclass
class JobRegistry:
    jobs: dict[str, ScheduledJob] = field(default_factory=dict)

    def add(self, job: ScheduledJob) -> None:
        if job.name in self.jobs:
            raise ValueError(f"scheduled job {job.name!r} registered twice")
        self.jobs[job.name] = job

    def get(self, name: str) -> ScheduledJob | None:
        return self.jobs.get(name)

    def __iter__(self) -> Iterator[ScheduledJob]:
        return iter(self.jobs.values())

    def names(self) -> list[str]:
        return list(self.jobs)

    async def run_once(self, name: str, ctx: JobContext) -> int:
        job = self.jobs[name]
        done = await job.function(ctx)
        if done:
            log.info("job %s: %d", name, done)
            ctx.poke()
        return done

    def build_scheduler(self, ctx: JobContext) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone=ctx.settings.tz)
        for job in self:
            scheduler.add_job(
                self.run_once,
                job.trigger(ctx.settings),
                args=(job.name, ctx),
                id=job.name,
                name=job.name,
                coalesce=True,
                max_instances=1,
                # A late run still does its work: the sweeps skip what no longer matters.
                misfire_grace_time=job.misfire_grace_s,
            )
        return scheduler


# -- triggers from configuration ------------------------------------------------------------


def daily(settings: Settings) -> BaseTrigger:
    at = parse_clock(settings.reminder_time)
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.tz)


def weekly(settings: Settings) -> BaseTrigger:
    day, _, clock = settings.weekly_slot.strip().partition(" ")
    at = parse_clock(clock)
    return CronTrigger(
        day_of_week=day.lower(), hour=at.hour, minute=at.minute, timezone=settings.tz
    )


def every_minutes(minutes: int) -> TriggerFactory:
    return lambda settings: IntervalTrigger(minutes=minutes, timezone=settings.tz)


def chase_slot(settings: Settings) -> BaseTrigger:
    at = parse_clock(settings.chase_time)
    return CronTrigger(
        day_of_week=settings.chase_weekday, hour=at.hour, minute=at.minute, timezone=settings.tz
    )


def nightly(settings: Settings) -> BaseTrigger:
    return CronTrigger(hour=3, timezone=settings.tz)


# -- the jobs ----------------------------------------------------------------------------------


def _sweep(
    function: Callable[..., Awaitable[int]],
) -> JobFunction:
    async def job(ctx: JobContext) -> int:
        async with ctx.db.transaction() as session, off_the_loop(session):
            return await function(session, ctx.rules, ctx.clock())

    return job


async def hold_expiry(ctx: JobContext) -> int:
    async with ctx.db.transaction() as session, off_the_loop(session):
        return await sweep_hold_expiry(
            session, ctx.policy, ctx.clock(), actor=Actor.system("job:hold-expiry")
        )


async def forget_updates(ctx: JobContext) -> int:
    async with ctx.db.transaction() as session, off_the_loop(session):
        await forget_old_updates(session)
    return 0


async def announce_stars(ctx: JobContext) -> int:
    """On the 1st: tell last month's 读书之星 (class monitors only once a librarian approves).
    Safe to run again: each announcement has its dedupe key."""
    tz = ctx.settings.tz
    today = ctx.clock().astimezone(tz).date()
    year, month = previous_month(today.year, today.month)
    async with ctx.db.transaction() as session, off_the_loop(session):
        actor = Actor.system("job:reading-stars")
        found = await monthly_stars(session, actor, year=year, month=month, tz=tz)
        return await announce_stars_service(
            session, actor, found, year=year, month=month, tell_monitors=False
        )


def monthly(settings: Settings) -> BaseTrigger:
    return CronTrigger(day=1, hour=9, timezone=settings.tz)


async def weekly_chase(ctx: JobContext) -> int:
    """Each class's overdue list to its own monitors, once per week (the sender delivers it)."""
    async with ctx.db.transaction() as session, off_the_loop(session):
        run = await chase_sweep(
            session, Actor.system("job:weekly-chase"), now=ctx.clock(), tz=ctx.settings.tz
        )
    log.info("weekly chase: %d lists, %d student reminders", run.lists, run.reminders)
    return run.lists + run.reminders


async def weekly_new_books(
    db: Database, days: int, now: datetime, tz: ZoneInfo | None = None
) -> int:
    """Fit the recommender afresh (this week's books in it) and queue each reader's new-book
    list; a second run in the same ISO week queues nothing."""
    async with db.transaction() as session, off_the_loop(session):
        model = await fit(session)
        actor = Actor.system("job:weekly")
        return await enqueue_weekly(session, actor, model, now=now, days=days, tz=tz)


async def weekly_list(ctx: JobContext) -> int:
    """The weekly slot: the new-book list (sent by the sender, so quiet hours apply)."""
    return await weekly_new_books(
        ctx.db, ctx.settings.weekly_new_days, ctx.clock(), ctx.settings.tz
    )


async def refit_recommender(ctx: JobContext) -> int:
    async with ctx.db.transaction(read_only=True) as session, off_the_loop(session):
        await ctx.recommender.refresh(session)
    return 0


async def reading_lists(ctx: JobContext) -> int:
    async with ctx.db.transaction() as session, off_the_loop(session):
        return await send_due_lists(session, Actor.system("job:reading-lists"), now=ctx.clock())


def build_registry() -> JobRegistry:
    registry = JobRegistry()
    registry.add(ScheduledJob("due-soon", daily, _sweep(sweep_due_soon), "jobs.due_soon"))
    registry.add(ScheduledJob("due-day", daily, _sweep(sweep_due_day), "jobs.due_day"))
    registry.add(ScheduledJob("overdue", daily, _sweep(sweep_overdue), "jobs.overdue"))
    registry.add(ScheduledJob("hold-ending", daily, _sweep(sweep_hold_ending), "jobs.hold_ending"))
    registry.add(
        ScheduledJob("hold-expiry", every_minutes(10), hold_expiry, "jobs.hold_expiry", 600)
    )
    registry.add(ScheduledJob("weekly", weekly, weekly_list, "jobs.weekly"))
    # A late chase (the bot was down on Friday afternoon) still goes out the same evening.
    registry.add(
        ScheduledJob("weekly-chase", chase_slot, weekly_chase, "corners.job_weekly_chase", 6 * 3600)
    )
    registry.add(
        ScheduledJob(
            "recommender-refit",
            every_minutes(MODEL_REFRESH_MINUTES),
            refit_recommender,
            "recommend.job_refit",
            600,
        )
    )
    registry.add(
        ScheduledJob("reading-lists", every_minutes(5), reading_lists, "lists.job_send", 300)
    )
    registry.add(ScheduledJob("forget-updates", nightly, forget_updates, "jobs.forget_updates"))
    registry.add(
        ScheduledJob("reading-stars", monthly, announce_stars, "stats.job_stars", 6 * 3600)
    )
    return registry
