"""End-to-end harness: the real bot (assembly function, dispatcher, long polling) talking over
HTTP to the Bot API emulator on 127.0.0.1, on a migrated SQLite or PostgreSQL database."""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import Settings, load_settings
from nlp.search import SearchEngine
from sandbox.demo import prepare_demo_data
from sandbox.emulator import BotApiEmulator
from storage.db import Database
from tests.e2e.forked import ForkServer
from tests.people import JSON, TOKEN, Clock, Library, Person, bot_settings, buttons

__all__ = ["JSON", "TOKEN", "Clock", "Harness", "Person", "buttons", "until"]


async def until(check: Callable[[], object], *, timeout: float = 30.0, what: str = "") -> None:  # noqa: ASYNC109
    """Wait until ``check()`` is true: the emulator's state (calls, messages) or the database
    changed as expected. Polls; never a fixed sleep followed by an assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _truth(check()):
        if loop.time() > deadline:
            raise TimeoutError(f"not reached within {timeout}s: {what or check}")
        await asyncio.sleep(0.02)


async def _truth(value: object) -> bool:
    return bool(await value) if inspect.isawaitable(value) else bool(value)


@dataclass
class Harness(Library):
    emu: BotApiEmulator
    polling: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.polling = asyncio.create_task(self.app.run_polling(handle_signals=False))

    async def started(self, polls_before: int = 0) -> None:
        """Until the bot polls: its start-up (menus, the index check, warm-up) is over, as in a
        real process, before a test holds locks or counts calls."""
        await until(
            lambda: len(self.emu.calls("getUpdates")) > polls_before, what="the bot's first poll"
        )

    async def shut(self) -> None:
        await self.app.stop()
        if self.polling is not None:
            await asyncio.wait_for(self.polling, timeout=10)
        await self.app.bot.session.close()
        await self.app.sender.bot.session.close()

    async def restart(self) -> None:
        """Stop the bot and start a new one with the same settings, database and clock, as a
        redeploy or a crash does: whatever the old process kept in memory is gone."""
        await self.shut()
        self.app = build_app(self.app.settings, token=TOKEN, db=self.db, clock=self.clock)
        polls = len(self.emu.calls("getUpdates"))
        self.start()
        await self.started(polls)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The e2e tier runs on SQLite: what the bot does is the same on both databases and is
    tested on both in tests/integration and tests/chat. A test about PostgreSQL itself (SKIP
    LOCKED between two senders, a cut connection) asks for it with
    ``@pytest.mark.parametrize("backend", BACKENDS or ["postgresql"], indirect=True)``."""
    return str(request.param)


@pytest.fixture
async def harness(
    db: Database, db_url: str, search_engine: SearchEngine, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """The bot polling the emulator; its settings as :func:`tests.people.bot_settings` says."""
    async with BotApiEmulator(TOKEN, bot_username="shuxiang_test_bot") as emu:
        settings = load_settings(
            _env_file=None,
            database_url=db_url,
            bot_api_url=emu.base_url,
            bot_token=TOKEN,
            outbox_interval_seconds=0.3,
            # A refused reply is retried at once: the backoff's production 0.5 s, 1 s, 2 s is
            # wall-clock time the suite would spend waiting.
            bot_retry_backoff_seconds=0.01,
            **bot_settings(request),
        )
        clock = Clock()
        harness = Harness(
            emu=emu,
            db=db,
            policy=settings.loan_policy(),
            app=build_app(settings, token=TOKEN, db=db, search=search_engine, clock=clock),
            clock=clock,
        )
        harness.start()
        await harness.started()
        try:
            yield harness
        finally:
            await harness.shut()


@pytest.fixture(scope="session")
def forks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """`shuxiang …` as real processes forked from one that did the imports (forked.py)."""
    server = ForkServer(tmp_path_factory.mktemp("runs"))
    yield server
    server.close()


def _sqlite_settings(path: Path) -> Settings:
    return load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")


async def _build_demo(path: Path) -> None:
    settings = _sqlite_settings(path)
    db = Database(settings.checked_database_url())
    try:
        await prepare_demo_data(db, settings, settings.search_engine())
    finally:
        await db.dispose()  # the last connection checkpoints the WAL into the file


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """`shuxiang demo`'s database as it starts, built once for the whole run (all xdist workers
    share the run's temporary folder; a lock makes one of them build it): the sample imports and
    the seeded history are most of a sandbox's start."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    template = shared / "demo-template.sqlite3"
    with (shared / "demo-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            building = shared / "demo-building.sqlite3"
            asyncio.run(_build_demo(building))
            building.rename(template)
    return template


@pytest.fixture
def demo_settings(demo_template: Path, tmp_path: Path) -> Settings:
    """Settings of a sandbox on its own copy of the demo database (start_sandbox finds the sample
    data there and seeds nothing more, as on a second `make demo`)."""
    copy = tmp_path / "demo.sqlite3"
    shutil.copyfile(demo_template, copy)
    return _sqlite_settings(copy)
