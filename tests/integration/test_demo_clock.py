"""The demo's clock control (sandbox/clock.py) on SQLite and PostgreSQL: moving the clock runs the
sweeps due by then at their own moments, each push is queued once however the time is stepped,
and the sender's quiet hours follow the moved clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.config import Settings, load_settings
from bot.jobs import JobContext, JobRegistry, ScheduledJob, build_registry, daily
from bot.sender import Sender, build_sender_bot
from sandbox.clock import STEPS, DemoClock, advance, moments
from sandbox.emulator import BotApiEmulator
from services import circulation as circ
from services.actor import Actor
from storage.db import Database
from storage.models import Notification, Reader
from tests.factories import make_world, telegram_endpoint
from tests.roles import as_reader

TZ = ZoneInfo("Asia/Shanghai")
TOKEN = "123456789:DEMO-clock-test-token"
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
READERS = {"S1": ("张三", "student"), "S2": ("李四", "student"), "M1": ("王五", "student")}
RECORDS = {"r1": ("追风筝的人", ["B1"]), "r2": ("三体", ["B2"]), "r3": ("红岩", ["B3"])}
CLASS = "高一(1)班"


def at(day: str, clock: str = "07:30") -> datetime:
    """A school-time moment as UTC."""
    hh, mm = clock.split(":")
    local = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=TZ)
    return local.replace(hour=int(hh), minute=int(mm)).astimezone(UTC)


def frozen(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def settings(**overrides: object) -> Settings:
    return load_settings(_env_file=None, **{"quiet_hours": "", **overrides})


async def demo_world(db: Database, policy_settings: Settings) -> None:
    """What the demo seeds, by hand: S1's loan due on Wednesday and a hold ready for S1 since
    Monday (M1 brought it back); S2 ten days overdue; M1 the class monitor; all bound."""
    policy = policy_settings.loan_policy()
    world = await make_world(db, records=RECORDS, readers=READERS, monitors={"M1": CLASS})
    async with db.transaction() as s:
        for n, reader_id in enumerate(world.reader_ids.values(), 1):
            s.add(telegram_endpoint(reader_id, 7000 + n))
        await circ.checkout(
            s, actor=Actor.cli(), card_no="S1", barcode="B1", policy=policy, now=T0 - timedelta(28)
        )
        await circ.checkout(
            s, actor=Actor.cli(), card_no="S2", barcode="B2", policy=policy, now=T0 - timedelta(40)
        )
        await circ.checkout(
            s, actor=Actor.cli(), card_no="M1", barcode="B3", policy=policy, now=T0 - timedelta(1)
        )
        s1 = await circ.reader_by_card(s, "S1")
        await circ.place_hold(
            s,
            actor=await as_reader(s, s1.id),
            reader_id=s1.id,
            record_pk=world.record_pks["r3"],
            policy=policy,
            now=T0,
        )
        await circ.return_copy(s, actor=Actor.cli(), barcode="B3", policy=policy, now=T0)


async def outbox(db: Database) -> list[tuple[str, str, datetime]]:
    async with db.transaction(read_only=True) as s:
        rows = await s.execute(
            select(Notification.kind, Reader.card_no, Notification.created_at)
            .join(Reader, Reader.id == Notification.reader_id)
            .order_by(Notification.id)
        )
        return [(kind, card, created) for kind, card, created in rows.tuples()]


def test_a_week_in_steps_runs_the_same_sweeps_at_the_same_moments_as_one_jump() -> None:
    jobs, config = build_registry(), settings()

    def cron(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
        interval = {"hold-expiry", "recommender-refit", "reading-lists"}
        return [
            (moment, name)
            for moment, names in moments(jobs, config, start, end)
            for name in names
            if name not in interval
        ]

    jump = cron(T0, T0 + STEPS["week"])
    steps = [
        fired
        for day in range(7)
        for fired in cron(T0 + STEPS["day"] * day, T0 + STEPS["day"] * (day + 1))
    ]
    hours = [
        fired
        for hour in range(7 * 24)
        for fired in cron(T0 + STEPS["hour"] * hour, T0 + STEPS["hour"] * (hour + 1))
    ]
    assert jump == steps == hours
    counts = Counter(name for _, name in jump)
    assert counts["due-soon"] == counts["overdue"] == counts["hold-ending"] == 7
    assert counts["weekly"] == counts["weekly-chase"] == 1
    # Each at its own moment: the daily sweeps at REMINDER_TIME, the chase on Friday at 16:00.
    assert (at("2027-03-02"), "due-soon") in jump
    assert (at("2027-03-05", "16:00"), "weekly-chase") in jump
    # The interval jobs run at every moment and at the end (APScheduler's coalescing).
    last, names = moments(jobs, config, T0, T0 + STEPS["hour"])[-1]
    assert last == T0 + STEPS["hour"] and "hold-expiry" in names and "due-soon" not in names


async def test_advancing_the_demo_clock_queues_each_push_once_at_its_moment(db: Database) -> None:
    config = settings()
    await demo_world(db, config)
    clock = DemoClock(base=frozen(T0))
    jobs = build_registry()
    ctx = JobContext(db=db, settings=config, clock=clock)
    # A day in hours, then six days: pushes arrive on the days they are due.
    for _ in range(24):
        await advance(jobs, ctx, clock, STEPS["hour"])
    assert clock() == T0 + timedelta(days=1)
    first_day = Counter((kind, card) for kind, card, _ in await outbox(db))
    seeded = {("hold_ready", "S1"): 1, ("reserved_note", "M1"): 1}
    assert first_day == Counter({**seeded, ("due_soon", "S1"): 1, ("overdue", "S2"): 1})
    for _ in range(6):
        await advance(jobs, ctx, clock, STEPS["day"])
    queued = await outbox(db)
    assert Counter((kind, card) for kind, card, _ in queued) == Counter(
        {
            **seeded,
            ("due_soon", "S1"): 1,
            ("hold_ending", "S1"): 1,
            ("due_day", "S1"): 1,
            ("hold_expired", "S1"): 1,
            ("overdue", "S1"): 1,  # day 1 after Wednesday
            ("overdue", "S2"): 2,  # the slot of last Saturday, then this Saturday's
            ("chase_monitor_list", "M1"): 1,  # Friday 16:00
            ("chase_student", "S1"): 1,
            ("chase_student", "S2"): 1,
        }
    )
    # The sweeps saw the moved clock, not the real one: each push is stamped with its moment.
    stamped = {(kind, card): created for kind, card, created in queued}
    assert stamped[("due_day", "S1")] == at("2027-03-03")
    assert stamped[("overdue", "S1")] == at("2027-03-04")
    assert stamped[("chase_monitor_list", "M1")] == at("2027-03-05", "16:00")
    # The whole week's runs again, each at its moment (a sweep meeting a moment twice, as
    # overlapping runs of the real scheduler and the control may): nothing is queued twice.
    for moment, names in moments(jobs, config, T0, clock()):
        again = JobContext(db=db, settings=config, clock=DemoClock(base=frozen(moment)))
        for name in names:
            assert await jobs.run_once(name, again) == 0, (moment, name)
    assert len(await outbox(db)) == len(queued)


async def test_the_senders_quiet_hours_follow_the_demo_clock(db: Database) -> None:
    async with BotApiEmulator(TOKEN, bot_username="shuxiang_clock_bot") as emu:
        # Reminders queued at 22:00, inside the quiet hours: they wait for the morning.
        config = settings(
            quiet_hours="21:30-07:00",
            reminder_time="22:00",
            bot_api_url=emu.base_url,
            bot_token=TOKEN,
        )
        await demo_world(db, config)
        for n in (7001, 7002, 7003):
            emu.add_user(n, first_name=str(n))
        # The demo's evening, whatever the hour the suite runs at.
        clock = DemoClock(base=frozen(at("2027-03-01", "21:00")))
        jobs = build_registry()
        sender = Sender(db, build_sender_bot(config, TOKEN), config, clock=clock)
        ctx = JobContext(db=db, settings=config, clock=clock, poke=sender.poke)
        try:
            assert await sender.drain() == 2  # 21:00: the seeded hold's two go out
            await advance(jobs, ctx, clock, STEPS["hour"])  # 22:00: the sweeps, in quiet hours
            waiting = len(await outbox(db)) - 2
            assert waiting >= 2  # S1's due-soon, S2's overdue
            assert await sender.drain() == 0
            for _ in range(8):
                await advance(jobs, ctx, clock, STEPS["hour"])
            assert clock() == at("2027-03-02", "06:00")
            assert await sender.drain() == 0
            await advance(jobs, ctx, clock, STEPS["hour"])
            await advance(jobs, ctx, clock, STEPS["hour"])  # 08:00: morning
            assert await sender.drain() == waiting
        finally:
            await sender.bot.session.close()
        texts = [m.get("text") or "" for m in emu.bot_messages(7001)]
    assert any("还有 2 天到期" in text for text in texts), texts


async def test_a_sweep_that_fails_does_not_keep_the_others_from_their_moment() -> None:
    ran: list[datetime] = []

    async def broken(ctx: JobContext) -> int:
        raise RuntimeError("a bug in one sweep")

    async def counting(ctx: JobContext) -> int:
        ran.append(ctx.clock())
        return 1

    jobs = JobRegistry()
    jobs.add(ScheduledJob("broken", daily, broken, "jobs.due_soon"))
    jobs.add(ScheduledJob("counting", daily, counting, "jobs.due_day"))
    clock = DemoClock(base=frozen(T0))
    # Neither job opens the database.
    ctx = JobContext(db=cast(Database, None), settings=settings(), clock=clock)
    run = await advance(jobs, ctx, clock, STEPS["week"])
    assert run.failed == ["broken"] * 7 and run.done == {"counting": 7}
    assert ran[0] == at("2027-03-02") and ran[-1] == at("2027-03-08")
    assert clock() == T0 + timedelta(weeks=1)
