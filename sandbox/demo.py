"""The embedded default: Shuxiang on SQLite with its own sample data, talking to the local Bot API
emulator, with a web chat page where a person plays a sample student, teacher or the librarian."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from bot import jobs
from bot.app import Shuxiang, build_app
from bot.config import Settings
from nlp.index import Indexer
from nlp.search import SearchEngine
from sandbox.clock import ClockControl, DemoClock
from sandbox.emulator import BotApiEmulator
from sandbox.identity import SANDBOX_BOT  # readers codes uses it on the demo database
from sandbox.sample_data import CATALOGUE_CSV, READERS_CSV
from sandbox.webchat import add_webchat_routes
from sandbox.webdemo import add_demo_routes, page_extra
from services import circulation
from services.actor import Actor
from services.corners import swaps as corners
from services.errors import ServiceError
from services.i18n import t
from services.imports.catalogue import import_catalogue, import_readers
from services.readers.binding import bind_telegram, issue_codes, reader_for_telegram
from services.suggestions import suggest_purchase
from storage.db import Database
from storage.migrate import upgrade
from storage.models import ClassMonitor, Copy, CopyStatus, Loan, Reader, Record, Role, utcnow

log = logging.getLogger(__name__)

# Not a secret: it only ever reaches the emulator on 127.0.0.1.
SANDBOX_TOKEN = "100000001:SANDBOX-shuxiang-local-only"  # noqa: S105 (made up; only the local emulator)
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
    # Shown instead of the role's name (a class monitor is a student with a duty).
    label_key: str | None = None

    def as_webchat(self) -> dict[str, object]:
        label = f"{t(self.label_key or f'role.{self.role}')} {self.name}"
        return {"user_id": self.user_id, "label": label, "first_name": self.name}


PERSONA_IDS = {Role.STUDENT.value: 900001, Role.TEACHER.value: 900002, Role.LIBRARIAN.value: 900003}
MONITOR_ID = 900004
# The sample monitor's class gets a proposed batch of this many books to confirm.
DEMO_BATCH = 8


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
                await bind_telegram(
                    session, code=code.code, telegram_user_id=user_id, chat_id=user_id
                )
            personas.append(Persona(user_id, role, reader.card_no, reader.name))
    return personas


async def ensure_monitor(db: Database, settings: Settings, personas: list[Persona]) -> None:
    """A classmate of the sample student is their class's library monitor (班级图书管理员)."""
    student = next((p for p in personas if p.role == Role.STUDENT.value), None)
    if student is None:
        return
    async with db.transaction() as session:
        class_name = await session.scalar(
            select(Reader.class_name).where(Reader.card_no == student.card_no)
        )
        monitor = await session.scalar(
            select(Reader)
            .where(Reader.class_name == class_name, Reader.role == Role.STUDENT.value)
            .where(Reader.card_no != student.card_no, Reader.active.is_(True))
            .order_by(Reader.card_no)
            .limit(1)
        )
        if class_name is None or monitor is None:
            return
        appointed = await session.scalar(
            select(ClassMonitor.id).where(ClassMonitor.reader_id == monitor.id).limit(1)
        )
        if appointed is None:
            await corners.appoint_monitor(
                session,
                Actor.cli(),
                card_no=monitor.card_no,
                class_name=class_name,
                limit=settings.corner_monitors_per_class,
            )
        if await reader_for_telegram(session, MONITOR_ID) is None:
            (code,) = await issue_codes(
                session, policy=settings.loan_policy(), card_nos=[monitor.card_no]
            )
            await bind_telegram(
                session, code=code.code, telegram_user_id=MONITOR_ID, chat_id=MONITOR_ID
            )
    personas.append(
        Persona(
            MONITOR_ID,
            Role.STUDENT.value,
            monitor.card_no,
            monitor.name,
            label_key="corners.persona_monitor",
        )
    )


async def seed_corner(db: Database, settings: Settings, personas: list[Persona]) -> None:
    """Fresh sample data: a batch on its way to the monitor's class corner (to confirm in the
    chat) and a classmate with an overdue book (for /cuishu and the weekly list)."""
    monitor = next((p for p in personas if p.user_id == MONITOR_ID), None)
    student = next((p for p in personas if p.role == Role.STUDENT.value), None)
    if monitor is None or student is None:
        return
    try:
        async with db.transaction() as session:
            class_name = await session.scalar(
                select(Reader.class_name).where(Reader.card_no == monitor.card_no)
            )
            late = await session.scalar(
                select(Reader.card_no)
                .where(Reader.class_name == class_name, Reader.role == Role.STUDENT.value)
                .where(Reader.card_no.not_in((monitor.card_no, student.card_no)))
                .order_by(Reader.card_no.desc())
                .limit(1)
            )
            shelf = await session.scalar(
                select(Copy.barcode)
                .where(Copy.status == CopyStatus.ON_SHELF.value)
                .order_by(Copy.barcode.desc())
                .limit(1)
            )
            if late and shelf:
                await circulation.checkout(
                    session,
                    actor=Actor.cli(),
                    card_no=late,
                    barcode=shelf,
                    policy=settings.loan_policy(),
                    now=utcnow() - timedelta(days=45),
                )
            proposal = await corners.propose(
                session, Actor.cli(), class_name=str(class_name), size=DEMO_BATCH
            )
            await corners.send_batch(session, Actor.cli(), swap_id=proposal.view.swap_id)
    except ServiceError as exc:  # sample data that doesn't fit the plan is not fatal
        log.warning("sandbox corner seed: %s", exc.render())


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
                    session,
                    actor=Actor.cli(),
                    card_no=card_no,
                    barcode=barcode,
                    policy=policy,
                    now=lent_at,
                )
        except ServiceError as exc:  # sample data that doesn't fit the plan is not fatal
            log.warning("sandbox seed %s %s: %s", card_no, barcode, exc.render())


async def seed_hold_shelf(db: Database, settings: Settings, personas: list[Persona]) -> None:
    """The desk's 预约架 has something on it: a one-copy title came back for the sample student,
    who reserved it while a schoolmate had it (so the page shows 预约书到馆, and the clock control
    its last-day reminder and its expiry)."""
    policy = settings.loan_policy()
    mine = {p.card_no for p in personas}
    student = next((p for p in personas if p.role == Role.STUDENT.value), None)
    async with db.transaction(read_only=True) as session:
        students = [
            card
            for card in await session.scalars(
                select(Reader.card_no)
                .where(Reader.role == Role.STUDENT.value, Reader.active.is_(True))
                .order_by(Reader.card_no.desc())
                .limit(len(mine) + 2)
            )
            if card not in mine
        ][:2]
        single = (
            select(Copy.record_pk)
            .group_by(Copy.record_pk)
            .having(func.count(Copy.id) == 1)
            .scalar_subquery()
        )
        barcode = await session.scalar(
            select(Copy.barcode)
            .where(Copy.status == CopyStatus.ON_SHELF.value, Copy.record_pk.in_(single))
            .order_by(Copy.barcode.desc())
            .limit(1)
        )
    if not students or student is None or barcode is None:
        return
    try:
        async with db.transaction() as session:
            lent = await circulation.checkout(
                session, actor=Actor.cli(), card_no=students[0], barcode=barcode, policy=policy
            )
            copy = await circulation.copy_by_barcode(session, barcode)
            waiting = await circulation.reader_by_card(session, student.card_no)
            await circulation.place_hold(
                session,
                actor=Actor.cli(),
                reader_id=waiting.id,
                record_pk=copy.record_pk,
                policy=policy,
            )
            await circulation.return_copy(
                session, actor=Actor.cli(), barcode=lent.barcode, policy=policy
            )
    except ServiceError as exc:  # sample data that doesn't fit the plan is not fatal
        log.warning("sandbox hold shelf %s: %s", barcode, exc.render())


# Purchase suggestions the sample students made: titles the sample catalogue lacks (a held
# title cannot be suggested: services/catalogue/card.py held_title).
SAMPLE_SUGGESTIONS = (
    "长安的荔枝",
    "长安的荔枝",
    "月亮与六便士",
    "长安的荔枝",
    "人生海海",
)


async def seed_history(
    db: Database, settings: Settings, *, days: int = 75, loans: int = 60
) -> None:
    """Past loans, all returned, over the last ``days`` days, and a few purchase suggestions, so
    that /stats and ``shuxiang report`` have something to show."""
    policy = settings.loan_policy()
    keeps = (0, 2, 5, 9, 14, 21, 35)  # days kept; 0: back the same day
    async with db.transaction(read_only=True) as session:
        students = list(
            await session.execute(
                select(Reader.id, Reader.card_no)
                .where(Reader.role == Role.STUDENT.value)
                .order_by(Reader.card_no)
            )
        )
        shelf = list(
            await session.scalars(
                select(Copy.barcode)
                .where(Copy.status == CopyStatus.ON_SHELF.value)
                .order_by(Copy.barcode)
            )
        )
    if not students or not shelf:
        return
    today = utcnow()
    # Fixed strides instead of random picks: some students read more than others, some books
    # are read more than others, and the history is the same on every fresh sandbox.
    readers = students[: max(1, len(students) * 2 // 3)]
    books = shelf[: max(1, len(shelf) // 2)]
    # One transaction (a commit per loan takes seconds on SQLite); a savepoint per loan, so a
    # loan a rule refuses is skipped alone.
    async with db.transaction() as session:
        for i in range(loans):
            _, card_no = readers[(i * i + 3 * i) % len(readers)]
            barcode = books[(i * 7 + i // 5) % len(books)]
            lent = today - timedelta(days=3 + (i * 37) % (days - 3), hours=i % 8)
            back = min(today, lent + timedelta(days=keeps[i % len(keeps)]))
            try:
                async with session.begin_nested():
                    await circulation.checkout(
                        session,
                        actor=Actor.cli(),
                        card_no=card_no,
                        barcode=barcode,
                        policy=policy,
                        now=lent,
                    )
                    await circulation.return_copy(
                        session, actor=Actor.cli(), barcode=barcode, policy=policy, now=back
                    )
            except ServiceError as exc:  # e.g. an inactive reader: skip that one
                log.debug("sandbox history %s %s: %s", card_no, barcode, exc.render())
    async with db.transaction() as session:
        for n, query in enumerate(SAMPLE_SUGGESTIONS):
            reader_id, _ = students[n % len(students)]
            await suggest_purchase(session, query=query, reader_id=reader_id, telegram_user_id=None)


# How many sample books the demo presents as this week's new arrivals.
DEMO_NEW_BOOKS = 8
# How many days they count as new in the demo's weekly lists (SHUXIANG_WEEKLY_NEW_DAYS elsewhere).
DEMO_NEW_DAYS = 14


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
        # A book that arrived this week cannot have been lent before.
        lent = select(Copy.record_pk).join(Loan, Loan.copy_id == Copy.id)
        near = list(
            await session.scalars(
                select(Record.id)
                .where(Record.id.not_in(taken), Record.id.not_in(lent))
                .order_by(Record.clc.in_(classes).desc(), Record.id.desc())
                .limit(DEMO_NEW_BOOKS)
            )
        )
        await session.execute(update(Record).values(catalogued_at=now - timedelta(days=120)))
        await session.execute(
            update(Record).where(Record.id.in_(near)).values(catalogued_at=now - timedelta(days=2))
        )
        # Copies arrived with their titles: 新书 种 and 册 (services.catalogue.arrivals) describe
        # the same eight books.
        await session.execute(update(Copy).values(created_at=now - timedelta(days=120)))
        await session.execute(
            update(Copy).where(Copy.record_pk.in_(near)).values(created_at=now - timedelta(days=2))
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
    # The page's clock control (sandbox/clock.py): the bot's clock, moved only by the page.
    clock: ClockControl
    # Due-soon reminders queued at this start (the seeded one, on the first start only).
    reminders: int = 0
    # The school's own web chat (bot/web), served beside the emulated Telegram.
    web_url: str = ""

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


async def prepare_demo_data(
    db: Database, settings: Settings, search: SearchEngine
) -> tuple[list[Persona], str]:
    """The schema, the sample data and the personas; on an empty database also the history, the
    loans, the hold shelf, the corner batch and the weekly list that make the sandbox lived-in.
    Returns the personas and what the database holds, in words."""
    await upgrade(db.engine)
    fresh, loaded = await load_sample_data(db, search.indexer)
    personas = await ensure_personas(db, settings)
    await ensure_monitor(db, settings, personas)
    if fresh:
        await seed_history(db, settings)
        await seed_circulation(db, settings, personas)
        await seed_hold_shelf(db, settings, personas)
        await seed_corner(db, settings, personas)
        await seed_weekly(db, personas)
    return personas, loaded


async def start_sandbox(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[Sandbox, str]:
    settings.ensure_database_dir()
    db = Database(settings.checked_database_url(), busy_timeout_s=settings.sqlite_busy_timeout_s)
    search = settings.search_engine()
    personas, loaded = await prepare_demo_data(db, settings, search)

    control = ClockControl(DemoClock())

    def routes(web_app: web.Application) -> None:
        add_webchat_routes(web_app, emulator, [p.as_webchat() for p in personas], clock=True)
        control.add_routes(web_app)

    emulator = BotApiEmulator(
        SANDBOX_TOKEN,
        bot_username=SANDBOX_BOT,
        # Like Telegram's, update ids only grow, so ids remembered from an earlier run never
        # make the bot drop a new update as a repeat.
        first_update_id=int(time.time() * 1000),
        extra_routes=routes,
    )
    for persona in personas:
        emulator.add_user(persona.user_id, first_name=persona.name)
    await emulator.start(host=host, port=port)
    # A local trial at any hour shows its pushes at once: no quiet hours in the sandbox.
    # The sample week's new books stay in the weekly list for two weeks, so the next week's list
    # can be watched arriving with the clock control (its first slot may fall in this ISO week).
    bot_settings = settings.model_copy(
        update={
            "bot_api_url": emulator.base_url,
            "quiet_hours": "",
            "weekly_new_days": DEMO_NEW_DAYS,
            "bot_username": SANDBOX_BOT,
            "web_listen": f"{host}:0",
        }
    )
    app = build_app(bot_settings, token=SANDBOX_TOKEN, db=db, search=search, clock=control.clock)
    control.app = app
    web_url = ""
    if app.web is not None:

        def demo_routes(web_app: web.Application) -> None:
            add_demo_routes(web_app, app, personas)
            control.add_routes(web_app)

        web_port = await app.web.start(
            app.dp,
            host=host,
            # The page students would use, at an address that stays the same between demos.
            port=port + 1 if port else 0,
            extra_routes=demo_routes,
            page_extra=page_extra(),
            telegram=app.bot,
        )
        web_url = f"http://{host}:{web_port}/_demo"
    polling = asyncio.create_task(app.run_polling(handle_signals=False), name="sandbox-polling")
    # The morning sweep, now: the seeded loan due in three days gets its reminder (once).
    reminders = await app.jobs.run_once("due-soon", app.job_context)
    return Sandbox(emulator, app, personas, polling, control, reminders, web_url), loaded


def is_loans_list(message: dict[str, Any]) -> bool:
    """The answer to /loans, not a push that arrived meanwhile (a due-soon reminder left from
    an earlier start can land between /loans and its answer)."""
    text = str(message.get("text", ""))
    heading = re.sub(r"<[^>]+>", "", t("loans.title", count=0)).split("0", 1)[0]
    return text.startswith(heading) or text == t("loans.empty")


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
        student.user_id,
        is_loans_list,
        after_message_id=sent["message"]["message_id"],
        timeout=15,
    )
    sent = emulator.send_text(student.user_id, SELF_CHECK_QUERY)
    found = await emulator.wait_for_bot_message(
        student.user_id, after_message_id=sent["message"]["message_id"], timeout=15
    )
    parts += [loans.get("text", ""), found.get("text", "")]
    return "\n\n".join(parts)
