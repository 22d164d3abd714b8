"""Long polling with concurrent updates (bot/concurrency.py): the real dispatcher and middlewares
(build_app) polled by BoundedPolling through getUpdates of the in-process emulator. Each user's
updates are handled exactly once and in order, different users' overlap, the in-flight bound
holds, SQLite writers queue instead of failing on the write lock, and a stop lets the running
updates finish and leaves the unstarted ones unconfirmed. No timing: overlaps are proven by one
user's handler waiting for another's."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from aiogram import F, Router
from aiogram.types import Message
from sqlalchemy import func, select

from bot.app import Shuxiang, build_app
from bot.concurrency import BoundedPolling
from bot.config import load_settings
from bot.speedups import inline_filters
from handlers.context import AnyCtx
from handlers.middlewares import writes
from nlp.search import SearchEngine
from storage.db import Database
from storage.models import ClosedDay, ProcessedUpdate
from tests.chat.harness import TOKEN, InProcessEmulator, RecordingSession

USERS = 12
EACH = 4
# A handler that waits for another user's longer than this has found no overlap: it fails the
# test instead of hanging it (never reached when the overlap is there).
STUCK_S = 20.0


@dataclass
class Probe:
    """What the test handler saw: each user's numbers in the order handled, and the overlap."""

    seen: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    running: int = 0
    most: int = 0
    hooks: dict[tuple[int, int], Callable[[], Awaitable[None]]] = field(default_factory=dict)


def probe_router(probe: Probe) -> Router:
    router = Router(name="probe")

    async def numbered(message: Message, ctx: AnyCtx) -> None:
        """``n 7``: a writer that records 7 (a closed day per update: a real write); ``r 7`` a
        reader (SQLite runs one writer at a time: only readers can wait for each other)."""
        assert message.text is not None and message.from_user is not None
        kind, digits = message.text.split()
        user, number = message.from_user.id, int(digits)
        probe.running += 1
        probe.most = max(probe.most, probe.running)
        try:
            hook = probe.hooks.get((user, number))
            if hook is not None:
                await hook()
            if kind == "n":
                day = date(2000, 1, 1) + timedelta(days=user % 1000 * 100 + number)
                ctx.session.add(ClosedDay(day=day, name=f"{user}/{number}"))
                await ctx.session.flush()
            await asyncio.sleep(0)  # others run while this one holds its transaction
            probe.seen[user].append(number)
            ctx.replies.add(message.answer(f"ack {number}"))
        finally:
            probe.running -= 1

    router.message.register(numbered, F.text.startswith("n "), flags=writes())
    router.message.register(numbered, F.text.startswith("r "))
    return router


@dataclass
class Rig:
    app: Shuxiang
    emu: InProcessEmulator
    probe: Probe
    poller: BoundedPolling | None = None
    task: asyncio.Task[None] | None = None

    def start(self, max_in_flight: int) -> None:
        dp = self.app.dp
        self.poller = BoundedPolling(
            dp,
            self.app.bot,
            max_in_flight=max_in_flight,
            polling_timeout=5,
            before_confirm=self.app.pipeline.flush_sent,
        )
        self.app.pipeline.hold_when_draining = False
        self.app.pipeline.batch_sent = True
        workflow = {**dp.workflow_data, "dispatcher": dp, "bots": [self.app.bot]}
        self.task = asyncio.create_task(self.poller.run(**workflow))

    async def stop(self) -> None:
        assert self.poller is not None and self.task is not None
        self.poller.stop()
        await asyncio.wait_for(self.task, STUCK_S)

    def send(self, user: int, number: int, kind: str = "n") -> int:
        return int(self.emu.send_text(user, f"{kind} {number}")["update_id"])

    async def acks(self, user: int, count: int) -> list[str]:
        await self.emu._wait_until(
            lambda: True if len(self.texts(user)) >= count else None, STUCK_S
        )
        return self.texts(user)

    def texts(self, user: int) -> list[str]:
        return [m.get("text") or "" for m in self.emu.bot_messages(user)]


@pytest.fixture
async def rig(
    db: Database,
    db_url: str,
    search_engine: SearchEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Rig]:
    """The bot (``db`` only truncates PostgreSQL first): SQLite's busy timeout cut to 1 ms, so a
    writer that met another on the write lock instead of queueing would fail at once."""
    emu = InProcessEmulator()
    for module in ("bot.app", "bot.sender"):
        monkeypatch.setattr(f"{module}.bot_session", lambda _: RecordingSession(emu))
    settings = load_settings(_env_file=None, database_url=db_url, bot_token=TOKEN, quiet_hours="")
    ours = Database(db_url, busy_timeout_s=0.001, write_wait_s=STUCK_S)
    app = build_app(settings, token=TOKEN, db=ours, search=search_engine)
    probe = Probe()
    app.dp.include_router(probe_router(probe))
    # First, before the bot's own text handlers (a search takes any text).
    app.dp.sub_routers.insert(0, app.dp.sub_routers.pop())
    for user in range(USERS):
        emu.add_user(7000 + user, first_name=f"读者{user}")
    rig = Rig(app=app, emu=emu, probe=probe)
    try:
        yield rig
    finally:
        if rig.task is not None and not rig.task.done():
            await rig.stop()
        await app.bot.session.close()
        await app.sender.bot.session.close()
        await ours.dispose()


async def test_users_interleaved_each_in_order_exactly_once(rig: Rig) -> None:
    sent: list[int] = []
    for number in range(EACH):  # interleaved: user 0's 1st, user 1's 1st, ..., user 0's 2nd
        sent += [rig.send(7000 + user, number) for user in range(USERS)]
    rig.start(max_in_flight=8)
    for user in range(USERS):
        assert await rig.acks(7000 + user, EACH) == [f"ack {n}" for n in range(EACH)]
        assert rig.probe.seen[7000 + user] == list(range(EACH))
    await rig.stop()
    assert rig.poller is not None and rig.poller.peak > 1  # users ran side by side
    async with rig.app.db.transaction(read_only=True) as s:
        assert set(await s.scalars(select(ProcessedUpdate.update_id))) == set(sent)
        assert await s.scalar(select(func.count()).select_from(ClosedDay)) == USERS * EACH
        # Sent replies are forgotten before the getUpdates that confirms their updates.
        assert set(await s.scalars(select(ProcessedUpdate.replies))) == {None}
    assert not rig.emu.pending_updates  # all confirmed
    assert not any("没能保存" in t for u in range(USERS) for t in rig.texts(7000 + u))


async def test_one_users_update_waits_for_anothers(rig: Rig) -> None:
    """User A's first update blocks until user B's update has run: possible only side by side.
    A's second update (same user) must not start before the first finishes."""
    b_ran = asyncio.Event()

    async def a_waits() -> None:
        await asyncio.wait_for(b_ran.wait(), STUCK_S)

    async def b_sets() -> None:
        b_ran.set()

    rig.probe.hooks[(7000, 0)] = a_waits
    rig.probe.hooks[(7001, 0)] = b_sets
    rig.send(7000, 0, "r")
    rig.send(7000, 1, "r")
    rig.send(7001, 0, "r")
    rig.start(max_in_flight=4)
    assert await rig.acks(7000, 2) == ["ack 0", "ack 1"]
    assert await rig.acks(7001, 1) == ["ack 0"]
    assert rig.probe.seen[7000] == [0, 1]


async def test_the_in_flight_bound_holds(rig: Rig) -> None:
    """Bound 3: the first three users' handlers wait until all three run; none of the others
    starts before one of them finishes."""
    three = asyncio.Event()

    async def gather_three() -> None:
        if rig.probe.running == 3:
            three.set()
        await asyncio.wait_for(three.wait(), STUCK_S)

    for user in range(USERS):
        rig.probe.hooks[(7000 + user, 0)] = gather_three
        rig.send(7000 + user, 0, "r")
    rig.start(max_in_flight=3)
    for user in range(USERS):
        assert await rig.acks(7000 + user, 1) == ["ack 0"]
    assert rig.probe.most == 3
    assert rig.poller is not None and rig.poller.peak == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_stop_finishes_the_running_update_and_leaves_the_queued_one(rig: Rig) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        started.set()
        await asyncio.wait_for(release.wait(), STUCK_S)

    rig.probe.hooks[(7000, 0)] = hold
    first = rig.send(7000, 0)
    second = rig.send(7000, 1)  # queued behind the first: never started
    rig.start(max_in_flight=4)
    await asyncio.wait_for(started.wait(), STUCK_S)
    assert rig.poller is not None
    rig.poller.stop()
    release.set()
    assert rig.task is not None
    await asyncio.wait_for(rig.task, STUCK_S)
    assert rig.texts(7000) == ["ack 0"]  # the running one finished and answered
    async with rig.app.db.transaction(read_only=True) as s:
        assert set(await s.scalars(select(ProcessedUpdate.update_id))) == {first}
    # The finished one is confirmed, the queued one is delivered again to the next process.
    assert [u["update_id"] for u in rig.emu.pending_updates] == [second]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_filters_run_in_the_event_loop(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiogram sends a synchronous filter (``F.text == ...``) through a thread; the assembly
    makes every filter of the bot's routers run in the loop (bot/speedups.py)."""
    threads: list[object] = []
    real = asyncio.to_thread

    async def counted(func: Callable[..., object], /, *args: object, **kwargs: object) -> object:
        threads.append(func)
        return await real(func, *args, **kwargs)

    inline_filters(rig.app.dp)  # the probe router came after the assembly
    monkeypatch.setattr(asyncio, "to_thread", counted)
    rig.send(7000, 0, "r")
    rig.emu.send_text(7001, "/help")
    rig.start(max_in_flight=4)
    assert await rig.acks(7000, 1) == ["ack 0"]
    assert "使用说明" in (await rig.acks(7001, 1))[0]
    assert threads == []
