"""The broadcast crash test: one notice to every reader of the shared roster (1,332) through the
emulator, while the sending process (`shuxiang scheduler`) is killed with SIGKILL at random moments
and restarted, at least ten times. Nobody misses the notice; a second copy is possible only for a
send under way at a kill (Telegram has no idempotency key), so duplicates never exceed the
sender's in-flight bound per kill. On PostgreSQL two senders run at once (SKIP LOCKED claims).

Reported, not asserted (timings belong to benchmarks/pushes.py): the claims left at each kill and
the time until all of them went out after the restart (a sender restarting alone takes them back
at once; beside a live sender they wait for the lease, 5 s here). The restarted process had its
imports done by the process it was forked from; benchmarks/pushes.py times cold restarts."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sandbox.broadcast import ROSTER, claimed_ids, deliveries, seed_broadcast, time_to_sent
from sandbox.emulator import BotApiEmulator
from storage.db import Database
from storage.models import Notification, OutboxStatus
from tests.conftest import BACKENDS, needs
from tests.e2e.forked import ForkedProcess, ForkServer

TOKEN = "555000555:CRASH-test-token"
KILLS = 10
CONCURRENCY = 4

# The highest rate the settings allow, for every sender: the emulator enforces no flood limit
# here (benchmarks/pushes.py times the sender against Telegram's limits).
RATE = 30.0

pytestmark = [
    needs(ROSTER.exists(), f"shared roster not available: {ROSTER}"),
    # Some 45 s of sending plus ten process restarts, per database.
    pytest.mark.slow,
]


def sender_env(db_url: str, api: str, tmp_path: Path) -> dict[str, str]:
    """`shuxiang scheduler`'s settings here. Each sender is forked from the session's fork server
    (tests/e2e/forked.py): eleven cold starts per database were most of the test's time
    (benchmarks/pushes.py times a cold restart)."""
    return {
        **os.environ,
        "SHUXIANG_DATABASE_URL": db_url,
        "SHUXIANG_BOT_TOKEN": TOKEN,
        "SHUXIANG_BOT_API_URL": api,
        "SHUXIANG_DATA_DIR": str(tmp_path / "var"),
        "SHUXIANG_QUIET_HOURS": "",
        "SHUXIANG_SEND_RATE": str(RATE),
        "SHUXIANG_SENDER_CONCURRENCY": str(CONCURRENCY),
        # The shortest lease, to keep the test short; the default (30 s) is benchmarked.
        "SHUXIANG_SENDER_LEASE_SECONDS": "5",
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }


async def end(sender: ForkedProcess, sig: signal.Signals) -> None:
    """Send ``sig`` and wait until the process is gone."""
    sender.send_signal(sig)
    await asyncio.wait_for(sender.wait(), 30)


async def unsent(db: Database) -> int:
    async with db.transaction(read_only=True) as s:
        count = await s.scalar(
            select(func.count(Notification.id)).where(
                Notification.status != OutboxStatus.SENT.value
            )
        )
    return int(count or 0)


async def until(condition: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
    """Wait for a condition on the emulator's state (polled; no assertion after a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)


# Both: on PostgreSQL two senders share the outbox through SKIP LOCKED claims.
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_broadcast_through_ten_sigkills(
    forks: ForkServer, db: Database, db_url: str, backend: str, tmp_path: Path
) -> None:
    rng = random.Random(9)
    async with BotApiEmulator(TOKEN) as emu:
        chats = await seed_broadcast(db, emu)
        senders = 2 if backend == "postgresql" else 1
        env = sender_env(db_url, emu.base_url, tmp_path)
        running = [forks.run(["scheduler"], env) for _ in range(senders)]

        def sent() -> int:
            # A counter: emu.calls() copies every request, too slow to poll 50 times a second.
            return emu.sent_total

        kills, claimed_at_kill, recoveries = 0, [], []
        try:
            while kills < KILLS:
                # A random moment once the restarted sender is sending again.
                target = sent() + rng.randint(1, 30)
                await until(lambda t=target: sent() >= t, timeout=120)  # type: ignore[misc]
                victim = rng.randrange(senders)
                await end(running[victim], signal.SIGKILL)
                kills += 1
                # Every claim now (on PostgreSQL the live sender's too): each must go out.
                claims = await claimed_ids(db)
                claimed_at_kill.append(len(claims))
                restarted = time.monotonic()
                running[victim] = forks.run(["scheduler"], env)
                recoveries.append(asyncio.create_task(time_to_sent(db, claims, restarted)))
            await until(lambda: sent() >= len(chats), timeout=300)
            recovered = await asyncio.wait_for(asyncio.gather(*recoveries), 300)
            for _ in range(1500):  # leased claims of the last kill come free, then go out
                if not await unsent(db):
                    break
                await asyncio.sleep(0.2)
            else:
                raise TimeoutError
        finally:
            for task in recoveries:
                task.cancel()
            for sender in running:
                await end(sender, signal.SIGTERM)
    counts = deliveries(emu, chats)
    missing = sum(1 for n in counts.values() if n == 0)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    async with db.transaction(read_only=True) as s:
        rows = await s.execute(
            select(Notification.status, func.count(Notification.id)).group_by(Notification.status)
        )
        states = {status: int(n) for status, n in rows}
    print(
        f"\n[{backend}] {len(chats)} readers, {senders} sender(s), {kills} SIGKILLs: "
        f"missing {missing}, duplicates {duplicates} (bound {kills * CONCURRENCY}: "
        f"{CONCURRENCY} in flight per kill), claimed-but-unsent at each kill {claimed_at_kill}, "
        f"all of them sent {max(recovered):.1f} s after the restart at most "
        f"({', '.join(f'{r:.1f}' for r in recovered)}), outbox {states}"
    )
    assert missing == 0
    assert duplicates <= kills * CONCURRENCY
    assert states == {OutboxStatus.SENT.value: len(chats)}
