"""Benchmark: Shuxiang as several webhook workers behind nginx (issue 22).

    .venv/bin/python benchmarks/cluster.py [--readers 500] [--broadcast 2000] [--rate 25]

The deployment is the one deploy/up.sh brings up (nginx, PostgreSQL, Redis from Debian's
packages), here on private ports and folders, with the Bot API emulator (sandbox/emulator) in
this process standing in for Telegram: it posts updates to nginx as Telegram does — the secret
header, up to 100 at once, one user's in order, any non-2xx or lost connection retried.

1. Updates: ``--readers`` readers (500), each sending 10 updates (5,000): binding with a code,
   a burst of three at once (我的借阅, their book's title, 我的预约: their replies must come in
   that order), renewing their loan (button), a search for the neighbour's book, its card
   (button), a hold on it (button), 我的预约, 我的借阅 — at a reader's pace (1.1 s between
   steps: the bot throttles a user past 8 updates in 5 s), all readers at once. Run with one
   worker, with three, and with three of which one is SIGKILLed when half the updates are in.
   Checked: every writing update recorded once (processed updates), every reader bound once,
   every loan renewed exactly once as its reader was told (or, the reader overtaken by the
   neighbour's hold, refused as told), every hold placed exactly once, no lent copy marked
   otherwise, each burst's replies in order, every step answered, every hold's notice to the
   book's borrower sent once. Throughput: updates / wall time from the first update to the
   last reply. Target: three workers ≥ 1.6× one. The hold notices (one per reader) go through
   the outbox at the deployment's send rate, so their last one comes n / rate seconds after the
   first hold at best, however many workers: reported beside the throughput, not in it.
2. Broadcast: a notice to ``--broadcast`` readers (2,000) drained by the three workers' senders
   together under one send rate kept in Redis (SHUXIANG_SEND_RATE, 25/s), the emulator enforcing
   Telegram's kind of limit at that rate (a bucket of one second's sends refilled at 25/s; 1/s
   per chat). Target: zero 429s (never above the configured rate), no duplicates, nothing
   missing. Also reported: the most sends arriving within any sliding second (the limiter's
   slots are exactly 1/rate apart; arrival adds the machine's scheduling jitter).

Prints tables, and the CPU each part used (each worker, this process: emulator and readers,
PostgreSQL, nginx, Redis) against the machine's cores, and what that CPU allows: one worker runs
on one core at most, and every part shares the cores, so N workers can gain at most
(cores / CPU per update of all parts) / (one worker's ceiling) over one: 2b/(b+o) on two cores,
for b ms an update in the worker and o in the rest (about 1.4× at b ≈ 6, o ≈ 2.6). Also the
machine's busy share from /proc/stat, over the run and its busiest 5 s: the part counts miss
nothing the machine did. (PostgreSQL's count is every ``postgres`` process's: other databases'
work on a shared machine included.)

``--delay MS``: the Bot API answers the bot's replies after MS. ``--worker-cpu C`` (a diagnosis,
root only): each worker held to C of a core by a cgroup CPU quota, so that the machine's cores
are not what three workers run out of; what then keeps them from scaling is the design's.

Needs root (or sudo) for deploy/up.sh's nginx site; PostgreSQL at --pg-admin. ``--only
1|3|kill`` runs one deployment (trying it out); BENCH_LOG_LEVEL=INFO and BENCH_STEP_TIMEOUT=<s>
help when a run goes wrong (workers' logs in /tmp/shuxiang-cluster-bench/log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from benchmarks.throughput import REPLY_METHODS  # noqa: E402
from bot.config import load_settings  # noqa: E402
from sandbox.emulator import BotApiEmulator  # noqa: E402
from services.actor import Actor  # noqa: E402
from services.circulation import lending  # noqa: E402
from services.circulation.kinds import RESERVED_NOTE  # noqa: E402
from services.notifications import enqueue_many  # noqa: E402
from services.notifications.notice import NOTICE, NoticePayload  # noqa: E402
from services.readers.binding import issue_codes  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Channel,
    Copy,
    Endpoint,
    Hold,
    Loan,
    Notification,
    OutboxStatus,
    ProcessedUpdate,
    Reader,
    Record,
    Relation,
    utcnow,
)

TOKEN = "777000778:BENCH-cluster"
DB_NAME = "shuxiang_cluster_bench"
BENCH_DIR = Path("/tmp/shuxiang-cluster-bench")  # noqa: S108 (root-owned runs, private names)
NGINX_PORT = 18180
BASE_PORT = 18181
EMU_PORT = 18179
SITE = "shuxiang-bench"
BASH = shutil.which("bash") or "/bin/bash"
TARGET_SCALE = 1.6
UPDATES_PER_READER = 10
WRITERS_PER_READER = 3  # binding, renewal, hold
CHAT_BASE = 3_000_000
BROADCAST_BASE = 4_000_000
THINK_S = 1.1
RENEWED, OVERTAKEN = "renewed", "overtaken"
STEP_TIMEOUT_S = float(os.environ.get("BENCH_STEP_TIMEOUT", "180"))


@dataclass
class Run:
    name: str
    workers: int
    updates: int = 0
    seconds: float = 0.0
    posts: int = 0
    non_2xx: int = 0
    retried_updates: int = 0
    problems: list[str] = field(default_factory=list)
    killed_at: int | None = None
    # The hold notices (one per reader's hold, to the book's borrower): sent, and when the last
    # was delivered, from the first update.
    notices: int = 0
    drained: float = 0.0
    overtaken: int = 0  # renewals refused, as the reader was told: the neighbour's hold came first
    # CPU seconds used during the run: the workers, this process (emulator + readers), PostgreSQL.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


# -- the database ------------------------------------------------------------------------------


def db_url(admin: str) -> str:
    base, _, _ = admin.rpartition("/")
    return f"{base}/{DB_NAME}".replace("postgresql://", "postgresql+asyncpg://", 1)


async def fresh_database(admin: str) -> Database:
    conn = await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        await conn.close()
    db = Database(db_url(admin))
    await upgrade(db.engine)
    return db


@dataclass
class Reading:
    card_no: str
    chat: int
    code: str
    own_title: str
    neighbour_title: str
    # What the renewal's answer said: renewed, or refused because the neighbour's hold came
    # first (a reader held up, as behind a killed worker's lock, can be overtaken).
    renewal: str = ""


def title_of(i: int) -> str:
    return f"书香集第{i + 1}卷"


async def seed_library(db: Database, readers: int) -> list[Reading]:
    """One book per reader, lent to them; a binding code each; the search index built."""
    settings = load_settings(_env_file=None, database_url=db.url, data_dir=BENCH_DIR / "state")
    policy = settings.loan_policy()
    now = utcnow()
    async with db.transaction() as s:
        await s.execute(
            insert(Record),
            [{"record_id": f"c{i:05d}", "title": title_of(i)} for i in range(readers)],
        )
        pks = dict((await s.execute(select(Record.record_id, Record.id))).tuples().all())
        await s.execute(
            insert(Copy),
            [{"barcode": f"CL{i:05d}", "record_pk": pks[f"c{i:05d}"]} for i in range(readers)],
        )
        await s.execute(
            insert(Reader),
            [
                {
                    "card_no": f"C{i:05d}",
                    "name": f"读者{i}",
                    "role": "student",
                    "class_name": f"高一({i % 10 + 1})班",
                }
                for i in range(readers)
            ],
        )
        for i in range(readers):
            await lending.checkout(
                s,
                card_no=f"C{i:05d}",
                barcode=f"CL{i:05d}",
                policy=policy,
                actor=Actor.cli(),
                now=now,
            )
        codes = await issue_codes(s, policy=policy, card_nos=[f"C{i:05d}" for i in range(readers)])
        by_card = {c.card_no: c.code for c in codes}
        await settings.search_engine().rebuild_index(s)
    return [
        Reading(
            f"C{i:05d}",
            CHAT_BASE + i,
            by_card[f"C{i:05d}"],
            title_of(i),
            title_of((i + 1) % readers),
        )
        for i in range(readers)
    ]


async def seed_broadcast(db: Database, emu: BotApiEmulator, n: int) -> list[int]:
    now = utcnow()
    async with db.transaction() as s:
        await s.execute(
            insert(Reader),
            [{"card_no": f"N{i:05d}", "name": f"学生{i}", "role": "student"} for i in range(n)],
        )
        ids = list(
            await s.scalars(select(Reader.id).where(Reader.card_no.like("N%")).order_by(Reader.id))
        )
        await s.execute(
            insert(Endpoint),
            [
                {
                    "reader_id": rid,
                    "channel": Channel.TELEGRAM.value,
                    "address": str(BROADCAST_BASE + k),
                    "relation": Relation.SELF.value,
                    "bound_at": now,
                }
                for k, rid in enumerate(ids)
            ],
        )
        text = "本周五下午图书馆闭馆盘点，请提前借还。"
        await enqueue_many(
            s,
            NOTICE,
            [(rid, NoticePayload(notice="cluster", reader_id=rid, text=text)) for rid in ids],
            now=now,
        )
    chats = [BROADCAST_BASE + k for k in range(len(ids))]
    for chat in chats:
        emu.add_user(chat, first_name=f"n{chat}")
    return chats


# -- the deployment ----------------------------------------------------------------------------


def deploy_env(admin: str, emu: BotApiEmulator, workers: int, rate: float) -> dict[str, str]:
    python = sys.executable
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHUXIANG_")},
        "WORKERS": str(workers),
        "BASE_PORT": str(BASE_PORT),
        "NGINX_LISTEN": f"127.0.0.1:{NGINX_PORT}",
        "SITE": SITE,
        "CONF_DIR": str(BENCH_DIR / "conf"),
        "STATE_DIR": str(BENCH_DIR / "state"),
        "RUN_DIR": str(BENCH_DIR / "run"),
        "LOG_DIR": str(BENCH_DIR / "log"),
        "USE_SYSTEMD": "0",
        "APP_CMD": f"{python} -m bot.cli",
        "PYTHONPATH": str(ROOT),
        "SHUXIANG_BOT_TOKEN": TOKEN,
        "SHUXIANG_BOT_API_URL": emu.base_url,
        "SHUXIANG_DATABASE_URL": db_url(admin),
        "SHUXIANG_REDIS_URL": "redis://127.0.0.1:6379/0",
        "SHUXIANG_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "SHUXIANG_WEBHOOK_URL": f"http://127.0.0.1:{NGINX_PORT}/telegram",
        "SHUXIANG_QUIET_HOURS": "",
        "SHUXIANG_SEND_RATE": f"{rate:g}",
        "SHUXIANG_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }


def up(env: dict[str, str]) -> None:
    subprocess.run([BASH, str(ROOT / "deploy" / "up.sh")], env=env, check=True)


def down(env: dict[str, str]) -> None:
    subprocess.run([BASH, str(ROOT / "deploy" / "down.sh")], env=env, check=False)


def worker_pid(port: int) -> int:
    return int((BENCH_DIR / "run" / f"worker-{port}.pid").read_text().strip())


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_name(name: str) -> float:
    """CPU seconds of every live process named ``name`` (with its reaped children's: PostgreSQL
    backends that ended meanwhile are counted in the postmaster's)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == name:
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
            except OSError:
                continue
    return total


SERVICES = {"postgres": "postgres", "nginx": "nginx", "redis": "redis-server"}


def machine_ticks() -> tuple[int, int]:
    """The machine's (busy, all) CPU ticks so far, every core's (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """CPU seconds over a run, sampled so that a killed worker's count is kept; and how busy
    the whole machine was (the run's ramp-up and tail included, and its busiest 5 s)."""

    def __init__(self, workers: list[int]) -> None:
        self.workers = workers
        self.start = {pid: cpu_seconds(pid) for pid in workers}
        self.last = dict(self.start)
        self.own = time.process_time()
        self.services = {k: cpu_by_name(v) for k, v in SERVICES.items()}
        self.ticks = [machine_ticks()]

    def sample(self) -> None:
        for pid in self.workers:
            self.last[pid] = max(self.last[pid], cpu_seconds(pid))
        self.ticks.append(machine_ticks())

    def busy(self) -> tuple[float, float]:
        """The machine's busy share over the run, and over its busiest 5 s (10 samples)."""
        (b0, t0), (b1, t1) = self.ticks[0], self.ticks[-1]
        windows = zip(self.ticks, self.ticks[10:], strict=False)  # the last 10 start none
        peak = max(((b - a) / (t - s) for (a, s), (b, t) in windows if t > s), default=0.0)
        return ((b1 - b0) / (t1 - t0) if t1 > t0 else 0.0), peak

    def result(self) -> dict[str, float]:
        self.sample()
        used = {f"worker {i + 1}": self.last[p] - self.start[p] for i, p in enumerate(self.workers)}
        average, peak = self.busy()
        return {
            "machine busy": average,
            "machine busy, busiest 5 s": peak,
            "workers": sum(used.values()),
            **used,
            "emulator+readers": time.process_time() - self.own,
            **{k: cpu_by_name(v) - self.services[k] for k, v in SERVICES.items()},
        }


# -- the readers -------------------------------------------------------------------------------


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, what: str) -> None:
        if len(self.items) < 20:
            self.items.append(what)


async def reader(emu: BotApiEmulator, r: Reading, problems: Problems) -> None:
    chat, wait = r.chat, STEP_TIMEOUT_S

    async def say(text: str, contains: str | None = None) -> dict[str, object]:
        sent = emu.send_text(chat, text)
        return await emu.wait_for_bot_message(
            chat, after_message_id=sent["message"]["message_id"], contains=contains, timeout=wait
        )

    async def press(message: dict[str, object], label: str) -> str:
        update = emu.press_button_text(chat, int(str(message["message_id"])), label)
        answer = await emu.wait_for_callback_answer(update["callback_query"]["id"], timeout=wait)
        return str(answer.get("text") or "")

    await say(f"/start {r.code}", contains="绑定成功")
    await pause()
    # A burst: three updates at once; their replies must come back in this order (pushes about
    # holds placed by others may come in between).
    first = emu.send_text(chat, "/loans")["message"]["message_id"]
    emu.send_text(chat, r.own_title)
    last = emu.send_text(chat, "/holds")["message"]["message_id"]
    await emu.wait_for_bot_message(chat, after_message_id=last, contains="预约", timeout=wait)
    replies = [
        m
        for m in emu.bot_messages(chat)
        if int(m["message_id"]) > first and "排队" not in str(m.get("text"))
    ][:3]
    texts = [str(m.get("text") or "") for m in replies]
    if not (
        len(texts) == 3
        and "我的借阅" in texts[0]
        and r.own_title in texts[1]
        and "预约" in texts[2]
    ):
        problems.add(f"chat {chat}: burst replies out of order: {[t[:12] for t in texts]}")
    await pause()
    mark = emu.mark()
    refusal = await press(replies[0], f"续借《{r.own_title}》")
    if not refusal:
        await emu.wait_for_bot_message(chat, contains="已续借", since=mark, timeout=wait)
        r.renewal = RENEWED
    elif "预约排队" in refusal:
        r.renewal = OVERTAKEN
    else:
        problems.add(f"chat {chat}: renewal refused: {refusal}")
    await pause()
    # The neighbour's book: the search lists it first (among titles alike), its card has 预约.
    found = await say(r.neighbour_title, contains=r.neighbour_title)
    await pause()
    mark = emu.mark()
    await press(found, "1")
    await pause()
    card = await emu.wait_for_bot_message(
        chat, predicate=lambda m: any("预约" in b for b in buttons(m)), since=mark, timeout=wait
    )
    await press(card, "预约")
    await pause()
    await say("/holds", contains="我的预约")
    await pause()
    await say("/loans", contains="我的借阅")


async def pause() -> None:
    """A reader's pace: the bot lets one user send 8 updates in 5 s (ThrottlingMiddleware)."""
    await asyncio.sleep(THINK_S)


def buttons(message: dict[str, object]) -> list[str]:
    markup = message.get("reply_markup") or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return [str(b.get("text", "")) for row in rows for b in row]


async def run_updates(
    emu: BotApiEmulator, db: Database, readings: list[Reading], run: Run, kill_port: int | None
) -> None:
    for r in readings:
        emu.add_user(r.chat, first_name=f"r{r.chat}")
    problems = Problems()
    total = len(readings) * UPDATES_PER_READER
    attempts_before = len(emu.webhook_attempts)
    meter = CpuMeter([worker_pid(BASE_PORT + i) for i in range(run.workers)])

    async def sample() -> None:
        while True:
            meter.sample()
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    killer: asyncio.Task[None] | None = None
    if kill_port is not None:
        victim = worker_pid(kill_port)

        async def kill_midway() -> None:
            while True:
                done = {u for u, status in emu.webhook_attempts if 200 <= status < 300}
                if len(done) >= total // 2:
                    meter.sample()
                    os.kill(victim, signal.SIGKILL)
                    run.killed_at = len(done)
                    return
                await asyncio.sleep(0.05)

        killer = asyncio.create_task(kill_midway())
    started = time.perf_counter()
    results = await asyncio.gather(
        *(reader(emu, r, problems) for r in readings), return_exceptions=True
    )
    # Throughput ends at the last reply. The hold notices the holds queued still drain after
    # it, through the outbox at the deployment's one send rate (SHUXIANG_SEND_RATE): a floor of
    # n / rate seconds whatever the number of workers, so it is timed apart.
    run.seconds = time.perf_counter() - started
    sampler.cancel()
    run.cpu = meter.result()
    await emu.wait_idle(timeout=STEP_TIMEOUT_S)
    run.drained = time.perf_counter() - started
    if killer is not None:
        killer.cancel()
    for r, result in zip(readings, results, strict=True):
        if isinstance(result, BaseException):
            problems.add(f"chat {r.chat}: {type(result).__name__}: {str(result)[:1500]}")
    attempts = emu.webhook_attempts[attempts_before:]
    run.updates = len({u for u, _ in attempts})
    run.posts = len(attempts)
    run.non_2xx = sum(1 for _, status in attempts if not 200 <= status < 300)
    per_update: dict[int, int] = {}
    for u, _ in attempts:
        per_update[u] = per_update.get(u, 0) + 1
    run.retried_updates = sum(1 for n in per_update.values() if n > 1)
    run.notices = await check_library(db, readings, problems)
    run.overtaken = sum(1 for r in readings if r.renewal == OVERTAKEN)
    run.problems = problems.items


async def check_library(db: Database, readings: list[Reading], problems: Problems) -> int:
    """Checks the library's state after the run; returns how many hold notices were sent."""
    n = len(readings)
    async with db.transaction(read_only=True) as s:
        processed = await s.scalar(select(func.count()).select_from(ProcessedUpdate))
        bindings = await s.scalar(select(func.count()).select_from(Endpoint))
        renewals = dict(
            (
                await s.execute(
                    select(Reader.card_no, Loan.renewals).join(Loan, Loan.reader_id == Reader.id)
                )
            )
            .tuples()
            .all()
        )
        holds = await s.scalar(select(func.count()).select_from(Hold))
        per_reader = (
            await s.execute(
                select(Hold.reader_id, Hold.record_pk, func.count())
                .group_by(Hold.reader_id, Hold.record_pk)
                .having(func.count() > 1)
            )
        ).all()
        lent_and_shelved = await s.scalar(
            select(func.count())
            .select_from(Copy)
            .join(Loan, Loan.copy_id == Copy.id)
            .where(Loan.returned_at.is_(None), Copy.status != "on_loan")
        )
        notices = dict(
            (
                await s.execute(
                    select(Notification.status, func.count())
                    .where(Notification.kind == RESERVED_NOTE.name)
                    .group_by(Notification.status)
                )
            )
            .tuples()
            .all()
        )
    if processed != n * WRITERS_PER_READER:
        problems.add(f"{processed} writing updates recorded, expected {n * WRITERS_PER_READER}")
    if bindings != n:
        problems.add(f"{bindings} bindings, expected {n}")
    told = {RENEWED: 1, OVERTAKEN: 0}
    wrong = [r.card_no for r in readings if renewals.get(r.card_no) != told.get(r.renewal)]
    if wrong:
        problems.add(f"{len(wrong)} loans renewed otherwise than their readers were told: {wrong}")
    if holds != n or per_reader:
        problems.add(f"{holds} holds ({len(per_reader)} doubled), expected {n}")
    if lent_and_shelved:
        problems.add(f"{lent_and_shelved} copies lent but not marked on loan")
    if notices != {OutboxStatus.SENT.value: n}:
        problems.add(f"hold notices by status: {notices}, expected {n} sent")
    return notices.get(OutboxStatus.SENT.value, 0)


# -- the broadcast -----------------------------------------------------------------------------


async def broadcast(emu: BotApiEmulator, db: Database, n: int, rate: float) -> dict[str, float]:
    # Telegram's limits, but at the configured rate: a bucket of one second's sends refilled at
    # SEND_RATE (Telegram's own is 30/s); any send above it gets a 429.
    emu.flood.enable(global_rate=rate, global_burst=rate, chat_rate=1, chat_burst=3)
    before, first_stamp = emu.sent_total, len(emu.send_times)
    chats = await seed_broadcast(db, emu, n)
    await emu.wait_for_sent(before + len(chats), timeout=len(chats) / rate * 3 + 120)
    # When each send reached the emulator (its own stamp on arrival): the rate Telegram sees.
    stamps = emu.send_times[first_stamp:]
    counts = emu.sent_counts()
    most = max(bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps)) if stamps else 0
    async with db.transaction(read_only=True) as s:
        unsent = await s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.status != OutboxStatus.SENT.value)
        )
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 1.0
    return {
        "sent": float(sum(1 for c in chats if counts.get(c, 0) > 0)),
        "rate": (len(stamps) - 1) / span,
        "most_in_1s": float(most),
        "429s": float(emu.flood.rejected),
        "duplicates": float(sum(counts.get(c, 0) - 1 for c in chats if counts.get(c, 0) > 1)),
        "missing": float(sum(1 for c in chats if not counts.get(c, 0))),
        "unsent_rows": float(unsent or 0),
        "elapsed": span,
    }


# -- main --------------------------------------------------------------------------------------


async def one_run(
    args: argparse.Namespace, name: str, workers: int, kill: bool
) -> tuple[Run, dict[str, float] | None]:
    run = Run(name, workers)
    db = await fresh_database(args.pg_admin)
    emu = BotApiEmulator(TOKEN, webhook_retries=1000, webhook_backoff=0.05, webhook_backoff_max=1.0)
    await emu.start(port=EMU_PORT)
    env = deploy_env(args.pg_admin, emu, workers, args.rate)
    sent = None
    try:
        readings = await seed_library(db, args.readers)
        print(f"[{name}] deploying {workers} worker(s)…", flush=True)
        await asyncio.to_thread(up, env)
        if args.worker_cpu:
            for i in range(workers):
                hold_to(worker_pid(BASE_PORT + i), f"{SITE}-{i}", args.worker_cpu)
        if args.delay:  # after the webhook is set: setWebhook is not slowed
            for method in REPLY_METHODS:  # the replies and the hold notices
                emu.faults.add(method, "slow", delay=args.delay / 1000, times=None)
        kill_port = BASE_PORT + 1 if kill else None
        print(f"[{name}] {len(readings) * UPDATES_PER_READER} updates…", flush=True)
        await run_updates(emu, db, readings, run, kill_port)
        if args.broadcast and kill:
            print(f"[{name}] broadcast to {args.broadcast} readers…", flush=True)
            sent = await broadcast(emu, db, args.broadcast, args.rate)
    finally:
        await asyncio.to_thread(down, env)
        await emu.stop()
        await db.dispose()
        for i in range(workers if args.worker_cpu else 0):
            with contextlib.suppress(OSError):  # left behind (not empty) rather than hide an error
                (CPU_CGROUPS / f"{SITE}-{i}").rmdir()
    return run, sent


# cgroup v1's cpu controller (this machine's); cgroup v2 names the quota cpu.max instead.
CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")


def hold_to(pid: int, group: str, cores: float) -> None:
    """Hold a worker to ``cores`` of CPU time (a CFS quota): with each worker held below a core
    the machine's two cores are no longer what three workers run out of, so the run shows
    whether anything else (Redis, PostgreSQL, nginx, the outbox) keeps them from scaling."""
    path = CPU_CGROUPS / group
    path.mkdir(exist_ok=True)
    period = int((path / "cpu.cfs_period_us").read_text())
    (path / "cpu.cfs_quota_us").write_text(str(round(cores * period)))
    (path / "cgroup.procs").write_text(str(pid))


def _parts(cpu: dict[str, float]) -> dict[str, float]:
    """The CPU seconds of each part (not the machine's busy shares)."""
    return {k: v for k, v in cpu.items() if not k.startswith("machine")}


def print_cpu(runs: list[Run]) -> None:
    print("\nCPU during the updates (2 cores = 2 CPU-seconds per second of wall time):\n")
    print(
        "| deployment | workers (each) | emulator + readers | PostgreSQL | nginx | Redis "
        "| total / wall | CPU ms per update | machine busy: run, busiest 5 s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        c = r.cpu
        each = " + ".join(f"{c[k]:.0f}" for k in sorted(c) if k.startswith("worker "))
        total = sum(v for k, v in _parts(c).items() if not k.startswith("worker "))
        print(
            f"| {r.name} | {c.get('workers', 0):.0f} s ({each}) "
            f"| {c.get('emulator+readers', 0):.0f} s | {c.get('postgres', 0):.0f} s "
            f"| {c.get('nginx', 0):.1f} s | {c.get('redis', 0):.1f} s "
            f"| {total / r.seconds if r.seconds else 0:.2f} "
            f"| {1000 * c.get('workers', 0) / r.updates if r.updates else 0:.1f} "
            f"| {c.get('machine busy', 0):.0%}, {c.get('machine busy, busiest 5 s', 0):.0%} |"
        )
    # What the CPU allows (the readers' pace aside): one worker runs on one core at most, and
    # everything (workers, emulator, PostgreSQL, nginx, Redis) shares the machine's cores.
    cores = os.cpu_count() or 1
    print(f"\nCPU-bound ceilings from each run's CPU per update ({cores} cores):\n")
    print(
        "| deployment | CPU ms per update, all parts | one worker ≤ | all cores ≤ "
        "| bound on N / one |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in runs:
        if not r.updates:
            continue
        c = r.cpu
        total = sum(v for k, v in _parts(c).items() if not k.startswith("worker ")) / r.updates
        worker = c.get("workers", 0) / r.updates
        if total and worker:
            one = min(1 / worker, cores / total)
            print(
                f"| {r.name} | {1000 * total:.1f} | {one:.0f}/s | {cores / total:.0f}/s "
                f"| {cores / total / one:.2f}× |"
            )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--broadcast", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument(
        "--delay", type=int, default=0, help="Bot API answers to the bot's replies after this (ms)"
    )
    parser.add_argument(
        "--worker-cpu",
        type=float,
        help="hold each worker to this share of a core (cgroup CPU quota; a diagnosis)",
    )
    parser.add_argument("--only", choices=("1", "3", "kill"), help="one run only (trying it)")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (before anything runs)
    runs: list[Run] = []
    sent: dict[str, float] | None = None
    for name, workers, kill in (
        ("1 worker", 1, False),
        ("3 workers", 3, False),
        ("3 workers, one SIGKILLed midway", 3, True),
    ):
        if args.only and args.only != {1: "1", 3: "kill" if kill else "3"}[workers]:
            continue
        # A fresh env file each run (a new Redis prefix).
        (BENCH_DIR / "conf" / "env").unlink(missing_ok=True)
        run, result = await one_run(args, name, workers, kill)
        runs.append(run)
        sent = result or sent
    n = args.readers * UPDATES_PER_READER
    print(
        f"\n## Updates: {args.readers} readers × {UPDATES_PER_READER} = {n} through nginx, "
        f"the Bot API answering in {args.delay} ms"
        + (f", each worker held to {args.worker_cpu:g} core" if args.worker_cpu else "")
        + "\n"
    )
    print(
        "| deployment | updates | to the last reply | updates/s | webhook POSTs | non-2xx "
        "| updates retried | hold notices: sent, last at | problems |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        note = "none" if not r.problems else f"{len(r.problems)}: {r.problems[0]}"
        print(
            f"| {r.name} | {r.updates} | {r.seconds:.1f} s | {r.rate:.1f} | {r.posts} "
            f"| {r.non_2xx} | {r.retried_updates} | {r.notices}, {r.drained:.1f} s | {note} |"
        )
    print_cpu(runs)
    killed = runs[-1]
    if killed and killed.killed_at is not None:
        print(
            f"\nThe worker on port {BASE_PORT + 1} was SIGKILLed after {killed.killed_at} updates."
        )
    for r in runs:
        if r.overtaken:
            print(
                f"{r.name}: {r.overtaken} renewals refused as their readers were told (the "
                "neighbour's hold came first: a reader held up behind a killed worker's lock)."
            )
    for r in runs:
        for p in r.problems[1:]:
            print(f"- {r.name}: {p}")
    scale = runs[1].rate / runs[0].rate if len(runs) == 3 and runs[0].rate else 0.0
    print(f"\nThree workers / one: {scale:.2f}× (target ≥ {TARGET_SCALE}×)")
    if sent is not None:
        print(
            f"\n## Broadcast: {args.broadcast} readers, three workers' senders, "
            f"SHUXIANG_SEND_RATE={args.rate:g}/s shared in Redis\n"
        )
        print("| sent | sustained rate | most sends in any 1 s | 429s | duplicates | missing |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {sent['sent']:.0f} | {sent['rate']:.1f}/s | {sent['most_in_1s']:.0f} "
            f"| {sent['429s']:.0f} | {sent['duplicates']:.0f} | {sent['missing']:.0f} |"
        )
    checks = {
        "every update handled exactly once, order kept, no hold/loan inconsistency": all(
            not r.problems for r in runs
        ),
        f"three workers ≥ {TARGET_SCALE}× one": scale >= TARGET_SCALE,
    }
    if sent is not None:
        checks[
            f"broadcast never above {args.rate:g}/s (zero 429s from a {args.rate:g}/s bucket)"
        ] = sent["429s"] == 0
        checks["broadcast: zero duplicates, nothing missing"] = (
            sent["duplicates"] == sent["missing"] == 0
        )
    print("\n" + "\n".join(f"- {'PASS' if ok else 'FAIL'}: {what}" for what, ok in checks.items()))


if __name__ == "__main__":
    asyncio.run(main())
