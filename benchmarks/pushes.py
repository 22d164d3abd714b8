"""Benchmark: pushes within Telegram's limits, next to aiogram's plain sending loop.

    .venv/bin/python benchmarks/pushes.py [--rate 25] [--pg postgresql+asyncpg://...]

1. Broadcast: one notice to every reader of the shared roster (1,332) through the Bot API
   emulator with Telegram's flood limits on (30 messages/s overall, 1/s per chat, bursts of 30
   and 3). Ours: the bot's own sender (bot/sender.py) draining the outbox on SQLite at
   SHUXIANG_SEND_RATE. Peers in the same run: aiogram's plain loop (``await bot.send_message`` in
   a ``for``; a 429 loses that message), and the same loop waiting ``retry_after`` and retrying.
   Reported: sustained rate (messages / time from the first to the last send), 429s, duplicates,
   missing. Targets: ours ≥ 95% of the configured rate, zero 429s, zero duplicates.
2. Sweeps: the due-soon, due-day and overdue sweeps over 10,000 open loans all due on one day
   (every loan queues a reminder), each then run again (idempotent: nothing new), on SQLite (and
   PostgreSQL with --pg; its tables are ANALYZEd after seeding, as autovacuum would). Target:
   ≤ 1 s, and we aim at ≤ 0.5 s.
3. Recovery: `shuxiang scheduler` sending the broadcast with the default lease (30 s), SIGKILLed
   at random moments and restarted; after each restart, the time until every message claimed at
   the kill is recorded as sent. SQLite: one sender, which restarts alone and takes the claims
   back at once. PostgreSQL (--pg): two senders, so the restarted one is not alone and the
   claims wait for their lease. Target: < 60 s after the restart.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiogram import Bot  # noqa: E402
from aiogram.exceptions import TelegramRetryAfter  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from bot.config import load_settings  # noqa: E402
from bot.sender import Sender  # noqa: E402
from sandbox.broadcast import ROSTER, claimed_ids, seed_broadcast, time_to_sent  # noqa: E402
from sandbox.emulator import BotApiEmulator  # noqa: E402
from services.notifications.reminders import (  # noqa: E402
    ReminderRules,
    sweep_due_day,
    sweep_due_soon,
    sweep_overdue,
)
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Base,
    Channel,
    Copy,
    Endpoint,
    Loan,
    Reader,
    Record,
    Relation,
)

TOKEN = "777000777:BENCH-pushes"
TEXT = "本周五下午图书馆闭馆盘点，请提前借还。"
TZ = ZoneInfo("Asia/Shanghai")
TARGET_RATE_SHARE = 0.95
TARGET_SWEEP_S = 1.0
AIM_SWEEP_S = 0.5
TARGET_RECOVERY_S = 60.0
LOANS = 10_000
KILLS = 3


def flood_emulator() -> BotApiEmulator:
    emu = BotApiEmulator(TOKEN)
    emu.flood.enable(global_rate=30, global_burst=30, chat_rate=1, chat_burst=3)
    return emu


def figures(emu: BotApiEmulator, chats: list[int], first: float, last: float) -> dict[str, float]:
    counts = emu.sent_counts()
    delivered = sum(1 for c in chats if counts.get(c, 0) > 0)
    span = max(last - first, 1e-9)
    return {
        "rate": (emu.sent_total - 1) / span if emu.sent_total > 1 else 0.0,
        "elapsed": last - first,
        "429s": float(emu.flood.rejected),
        "duplicates": float(sum(n - 1 for n in counts.values() if n > 1)),
        "missing": float(len(chats) - delivered),
    }


class SendClock:
    """First and last send times, from the emulator's own counter."""

    def __init__(self, emu: BotApiEmulator) -> None:
        self.emu = emu
        self.first = self.last = 0.0
        self.task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        seen = 0
        while True:
            if self.emu.sent_total != seen:
                now = time.perf_counter()
                if not seen:
                    self.first = now
                seen, self.last = self.emu.sent_total, now
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self.task.cancel()


async def ours(rate: float, workdir: Path) -> dict[str, float]:
    db_path = workdir / "ours.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    await upgrade(db.engine)
    async with flood_emulator() as emu:
        chats = await seed_broadcast(db, emu)
        settings = load_settings(
            _env_file=None, bot_api_url=emu.base_url, quiet_hours="", send_rate=rate
        )
        sender = Sender(db, Bot(TOKEN, session=emu.aiogram_session()), settings)
        clock = SendClock(emu)
        task = asyncio.create_task(sender.run())
        try:
            await emu.wait_for_sent(len(chats), timeout=len(chats) / rate * 3 + 60)
        finally:
            sender.stop()
            await task
            clock.stop()
            await sender.bot.session.close()
        result = figures(emu, chats, clock.first, clock.last)
    await db.dispose()
    return result


async def plain_loop(wait_on_429: bool) -> dict[str, float]:
    async with flood_emulator() as emu:
        chats = [10_000_000 + i for i in range(1, _roster_size() + 1)]
        for chat in chats:
            emu.add_user(chat, first_name=str(chat))
        bot = Bot(TOKEN, session=emu.aiogram_session())
        clock = SendClock(emu)
        try:
            for chat in chats:
                while True:
                    try:
                        await bot.send_message(chat, TEXT)
                        break
                    except TelegramRetryAfter as exc:
                        if not wait_on_429:
                            break  # the plain loop: that message is lost
                        await asyncio.sleep(exc.retry_after)
        finally:
            clock.stop()
            await bot.session.close()
        return figures(emu, chats, clock.first, clock.last)


def _roster_size() -> int:
    with ROSTER.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip()) - 1


async def empty_database(url: str) -> Database:
    """The database at ``url`` migrated, and emptied when it is a PostgreSQL one a run before
    left full (SQLite runs start from a new file)."""
    db = Database(url)
    await upgrade(db.engine)
    if db.dialect == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return db


async def sweep_bench(url: str) -> dict[str, tuple[float, int, float, int]]:
    db = await empty_database(url)
    now = datetime(2027, 3, 28, 7, 30, tzinfo=TZ).astimezone(UTC)
    due = datetime(2027, 3, 31, 23, 59, 59, tzinfo=TZ).astimezone(UTC)
    async with db.transaction() as s:
        await s.execute(
            insert(Reader),
            [
                {
                    "card_no": f"B{i:05d}",
                    "name": f"读者{i}",
                    "role": "student",
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(LOANS)
            ],
        )
        await s.execute(
            insert(Endpoint),
            [
                {
                    "channel": Channel.TELEGRAM.value,
                    "address": str(i + 1),
                    "reader_id": i + 1,
                    "relation": Relation.SELF.value,
                    "bound_at": now,
                }
                for i in range(LOANS)
            ],
        )
        await s.execute(
            insert(Record),
            [
                {
                    "record_id": f"R{i}",
                    "title": f"书名{i}",
                    "catalogued_at": now,
                    "updated_at": now,
                    "loan_count": 0,
                }
                for i in range(LOANS)
            ],
        )
        await s.execute(
            insert(Copy),
            [
                {"barcode": f"C{i}", "record_pk": i + 1, "status": "on_loan", "created_at": now}
                for i in range(LOANS)
            ],
        )
        await s.execute(
            insert(Loan),
            [
                {
                    "copy_id": i + 1,
                    "reader_id": i + 1,
                    "lent_at": now - timedelta(days=27),
                    "due_at": due,
                    "renewals": 0,
                }
                for i in range(LOANS)
            ],
        )
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    # The seeding's garbage collected now, not in the middle of the first timed sweep (the
    # collector stays on while timing).
    gc.collect()
    rules = ReminderRules(tz=TZ)
    sweeps = {
        "due-soon (3 days before)": (sweep_due_soon, now),
        "due-day": (sweep_due_day, now + timedelta(days=3)),
        "overdue (day 1)": (sweep_overdue, now + timedelta(days=4)),
    }
    results = {}
    for name, (sweep, at) in sweeps.items():
        runs: list[float] = []
        for _ in range(2):
            start = time.perf_counter()
            async with db.transaction() as s:
                queued = await sweep(s, rules, at)
            runs += [time.perf_counter() - start, queued]
        results[name] = (runs[0], int(runs[1]), runs[2], int(runs[3]))
    await db.dispose()
    return results


async def start_scheduler(
    url: str, api: str, workdir: Path, rate: float
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "SHUXIANG_DATABASE_URL": url,
        "SHUXIANG_BOT_TOKEN": TOKEN,
        "SHUXIANG_BOT_API_URL": api,
        "SHUXIANG_DATA_DIR": str(workdir / "var"),
        "SHUXIANG_QUIET_HOURS": "",
        "SHUXIANG_SEND_RATE": str(rate),
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "scheduler",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def recovery_bench(url: str, senders: int, workdir: Path) -> list[float]:
    """Seconds from each restart until every message claimed at the kill was sent."""
    db = Database(url)
    await upgrade(db.engine)
    if db.dialect == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    rng = random.Random(9)
    rate = 25.0 / senders
    async with flood_emulator() as emu:
        await seed_broadcast(db, emu)
        procs = [await start_scheduler(url, emu.base_url, workdir, rate) for _ in range(senders)]
        watches = []
        try:
            # The kills come while the broadcast lasts; each restart's claims are watched at once.
            for _ in range(KILLS):
                await emu.wait_for_sent(emu.sent_total + rng.randint(5, 60), timeout=120)
                victim = rng.randrange(senders)
                procs[victim].send_signal(signal.SIGKILL)
                await procs[victim].wait()
                claims = await claimed_ids(db)
                restarted = time.monotonic()
                procs[victim] = await start_scheduler(url, emu.base_url, workdir, rate)
                watches.append(asyncio.create_task(time_to_sent(db, claims, restarted)))
            waits = list(await asyncio.wait_for(asyncio.gather(*watches), 300))
        finally:
            for watch in watches:
                watch.cancel()
            for proc in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(proc.wait(), 60)
    await db.dispose()
    return waits


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--pg", help="a PostgreSQL URL (its tables are emptied) for the sweep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs = {
            f"shuxiang sender (rate {args.rate:g}/s)": await ours(args.rate, workdir),
            "aiogram plain loop": await plain_loop(wait_on_429=False),
            "aiogram loop + wait retry_after": await plain_loop(wait_on_429=True),
        }
        sweeps = {"sqlite": await sweep_bench(f"sqlite+aiosqlite:///{workdir / 'sweep.sqlite3'}")}
        if args.pg:
            sweeps["postgresql"] = await sweep_bench(args.pg)
        sqlite_url = f"sqlite+aiosqlite:///{workdir / 'recovery.sqlite3'}"
        recovery = {"sqlite, 1 sender": await recovery_bench(sqlite_url, 1, workdir)}
        if args.pg:
            recovery["postgresql, 2 senders"] = await recovery_bench(args.pg, 2, workdir)
    n = _roster_size()
    print(f"\n## Broadcast: {n} readers, emulator flood limits 30/s overall, 1/s per chat\n")
    print("| sender | sustained rate | elapsed | 429s | duplicates | missing |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in runs.items():
        print(
            f"| {name} | {r['rate']:.1f}/s | {r['elapsed']:.1f} s | {r['429s']:.0f} "
            f"| {r['duplicates']:.0f} | {r['missing']:.0f} |"
        )
    print(f"\n## Sweeps over {LOANS:,} open loans (all due on one day)\n")
    print("| database | sweep | first run | reminders queued | second run | queued again |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, by_sweep in sweeps.items():
        for name, (t1, q1, t2, q2) in by_sweep.items():
            print(f"| {backend} | {name} | {t1:.3f} s | {q1} | {t2:.3f} s | {q2} |")
    print(f"\n## Recovery: claims of a SIGKILLed sender, default lease, {KILLS} kills\n")
    print("| database | after each restart, all claims sent within | max |")
    print("|---|---|---:|")
    for backend, waits in recovery.items():
        each = ", ".join(f"{w:.1f} s" for w in waits)
        print(f"| {backend} | {each} | {max(waits):.1f} s |")
    ours_run = next(iter(runs.values()))
    checks = {
        f"rate ≥ {TARGET_RATE_SHARE:.0%} of {args.rate:g}/s": ours_run["rate"]
        >= TARGET_RATE_SHARE * args.rate,
        "zero 429s": ours_run["429s"] == 0,
        "zero duplicates": ours_run["duplicates"] == 0,
        "nothing missing": ours_run["missing"] == 0,
        f"sweeps ≤ {TARGET_SWEEP_S:g} s": all(
            max(t1, t2) <= TARGET_SWEEP_S for s in sweeps.values() for t1, _, t2, _ in s.values()
        ),
        f"(aim) sweeps ≤ {AIM_SWEEP_S:g} s": all(
            max(t1, t2) <= AIM_SWEEP_S for s in sweeps.values() for t1, _, t2, _ in s.values()
        ),
        f"claims of a killed sender sent < {TARGET_RECOVERY_S:g} s after its restart": all(
            max(waits) < TARGET_RECOVERY_S for waits in recovery.values()
        ),
    }
    print("\n" + "\n".join(f"- {'PASS' if ok else 'FAIL'}: {what}" for what, ok in checks.items()))


if __name__ == "__main__":
    asyncio.run(main())
