"""Benchmark: updates per second one bot worker handles, with Telegram answering fast or slowly.

    .venv/bin/python benchmarks/throughput.py [--readers 200] [--cycles 2] [--delays 0,50,200]
        [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--no-sqlite]
        [--profile 0] [--in-flight 64]

The bot (``build_app`` and ``run_polling``, as ``shuxiang run`` runs it) polls the Bot API
emulator over HTTP. The emulator and the readers run in a second process, so the bot's CPU is
its own (user + system time of this process, threads included, over the run). Every reply call
(sendMessage, edits, answerCallbackQuery) is answered after an injected delay: 0, 50 or 200 ms.

Each of ``--readers`` bound readers (one loan each) does ``--cycles`` rounds of 7 updates, each
waiting for the answer to the one before (a closed loop, no think time), except the first two:

1. a search for 数学 (40 titles, every copy out) and 2. /loans, sent together: the list must
   come before the loans (per-user order);
3. a result pressed: the book card; 4. 预约 on it; 5. /holds; 6. 取消 under the hold;
   7. 确定 (the hold cancelled, the list edited).

Two of the seven write (the hold placed and cancelled). Reported per database and delay:
updates/s (updates / time from the first to the last), p50 and p99 from an update to its answer
(the reply a reader waits for; with every reader in a closed loop and no think time the bot is
saturated, so this is mostly the wait in line), the bot's CPU (share of one core, and CPU
milliseconds per update) and the emulator's (with the readers: it shares the machine), SQL
statements and transactions per update (BEGIN, COMMIT and pragmas are statements too),
getUpdates per update, the most updates running at once (peak), updates without an answer
(missing), replies out of order, and messages sent beyond one per step (an update answered
twice). The per-user throttle (8 updates in 5 s) is lifted: a reader in a closed loop against a
fast bot exceeds it, and that is not what is measured. Targets per worker: ≥ 120 updates/s with
no delay and ≥ 100/s with 50 ms, on both databases; none missing, none out of order.

The peer, measured in the same run on the same handlers, database and emulator: aiogram's own
``Dispatcher.start_polling`` (``handle_as_tasks=True``, its default), what a bot built on aiogram
gets without Shuxiang's poller: every update a task at once, no bound, no per-user order, each
update confirmed as soon as it is fetched (rows ``aiogram``). ``--no-peer`` skips it.

``--profile D``: the SQLite run at delay D under cProfile; its top lines are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import multiprocessing
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "777000888:BENCH-throughput"
CHAT_BASE = 30_000_000
TITLES = 40
QUERY = "数学"
REPLY_METHODS = (
    "sendmessage",
    "editmessagetext",
    "editmessagereplymarkup",
    "answercallbackquery",
)
STEPS = 7
TARGETS = {0: 120.0, 50: 100.0}
JSON = dict[str, Any]


# -- the readers' side: the emulator process ------------------------------------------------------


@dataclass
class Call:
    method: str
    params: JSON
    result: Any
    at: float


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    updates: int = 0
    missing: int = 0
    out_of_order: int = 0
    sends: int = 0  # sendMessage calls the readers received
    first: float = 0.0
    last: float = 0.0


def _emulator_process(conn: Connection, readers: int) -> None:
    asyncio.run(_emulator_main(conn, readers))


async def _emulator_main(conn: Connection, readers: int) -> None:
    from sandbox.emulator import BotApiEmulator
    from sandbox.emulator.protocol import as_int

    inboxes: dict[int, asyncio.Queue[Call]] = {}

    class LoadEmulator(BotApiEmulator):
        """Hands each reply call to its reader as it is answered (no scan of the store)."""

        async def _call_method(
            self, name: str, params: JSON, uploads: dict[str, Any] | None = None
        ) -> Any:
            result = await super()._call_method(name, params, uploads)
            chat = as_int(params.get("chat_id"))
            if name == "answercallbackquery":
                record = self._callbacks.get(str(params.get("callback_query_id")))
                chat = record.chat_id if record is not None else None
            if chat in inboxes:
                inboxes[chat].put_nowait(Call(name, params, result, time.perf_counter()))
            return result

    loop = asyncio.get_running_loop()
    async with LoadEmulator(TOKEN) as emu:
        for i in range(readers):
            emu.add_user(CHAT_BASE + i, first_name=f"读者{i}")
            inboxes[CHAT_BASE + i] = asyncio.Queue()
        conn.send(("ready", emu.base_url))
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "stop":
                break
            _, delay_ms, cycles = command
            await emu.wait_polling(timeout=120)
            emu.faults.clear()
            for method in REPLY_METHODS:
                emu.faults.add(method, "slow", delay=delay_ms / 1000, times=None)
            # A round by a few readers first (SQLAlchemy's statement caches, the search's
            # first queries), not measured.
            warm = Tally()
            await asyncio.gather(
                *(
                    _reader(emu, inboxes[CHAT_BASE + i], CHAT_BASE + i, i, 1, warm)
                    for i in range(min(10, readers))
                )
            )
            emu.reset_sent_counts()
            conn.send(("started",))
            tally = Tally()
            tally.first = time.perf_counter()
            cpu0 = time.process_time()
            await asyncio.gather(
                *(
                    _reader(emu, inboxes[CHAT_BASE + i], CHAT_BASE + i, i, cycles, tally)
                    for i in range(readers)
                )
            )
            tally.last = time.perf_counter()
            cpu = time.process_time() - cpu0
            emu.faults.clear()
            await asyncio.sleep(1.0)  # anything sent twice has arrived by now
            # Messages the bot sent beyond the one each step waited for: an update answered twice.
            duplicates = emu.sent_total - tally.sends
            conn.send(("done", tally, duplicates, cpu))


def _data_of(message: JSON, prefix: str) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [
        str(b["callback_data"])
        for row in markup.get("inline_keyboard", [])
        for b in row
        if str(b.get("callback_data", "")).startswith(prefix)
    ]


def _sent(call: Call) -> bool:
    return call.method == "sendmessage"


@dataclass
class _Reader:
    emu: Any
    inbox: asyncio.Queue[Call]
    chat: int
    index: int
    tally: Tally

    async def answer(self, pushed: float, final: Any) -> Call | None:
        """Calls for this chat until ``final(call)``; the first one's time is the latency."""
        first: float | None = None
        while True:
            try:
                call = await asyncio.wait_for(self.inbox.get(), 60)
            except TimeoutError:
                self.tally.missing += 1
                return None
            if call.method == "sendmessage":
                self.tally.sends += 1
            if first is None:
                first = call.at
                self.tally.latencies.append(first - pushed)
            if final(call):
                return call
            if call.method == "answercallbackquery" and call.params.get("show_alert"):
                return None  # refused: on to the next round

    async def say(self, text: str, final: Any = _sent) -> Call | None:
        self.tally.updates += 1
        pushed = time.perf_counter()
        self.emu.send_text(self.chat, text)
        return await self.answer(pushed, final)

    async def press(self, message: JSON, data: str, final: Any = _sent) -> Call | None:
        self.tally.updates += 1
        pushed = time.perf_counter()
        self.emu.press_button(self.chat, message["message_id"], data)
        return await self.answer(pushed, final)

    async def round(self) -> None:
        self.tally.updates += 2
        pushed = time.perf_counter()
        self.emu.send_text(self.chat, QUERY)
        self.emu.send_text(self.chat, "/loans")
        listing = await self.answer(pushed, _sent)
        loans = await self.answer(pushed, _sent)
        if listing is None or loans is None:
            return
        if not _data_of(listing.result, "b:") and _data_of(loans.result, "b:"):
            self.tally.out_of_order += 1
            listing = loans
        books = _data_of(listing.result, "b:")
        if not books:
            return
        card = await self.press(listing.result, books[self.index % len(books)])
        reserve = _data_of(card.result, "r:") if card is not None else []
        if card is not None and reserve:
            await self.press(card.result, reserve[0])
        holds = await self.say("/holds")
        cancels = _data_of(holds.result, "ch:") if holds is not None else []
        if holds is None or not cancels:
            return
        sure = await self.press(holds.result, cancels[0])
        confirms = _data_of(sure.result, "chy:") if sure is not None else []
        if sure is None or not confirms:
            return
        done_id = sure.result["message_id"]
        await self.press(
            sure.result,
            confirms[0],
            lambda c: c.method == "editmessagetext" and c.params.get("message_id") == done_id,
        )


async def _reader(
    emu: Any, inbox: asyncio.Queue[Call], chat: int, index: int, cycles: int, tally: Tally
) -> None:
    reader = _Reader(emu, inbox, chat, index, tally)
    for _ in range(cycles):
        await reader.round()


# -- the bot's side: this process ---------------------------------------------------------------


async def seed(url: str, readers: int) -> None:
    """Bound readers with one loan each (another title); 40 titles 趣味数学第N讲 whose every
    copy is out, so the card offers 预约."""
    from sqlalchemy import insert, select

    from benchmarks.pushes import empty_database
    from storage.models import (
        Channel,
        Copy,
        CopyStatus,
        Endpoint,
        Loan,
        Reader,
        Record,
        Relation,
        utcnow,
    )

    db = await empty_database(url)
    now = utcnow()
    due = now + timedelta(days=20)
    async with db.transaction() as s:
        rows = [
            {"card_no": f"B{i:04d}", "name": f"读者{i}", "role": "student"} for i in range(readers)
        ]
        rows.append({"card_no": "KEEPER", "name": "老师", "role": "teacher"})
        await s.execute(
            insert(Reader),
            [{**r, "active": True, "created_at": now, "updated_at": now} for r in rows],
        )
        ids = dict((await s.execute(select(Reader.card_no, Reader.id))).tuples().all())
        await s.execute(
            insert(Endpoint),
            [
                {
                    "reader_id": ids[f"B{i:04d}"],
                    "channel": Channel.TELEGRAM.value,
                    "address": str(CHAT_BASE + i),
                    "relation": Relation.SELF.value,
                    "bound_at": now,
                }
                for i in range(readers)
            ],
        )
        titles = [("R-LOAN", "红楼梦")] + [
            (f"R{i:02d}", f"趣味数学第{i}讲") for i in range(1, TITLES + 1)
        ]
        await s.execute(insert(Record), [{"record_id": r, "title": t} for r, t in titles])
        pks = dict((await s.execute(select(Record.record_id, Record.id))).tuples().all())
        copies = [(f"H{i:04d}", pks["R-LOAN"]) for i in range(readers)]
        copies += [(f"M{i:02d}", pks[f"R{i:02d}"]) for i in range(1, TITLES + 1)]
        await s.execute(
            insert(Copy),
            [
                {
                    "barcode": b,
                    "record_pk": pk,
                    "status": CopyStatus.ON_LOAN.value,
                    "created_at": now,
                }
                for b, pk in copies
            ],
        )
        copy_ids = dict((await s.execute(select(Copy.barcode, Copy.id))).tuples().all())
        loans = [(copy_ids[f"H{i:04d}"], ids[f"B{i:04d}"]) for i in range(readers)]
        loans += [(copy_ids[f"M{i:02d}"], ids["KEEPER"]) for i in range(1, TITLES + 1)]
        await s.execute(
            insert(Loan),
            [
                {"copy_id": c, "reader_id": r, "lent_at": now, "due_at": due, "renewals": 0}
                for c, r in loans
            ],
        )
    await db.dispose()


async def pg_url(admin: str) -> str:
    """A database of the benchmark's own on the server of ``admin`` (created if missing)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(admin)
    conn = await asyncpg.connect(
        user=parsed.username or "postgres",
        password=parsed.password,
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        database=parsed.database or "postgres",
    )
    try:
        name = "shuxiang_bench_throughput"
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


@dataclass
class Row:
    backend: str
    polling: str  # "shuxiang" (bot/concurrency.py) or the peer, "aiogram" (start_polling)
    delay_ms: int
    updates: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu: float
    cpu_ms: float  # CPU per update
    statements: float  # SQL statements per update (BEGIN, COMMIT and pragmas included)
    transactions: float  # per update
    polls: float  # getUpdates per update
    missing: int
    out_of_order: int
    duplicates: int
    emulator_cpu: float  # the emulator's and the readers' process, share of one core
    peak: int


async def scenario(
    url: str,
    backend: str,
    delay_ms: int,
    args: argparse.Namespace,
    search: Any,
    profile: cProfile.Profile | None,
    peer: bool = False,
) -> Row:
    from sqlalchemy import event

    from bot.app import build_app
    from bot.config import load_settings
    from handlers.middlewares import ThrottlingMiddleware

    await seed(url, args.readers)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    emulator = ctx.Process(target=_emulator_process, args=(child, args.readers), daemon=True)
    emulator.start()
    loop = asyncio.get_running_loop()
    _, base_url = await loop.run_in_executor(None, parent.recv)
    settings = load_settings(
        _env_file=None,
        database_url=url,
        bot_token=TOKEN,
        bot_api_url=base_url,
        quiet_hours="",
        max_updates_in_flight=args.in_flight,
        data_dir=Path(args.workdir),
        log_level="WARNING",
    )
    app = build_app(settings, token=TOKEN, search=search)
    for middleware in app.dp.update.outer_middleware:
        if isinstance(middleware, ThrottlingMiddleware):
            middleware.limit = 10**9
    async with app.db.transaction() as session:
        await app.search.rebuild_index(session)
    counts = {"statements": 0, "transactions": 0}
    for engine in [e.sync_engine for e in app.db.engines]:
        event.listen(engine, "before_cursor_execute", lambda *a: _count(counts, "statements"))
        event.listen(engine, "begin", lambda conn: _count_begin(counts, conn))
    running = {"now": 0, "peak": 0}
    app.dp.update.outer_middleware(_InFlight(running))
    if peer:
        polling = asyncio.create_task(
            app.dp.start_polling(
                app.bot,
                handle_as_tasks=True,
                handle_signals=False,
                close_bot_session=False,
                allowed_updates=app.dp.resolve_used_update_types(),
            )
        )
    else:
        polling = asyncio.create_task(app.run_polling(handle_signals=False))
    try:
        parent.send(("go", delay_ms, args.cycles))
        await loop.run_in_executor(None, parent.recv)  # the bot polls, warmed up
        reply = loop.run_in_executor(None, parent.recv)
        cpu0 = time.process_time()
        counts.update(statements=0, transactions=0)
        polls0 = app.poller.polls if app.poller is not None else 0
        if profile is not None:
            profile.enable()
        _, tally, duplicates, emulator_cpu = await reply
        if profile is not None:
            profile.disable()
        cpu = time.process_time() - cpu0
        measured = dict(counts)
        measured["polls"] = (app.poller.polls if app.poller is not None else 0) - polls0
    finally:
        if peer:
            await app.dp.stop_polling()
        await app.stop()
        await asyncio.wait_for(polling, timeout=60)
        await app.close()
        parent.send(("stop",))
        emulator.join(timeout=10)
    span = max(tally.last - tally.first, 1e-9)
    lat = sorted(tally.latencies) or [0.0]
    return Row(
        backend=backend,
        polling="aiogram" if peer else "shuxiang",
        delay_ms=delay_ms,
        updates=tally.updates,
        rate=tally.updates / span,
        p50_ms=statistics.median(lat) * 1000,
        p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        cpu=cpu / span,
        cpu_ms=cpu / max(tally.updates, 1) * 1000,
        statements=measured["statements"] / max(tally.updates, 1),
        transactions=measured["transactions"] / max(tally.updates, 1),
        # aiogram's loop does not count its getUpdates calls.
        polls=float("nan") if peer else measured["polls"] / max(tally.updates, 1),
        missing=tally.missing,
        out_of_order=tally.out_of_order,
        duplicates=duplicates,
        emulator_cpu=emulator_cpu / span,
        peak=running["peak"],
    )


class _InFlight:
    """Counts updates inside the dispatcher at once (the peak), for both pollers alike."""

    def __init__(self, running: dict[str, int]) -> None:
        self.running = running

    async def __call__(self, handler: Any, event: Any, data: dict[str, Any]) -> Any:
        self.running["now"] += 1
        self.running["peak"] = max(self.running["peak"], self.running["now"])
        try:
            return await handler(event, data)
        finally:
            self.running["now"] -= 1


def _count_begin(counts: dict[str, int], conn: Any) -> None:
    """A transaction the database sees (PostgreSQL's readers run in autocommit: no BEGIN)."""
    if not getattr(conn.connection.dbapi_connection, "autocommit", False):
        _count(counts, "transactions")


def _count(counts: dict[str, int], what: str) -> None:
    counts[what] += 1


COLUMNS = (
    ("database", "<10"),
    ("polling", "<8"),
    ("delay", ">6"),
    ("updates", ">7"),
    ("upd/s", ">6"),
    ("target", ">8"),
    ("p50 ms", ">7"),
    ("p99 ms", ">7"),
    ("CPU", ">4"),
    ("emuCPU", ">6"),
    ("ms/upd", ">6"),
    ("SQL/u", ">5"),
    ("tx/u", ">4"),
    ("poll/u", ">6"),
    ("peak", ">4"),
    ("missing", ">7"),
    ("order", ">5"),
    ("dups", ">4"),
)


def table(rows: list[Row]) -> str:
    head = " ".join(f"{name:{spec}}" for name, spec in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        target = TARGETS.get(r.delay_ms)
        verdict = "-"
        if target is not None and r.polling == "shuxiang":
            verdict = f"{target:.0f} {'ok' if r.rate >= target else 'LOW'}"
        cells = (
            r.backend,
            r.polling,
            f"{r.delay_ms}ms",
            r.updates,
            f"{r.rate:.1f}",
            verdict,
            f"{r.p50_ms:.0f}",
            f"{r.p99_ms:.0f}",
            f"{r.cpu:.0%}",
            f"{r.emulator_cpu:.0%}",
            f"{r.cpu_ms:.2f}",
            f"{r.statements:.1f}",
            f"{r.transactions:.1f}",
            "-" if r.polls != r.polls else f"{r.polls:.2f}",
            r.peak,
            r.missing,
            r.out_of_order,
            r.duplicates,
        )
        lines.append(" ".join(f"{c:{spec}}" for c, (_, spec) in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    import os

    from nlp.search import SearchEngine

    logging.basicConfig(level=logging.WARNING)
    search = SearchEngine(cache_dir=Path(args.workdir) / "jieba")
    delays = [int(d) for d in args.delays.split(",") if d.strip()]
    backends: list[tuple[str, str]] = []
    if not args.no_sqlite:
        backends.append(("sqlite", ""))
    if args.pg:
        backends.append(("postgresql", await pg_url(args.pg)))
    rows: list[Row] = []
    for backend, url in backends:
        for delay in delays:
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{args.workdir}/bench-{delay}.sqlite3"
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{args.workdir}/bench-{delay}.sqlite3")
            profile = cProfile.Profile() if backend == "sqlite" and args.profile == delay else None
            row = await scenario(url, backend, delay, args, search, profile)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            if not args.no_peer:
                if backend == "sqlite":
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(f"{args.workdir}/bench-{delay}.sqlite3")
                row = await scenario(url, backend, delay, args, search, None, peer=True)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
            if profile is not None:
                out = io.StringIO()
                stats = pstats.Stats(profile, stream=out).strip_dirs()
                stats.sort_stats("tottime").print_stats(args.profile_lines)
                stats.sort_stats("cumulative").print_stats(args.profile_lines)
                print(out.getvalue())
                if args.profile_out:
                    stats.dump_stats(args.profile_out)
    load = os.getloadavg()
    print(
        f"\n{args.readers} readers x {args.cycles} rounds of {STEPS} updates, "
        f"max_updates_in_flight={args.in_flight}; load average {load[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(table(rows))
    ours = [r for r in rows if r.polling == "shuxiang"]
    if any(r.missing or r.out_of_order or r.duplicates for r in ours):
        print("FAILED: updates missing, answered out of order, or twice")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--readers", type=int, default=200)
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--delays", default="0,50,200")
    p.add_argument("--pg", default="", help="a PostgreSQL URL (its server gets a bench database)")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--no-peer", action="store_true", help="skip aiogram's start_polling rows")
    from bot.config import Settings

    p.add_argument(
        "--in-flight",
        type=int,
        default=Settings.model_fields["max_updates_in_flight"].default,
        help="max_updates_in_flight (default: the setting's)",
    )
    p.add_argument("--profile", type=int, default=None, help="profile the SQLite run at this delay")
    p.add_argument("--profile-lines", type=int, default=25)
    p.add_argument("--profile-out", default="", help="save the profile (pstats) here")
    p.add_argument("--workdir", default="")
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse()
    with tempfile.TemporaryDirectory(prefix="shuxiang-throughput-") as tmp:
        arguments.workdir = arguments.workdir or tmp
        asyncio.run(main(arguments))
