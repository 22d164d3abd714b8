"""The demo's clock control: move the sandbox's injected clock forward by an hour, a day or a
week, and run the scheduled sweeps that would have run by then, so every push (reminders, overdue
notices, hold expiry, the weekly list, the monitors' 催书单) can be watched arriving in the page.

Only the sandbox builds a ``DemoClock`` and registers ``/_demo/clock`` (``ClockControl``); a
real deployment's clock is plain ``utcnow`` and has no route to move it.

What "the sweeps due by then" means: every cron job (the daily sweeps at ``REMINDER_TIME``, the
weekly slot, the chase, …) runs at each of its fire times between the old and the new time, in
time order, with the clock set to that moment; jobs on an interval (hold expiry, themed lists,
the recommender) run at each of those moments and at the end, as APScheduler's coalescing would
run them after a pause. The sweeps are idempotent (dedupe keys per slot), so a week in seven
one-day steps queues what one one-week step does, and moving on never repeats a push.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from services.i18n import t
from storage.models import Notification, utcnow

if TYPE_CHECKING:
    from bot.app import Shuxiang
    from bot.config import Settings
    from bot.jobs import JobContext, JobRegistry

log = logging.getLogger(__name__)

# The only steps the page offers (and the route accepts): a person trying the pushes needs no
# other, and the clock never goes back (dedupe keys and due dates assume time moves forward).
STEPS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
TICK = timedelta(microseconds=1)


class DemoClock:
    """Real time plus how far the demo's clock control moved it; only ever forward."""

    def __init__(self, base: Callable[[], datetime] = utcnow) -> None:
        self.base = base
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.base() + self.offset

    def move_to(self, moment: datetime) -> None:
        self.offset = max(self.offset, moment - self.base())


@dataclass
class Advanced:
    """What one press of the control did."""

    start: datetime
    end: datetime
    # Job name -> what it did (pushes queued, holds expired, …), summed over its runs.
    done: dict[str, int] = field(default_factory=dict)
    # Jobs that raised (logged with their traceback; the others still ran, as in the scheduler).
    failed: list[str] = field(default_factory=list)


def moments(
    jobs: JobRegistry, settings: Settings, start: datetime, end: datetime
) -> list[tuple[datetime, list[str]]]:
    """The jobs due in (start, end], grouped by moment in time order (registry order within one),
    the interval jobs at every moment and the end."""
    cron: dict[datetime, set[str]] = {}
    interval: set[str] = set()
    for job in jobs:
        trigger = job.trigger(settings)
        if not isinstance(trigger, CronTrigger):
            interval.add(job.name)
            continue
        at = trigger.get_next_fire_time(None, start + TICK)
        while at is not None and at <= end:
            cron.setdefault(at, set()).add(job.name)
            at = trigger.get_next_fire_time(None, at + TICK)
    cron.setdefault(end, set())
    return [
        (at, [name for name in jobs.names() if name in names or name in interval])
        for at, names in sorted(cron.items())
    ]


async def advance(
    jobs: JobRegistry, ctx: JobContext, clock: DemoClock, step: timedelta
) -> Advanced:
    """Move the clock by ``step`` and run what was due by then (``ctx.poke`` wakes the sender,
    whose clock is the same, so it sends at once what is due and outside quiet hours)."""
    start = clock()
    run = Advanced(start, start + step)
    for at, names in moments(jobs, ctx.settings, start, run.end):
        clock.move_to(at)
        for name in names:
            try:
                done = await jobs.run_once(name, ctx)
            except Exception:  # one broken sweep must not keep the others from their moment
                log.exception("demo clock: job %s at %s", name, at)
                run.failed.append(name)
                continue
            run.done[name] = run.done.get(name, 0) + done
    clock.move_to(run.end)
    ctx.poke()
    log.info("demo clock: %s -> %s, %s", run.start, run.end, run.done)
    return run


def describe(app: Shuxiang, moment: datetime) -> str:
    local = moment.astimezone(app.settings.tz)
    weekday = t(f"democlock.weekday_{local.isoweekday()}")
    return t("democlock.now", date=f"{local:%Y-%m-%d}", weekday=weekday, time=f"{local:%H:%M}")


async def queued(app: Shuxiang) -> int:
    async with app.db.transaction(read_only=True) as session:
        return await session.scalar(select(func.count(Notification.id))) or 0


@dataclass
class ClockControl:
    """The page's clock control: the demo's clock and the bot it drives (set once it is built:
    the emulator's routes are fixed before the bot, which needs the emulator's address)."""

    clock: DemoClock
    app: Shuxiang | None = None
    # One press at a time: a second waits for the first's sweeps.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add_routes(self, web_app: web.Application) -> None:
        """``GET /_demo/clock`` (the demo's time) and ``POST /_demo/clock`` with
        ``{"step": "hour" | "day" | "week"}``."""
        web_app.router.add_get("/_demo/clock", self._show)
        web_app.router.add_post("/_demo/clock", self._move)

    def _state(self, app: Shuxiang, now: datetime | None = None, **extra: object) -> web.Response:
        now = self.clock() if now is None else now
        result: dict[str, object] = {
            "now": now.isoformat(),
            "label": describe(app, now),
            "ahead_seconds": int(self.clock.offset.total_seconds()),
        }
        return web.json_response({"ok": True, "result": result | extra})

    def _not_ready(self) -> web.Response:
        return web.json_response({"ok": False, "description": t("democlock.not_ready")}, status=503)

    async def _show(self, request: web.Request) -> web.Response:
        return self._not_ready() if self.app is None else self._state(self.app)

    async def _move(self, request: web.Request) -> web.Response:
        app = self.app
        if app is None:
            return self._not_ready()
        try:
            body = await request.json()
        except ValueError:
            body = None
        step = STEPS.get(str(body.get("step"))) if isinstance(body, dict) else None
        if step is None:
            refusal = t("democlock.bad_step", steps=", ".join(STEPS))
            return web.json_response({"ok": False, "description": refusal}, status=400)
        async with self.lock:
            before = await queued(app)
            run = await advance(app.jobs, app.job_context, self.clock, step)
            pushes = await queued(app) - before
        message = t("democlock.moved", now=describe(app, run.end), count=pushes)
        # The label of the same instant as the message: the real clock may have crossed a minute.
        return self._state(
            app, run.end, done=run.done, failed=run.failed, pushes=pushes, message=message
        )
