"""The embedded default: Shuxiang on SQLite with its own sample data, talking to the local Bot API
emulator, with a web chat page where a person plays a sample student, teacher or the librarian."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from bot import jobs
from bot.app import Shuxiang, build_app
from bot.config import Settings
from nlp.index import Indexer
from sandbox.emulator import BotApiEmulator
from sandbox.sample_data import CATALOGUE_CSV, READERS_CSV
from sandbox.webchat import add_webchat_routes
from services import circulation
from services.errors import ServiceError
from services.i18n import t
from services.importing import import_catalogue, import_readers
from services.readers import bind, issue_codes, reader_for_telegram
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Copy, CopyStatus, Loan, Reader, Record, Role, utcnow

log = logging.getLogger(__name__)

# Not a secret: it only ever reaches the emulator on 127.0.0.1.
SANDBOX_TOKEN = "100000001:SANDBOX-shuxiang-local-only"
SANDBOX_BOT = "shuxiang_sandbox_bot"
# What the self-check types as the sample student: input matching the sample data, not a message.
SELF_CHECK_QUERY = "三体"
# The seeded loan that the due-soon reminder is about is due this many days after the start.
DUE_SOON_DAYS = 3


@dataclass(frozen=True)
class Persona:
    user_id: int
    role: str
    card_no: str
    name: str

    def as_webchat(self) -> dict[str, object]:
        label = f"{t(f'role.{self.role}')} {self.name}"
        return {"user_id": self.user_id, "label": label, "first_name": self.name}


PERSONA_IDS = {Role.STUDENT.value: 900001, Role.TEACHER.value: 900002, Role.LIBRARIAN.value: 900003}


async def load_sample_data(db: Database, indexer: Indexer | None = None) -> tuple[bool, str]:
    """Import the sample catalogue and roster into an empty database; report what is there."""
    # One unit of work: the emptiness check and both imports, so the sample data goes in whole.
    async with db.transaction() as session:
        empty = not await session.scalar(select(func.count(Record.id)))
        if empty:
            await import_catalogue(session, CATALOGUE_CSV, indexer=indexer)
            await import_readers(session, READERS_CSV)
    async with db.transaction(read_only=True) as session:
        records = await session.scalar(select(func.count(Record.id)))
        copies = await session.scalar(select(func.count(Copy.id)))
        readers = await session.scalar(select(func.count(Reader.id)))
    return empty, t("cli.demo_loaded", records=records, copies=copies, readers=readers)


async def ensure_personas(db: Database, settings: Settings) -> list[Persona]:
    """One bound sample reader per role, so the sandbox starts ready to use."""
    personas = []
    policy = settings.loan_policy()
    for role, user_id in PERSONA_IDS.items():
        async with db.transaction() as session:
            reader = await session.scalar(
                select(Reader)
                .where(Reader.role == role, Reader.active.is_(True))
                .order_by(Reader.card_no)
                .limit(1)
            )
            if reader is None:
                continue
            if await reader_for_telegram(session, user_id) is None:
                (code,) = await issue_codes(session, policy=policy, card_nos=[reader.card_no])
                await bind(session, code=code.code, telegram_user_id=user_id, chat_id=user_id)
            personas.append(Persona(user_id, role, reader.card_no, reader.name))
    return personas


async def seed_circulation(db: Database, settings: Settings, personas: list[Persona]) -> None:
    """Fresh sample data gets a little history: the student has two books out (one renewable,
    and due in three days, so the due-soon reminder with its 续借 button arrives at start), and
    one title is entirely out so that reserving it can be tried."""
    policy = settings.loan_policy()
    student = next((p for p in personas if p.role == Role.STUDENT.value), None)
    if student is None:
        return
    async with db.transaction(read_only=True) as session:
        others = list(
            await session.scalars(
                select(Reader.card_no)
                .where(Reader.role == Role.STUDENT.value, Reader.card_no != student.card_no)
                .order_by(Reader.card_no)
                .limit(10)
            )
        )
        shelf = list(
            await session.execute(
                select(Copy.barcode, Copy.record_pk)
                .where(Copy.status == CopyStatus.ON_SHELF.value)
                .order_by(Copy.record_pk, Copy.barcode)
                .limit(40)
            )
        )
    by_record: dict[int, list[str]] = {}
    for barcode, record_pk in shelf:
        by_record.setdefault(record_pk, []).append(barcode)
    records = list(by_record.values())
    now = utcnow()
    due_soon = now - timedelta(days=policy.for_role(Role.STUDENT.value).loan_days - DUE_SOON_DAYS)
    plan = [(student.card_no, records[0][0], due_soon), (student.card_no, records[1][0], now)]
    plan += [(card, barcode, now) for card, barcode in zip(others, records[2], strict=False)]
    for card_no, barcode, lent_at in plan:
        try:
            async with db.transaction() as session:
                await circulation.checkout(
                    session, card_no=card_no, barcode=barcode, policy=policy, now=lent_at
                )
        except ServiceError as exc:  # sample data that doesn't fit the plan is not fatal
            log.warning("sandbox seed %s %s: %s", card_no, barcode, exc.render())


# How many sample books the demo presents as this week's new arrivals.
DEMO_NEW_BOOKS = 8


async def seed_weekly(db: Database, personas: list[Persona]) -> int:
    """Fresh sample data: most books were catalogued long ago; eight arrived this week, still
    being processed (so they can be reserved before they reach the shelf), chosen near what the
    sample student borrowed; then the weekly slot runs once, so the student's weekly list with
    its reasons arrives as soon as the bot starts."""
    student = next((p for p in personas if p.role == Role.STUDENT.value), None)
    if student is None:
        return 0
    now = utcnow()
    async with db.transaction() as session:
        borrowed = list(
            await session.scalars(
                select(Record.clc)
                .join(Copy, Copy.record_pk == Record.id)
                .join(Loan, Loan.copy_id == Copy.id)
                .join(Reader, Reader.id == Loan.reader_id)
                .where(Reader.card_no == student.card_no)
            )
        )
        classes = {clc for clc in borrowed if clc}
        taken = select(Copy.record_pk).where(Copy.status != CopyStatus.ON_SHELF.value)
        near = list(
            await session.scalars(
                select(Record.id)
                .where(Record.id.not_in(taken))
                .order_by(Record.clc.in_(classes).desc(), Record.id.desc())
                .limit(DEMO_NEW_BOOKS)
            )
        )
        await session.execute(update(Record).values(catalogued_at=now - timedelta(days=120)))
        await session.execute(
            update(Record).where(Record.id.in_(near)).values(catalogued_at=now - timedelta(days=2))
        )
        await session.execute(
            update(Copy).where(Copy.record_pk.in_(near)).values(status=CopyStatus.IN_TRANSIT.value)
        )
    return await jobs.weekly_new_books(db, days=7, now=now)


@dataclass
class Sandbox:
    emulator: BotApiEmulator
    app: Shuxiang
    personas: list[Persona]
    polling: asyncio.Task[None]
    # Due-soon reminders queued at this start (the seeded one, on the first start only).
    reminders: int = 0

    @property
    def url(self) -> str:
        return self.emulator.base_url + "/"

    async def stop(self) -> None:
        await self.app.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.polling, timeout=10)
        await self.app.close()
        await self.emulator.stop()


class SandboxRunning(Exception):
    """Another sandbox holds this database."""


@contextlib.contextmanager
def single_sandbox(settings: Settings) -> Iterator[None]:
    """Hold a lock file beside the sandbox's database while it runs, so that a second sandbox
    on the same database is refused (SandboxRunning) instead of quietly sharing it."""
    settings.ensure_database_dir()
    url = make_url(settings.checked_database_url())
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        lock_path = Path(f"{url.database}.lock")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = settings.data_dir / "sandbox.lock"
    with lock_path.open("a") as lock:
        try:
            # The OS drops the lock when the process ends, even killed: no stale lock to clean.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SandboxRunning(url.render_as_string(hide_password=True)) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def start_sandbox(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[Sandbox, str]:
    settings.ensure_database_dir()
    db = Database(settings.checked_database_url())
    search = settings.search_engine()
    await upgrade(db.engine)
    fresh, loaded = await load_sample_data(db, search.indexer)
    personas = await ensure_personas(db, settings)
    if fresh:
        await seed_circulation(db, settings, personas)
        await seed_weekly(db, personas)

    emulator = BotApiEmulator(
        SANDBOX_TOKEN,
        bot_username=SANDBOX_BOT,
        # Like Telegram's, update ids only grow, so ids remembered from an earlier run never
        # make the bot drop a new update as a repeat.
        first_update_id=int(time.time() * 1000),
        extra_routes=lambda web_app: add_webchat_routes(
            web_app, emulator, [p.as_webchat() for p in personas]
        ),
    )
    for persona in personas:
        emulator.add_user(persona.user_id, first_name=persona.name)
    await emulator.start(host=host, port=port)
    # A local trial at any hour shows its pushes at once: no quiet hours in the sandbox.
    bot_settings = settings.model_copy(update={"bot_api_url": emulator.base_url, "quiet_hours": ""})
    app = build_app(bot_settings, token=SANDBOX_TOKEN, db=db, search=search)
    polling = asyncio.create_task(app.run_polling(handle_signals=False), name="sandbox-polling")
    # The morning sweep, now: the seeded loan due in three days gets its reminder (once).
    reminders = await app.jobs.run_once("due-soon", app.job_context)
    return Sandbox(emulator, app, personas, polling, reminders), loaded


async def self_check(sandbox: Sandbox) -> str:
    """Drive one search and one /loans through the sandbox like a person would; on a first start,
    renew from the due-soon reminder too."""
    student = next(p for p in sandbox.personas if p.role == Role.STUDENT.value)
    emulator = sandbox.emulator
    parts = []
    if sandbox.reminders:
        push = await emulator.wait_for_bot_message(student.user_id, contains="到期", timeout=15)
        since = emulator.mark()
        emulator.press_button_text(student.user_id, push["message_id"], "续借")
        renewed = await emulator.wait_for_bot_message(
            student.user_id, since=since, contains="已续借", timeout=15
        )
        parts += [push.get("text", ""), renewed.get("text", "")]
    sent = emulator.send_text(student.user_id, "/loans")
    loans = await emulator.wait_for_bot_message(
        student.user_id, after_message_id=sent["message"]["message_id"], timeout=15
    )
    sent = emulator.send_text(student.user_id, SELF_CHECK_QUERY)
    found = await emulator.wait_for_bot_message(
        student.user_id, after_message_id=sent["message"]["message_id"], timeout=15
    )
    parts += [loans.get("text", ""), found.get("text", "")]
    return "\n\n".join(parts)
