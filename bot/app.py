"""The one assembly function: config → database → Bot → FSM storage → Dispatcher → routers →
middlewares → scheduler. Nothing here is a module-level global; everything long-lived hangs off
``Shuxiang``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommandScopeChat, BotCommandScopeDefault, MenuButtonCommands
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import AuthenticationError, RedisError

from bot.concurrency import BoundedPolling
from bot.config import ConfigError, Settings
from bot.jobs import JobContext, JobRegistry, build_registry
from bot.leader import Leader
from bot.proxy import bot_session
from bot.retry import RetryMiddleware
from bot.sender import Sender, build_sender_bot
from bot.speedups import KeepResponseTypes, inline_filters
from bot.web.channel import WebChannel
from handlers import get_routers
from handlers.keyboards import bot_commands
from handlers.middlewares import (
    LibrarianRoster,
    PrivateChatsOnly,
    ReaderMiddleware,
    ThrottlingMiddleware,
    UnitOfWork,
    UpdatePipeline,
)
from handlers.render import Translator
from nlp.search import SearchEngine
from services.i18n import DEFAULT_LOCALE, t
from services.readers.binding import librarian_chats
from services.recommend.model import ModelCache
from services.talk import monitor_chats
from storage.db import Database
from storage.models import Channel, utcnow

log = logging.getLogger(__name__)

# An unfinished dialogue (a 借出 waiting for its card, a 荐购 draft) is forgotten a day after its
# last step, so Redis does not keep every abandoned draft.
DIALOGUE_TTL = timedelta(days=1)


@dataclass
class Shuxiang:
    settings: Settings
    db: Database
    bot: Bot
    dp: Dispatcher
    scheduler: AsyncIOScheduler
    search: SearchEngine

    jobs: JobRegistry
    job_context: JobContext
    sender: Sender
    pipeline: UpdatePipeline
    sender_task: asyncio.Task[None] | None = None
    poller: BoundedPolling | None = None
    # Webhook workers: the scheduler runs only while this worker holds the lock (bot/leader.py).
    leader: Leader | None = None
    leader_task: asyncio.Task[None] | None = None
    # The school's own web chat (bot/web), when SHUXIANG_WEB_LISTEN is set.
    web: WebChannel | None = None

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Long polling (bot/concurrency.py): users' updates handled concurrently, each user's
        in order, at most ``max_updates_in_flight`` held; an update is confirmed only once
        handled, so one in flight when the process dies is delivered again (and the
        processed-update record keeps it from changing anything twice). SIGINT and SIGTERM
        stop gracefully: the running updates finish first."""
        stopping: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, lambda: stopping.append(loop.create_task(self.stop())))
        self.poller = BoundedPolling(
            self.dp,
            self.bot,
            max_in_flight=self.settings.max_updates_in_flight,
            allowed_updates=self.dp.resolve_used_update_types(),
            before_confirm=self.pipeline.flush_sent,
        )
        # The poller lets an update it started finish even while stopping.
        self.pipeline.hold_when_draining = False
        self.pipeline.batch_sent = True
        workflow = {**self.dp.workflow_data, "dispatcher": self.dp, "bots": [self.bot]}
        try:
            await self.dp.emit_startup(bot=self.bot, **workflow)
            try:
                await self.poller.run(**workflow)
            finally:
                try:
                    await self.dp.emit_shutdown(bot=self.bot, **workflow)
                finally:
                    await self.bot.session.close()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await asyncio.gather(*stopping, return_exceptions=True)

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Finish the updates in flight, then stop polling."""
        if self.poller is not None:
            self.poller.stop()
        self.pipeline.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.pipeline.idle.wait(), timeout)
        if self.poller is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.poller.stopped.wait(), timeout)
            return
        with contextlib.suppress(RuntimeError):  # not polling (any more)
            await self.dp.stop_polling()

    def start_background(self) -> None:
        """The scheduled sweeps and the sender (on_startup; the sandbox and tests too)."""
        if self.leader is not None:
            if self.leader_task is None:
                self.scheduler.start(paused=True)
                self.leader_task = asyncio.create_task(self.leader.run(self.scheduler))
        elif not self.scheduler.running:
            self.scheduler.start()
        if self.sender_task is None:
            self.sender_task = asyncio.create_task(self.sender.run(), name="sender")

    async def stop_background(self) -> None:
        if self.leader is not None and self.leader_task is not None:
            self.leader.stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.leader_task, 10)
            self.leader_task = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.sender_task is not None:
            self.sender.stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.sender_task, 10)
            self.sender_task = None

    async def close(self) -> None:
        await self.stop_background()
        if self.web is not None:
            await self.web.stop()
        await self.sender.bot.session.close()
        await self.bot.session.close()
        await self.dp.storage.close()  # also on polling's shutdown; closing twice is harmless
        await self.db.dispose()


def build_storage(settings: Settings) -> BaseStorage:
    """Where dialogue state lives: Redis when SHUXIANG_REDIS_URL is set (shared by workers, kept
    over a restart), else the process's memory. Nothing connects until first used."""
    url = settings.checked_redis_url()
    if url is None:
        return MemoryStorage()
    return RedisStorage.from_url(
        url,
        connection_kwargs={"socket_connect_timeout": 5, "socket_timeout": 10},
        key_builder=DefaultKeyBuilder(prefix=settings.redis_prefix),
        state_ttl=DIALOGUE_TTL,
        data_ttl=DIALOGUE_TTL,
    )


async def check_storage(settings: Settings, storage: BaseStorage) -> None:
    """Redis answers, or one ConfigError line that names the server without the password."""
    if not isinstance(storage, RedisStorage):
        return
    where = settings.redis_for_display()
    try:
        # redis-py types its sync and async clients alike; the async one returns an awaitable.
        await cast("Awaitable[bool]", storage.redis.ping())
    except AuthenticationError:
        raise ConfigError(t("cli_run.redis_login_refused", where=where)) from None
    except (RedisError, OSError):
        raise ConfigError(t("cli_run.redis_down", where=where)) from None


def build_bot(settings: Settings, token: str) -> Bot:
    session = bot_session(settings)
    # Replies go out after the update's transaction, while the update holds one of the few
    # places in flight: wait out only short 429s, so one user's long Retry-After does not stall
    # others. Pushes go through the sender, which has a Bot of its own.
    session.middleware(KeepResponseTypes())
    session.middleware(
        RetryMiddleware(
            max_wait_s=settings.bot_retry_max_wait_seconds,
            backoff_s=settings.bot_retry_backoff_seconds,
        )
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_app(
    settings: Settings,
    *,
    token: str | None,
    db: Database | None = None,
    search: SearchEngine | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Shuxiang:
    """``clock`` drives the handlers (``ctx.now()``), the sender and the scheduled sweeps (tests
    and the demo inject one). Without a ``token`` the web channel runs alone: its Bot is the
    app's."""
    db = db or Database(
        settings.checked_database_url(), busy_timeout_s=settings.sqlite_busy_timeout_s
    )
    search = search or settings.search_engine()
    web = WebChannel.build(settings, db, clock=clock) if settings.web_listen or not token else None
    bot = build_bot(settings, token) if token else cast("WebChannel", web).bot
    policy = settings.loan_policy()
    roster = LibrarianRoster(db)
    recommender = ModelCache()
    dp = Dispatcher(
        storage=build_storage(settings),
        db=db,
        policy=policy,
        tz=settings.tz,
        shelf_map=dict(settings.shelf_map),
        monitors_per_class=settings.corner_monitors_per_class,
        reminder_defaults_off=frozenset(settings.reminders_default_off),
        search=search,
        roster=roster,
        bind_limits=settings.bind_limits(),
        recommender=recommender,
        clock=clock,
        web_session_days=settings.web_session_days,
    )
    dp.include_routers(*get_routers())
    inline_filters(dp)
    # The path of one update: handlers/middlewares.py.
    pipeline = UpdatePipeline(db)
    dp.update.outer_middleware(PrivateChatsOnly())
    dp.update.outer_middleware(pipeline)
    dp.update.outer_middleware(ThrottlingMiddleware(roster))
    dp.update.outer_middleware(ReaderMiddleware(db))
    unit_of_work = UnitOfWork(db)
    dp.message.middleware(unit_of_work)
    dp.callback_query.middleware(unit_of_work)

    jobs = build_registry()
    sender_bot = build_sender_bot(settings, token) if token else cast("WebChannel", web).bot
    sender = Sender(db, sender_bot, settings, clock=clock)
    if web is not None:
        sender.add_channel(Channel.WEB, web)
    job_context = JobContext(
        db=db, settings=settings, clock=clock, poke=sender.poke, recommender=recommender
    )
    scheduler = jobs.build_scheduler(job_context)
    app = Shuxiang(
        settings=settings,
        db=db,
        bot=bot,
        dp=dp,
        scheduler=scheduler,
        search=search,
        jobs=jobs,
        job_context=job_context,
        sender=sender,
        pipeline=pipeline,
        web=web,
    )
    dp["app"] = app  # startup/shutdown hooks receive it by parameter name
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return app


async def on_startup(app: Shuxiang) -> None:
    tr = Translator(DEFAULT_LOCALE)
    # Strangers see what works without a card; bound readers get their role's menu per chat
    # (on binding and on /start); librarians and class monitors here, as roles change offline.
    await app.bot.set_my_commands(bot_commands(tr, stranger=True), scope=BotCommandScopeDefault())
    await app.bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    async with app.db.transaction(read_only=True) as session:
        menus = [
            (chat, bot_commands(tr, librarian=True)) for chat in await librarian_chats(session)
        ]
        menus += [(chat, bot_commands(tr, monitor=True)) for chat in await monitor_chats(session)]
    if app.web is not None and app.bot is app.web.bot:  # the web channel alone: no Telegram chats
        menus = []
    for chat_id, commands in menus:
        try:
            await app.bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=chat_id))
        except TelegramAPIError as exc:  # a reader who left the chat must not stop the bot
            log.warning("commands for chat %s: %s", chat_id, exc)
    # An index written by an older Shuxiang lacks what this one searches for: rebuild it once.
    async with app.db.transaction(read_only=True) as session:
        stale = await app.search.indexer.stale(session)
    rebuilt = None
    if stale:
        async with app.db.transaction() as session:
            rebuilt = await app.search.indexer.refresh(session)
    if rebuilt:
        log.warning("search index was built by an older version: rebuilt for %d records", rebuilt)
    # Load jieba, OpenCC and pypinyin now, not on the first student's search.
    async with app.db.transaction(read_only=True) as session:
        seconds = await app.search.warm_up(session)
    log.info("search ready in %.1f s", seconds)
    # What is loaded by now lives as long as the process (aiogram's models, the segmenter's
    # and pinyin dictionaries): out of the collector's sight, a full collection no longer walks
    # it. In benchmarks/throughput.py's 5,600 updates, full collections took 4.5 s of the bot's
    # CPU (200-300 ms each), 1.2 s with this, about a tenth of its CPU per update. No collection
    # first: it would cost every start (and test) a full one, for the little garbage start-up
    # leaves. The recommender after it: a refit replaces it, and a frozen object is never
    # collected.
    gc.freeze()
    # Fitted now so the first 猜你喜欢 does not wait for it.
    await app.jobs.run_once("recommender-refit", app.job_context)
    app.start_background()
    me = await app.bot.get_me()
    log.info("bot @%s started", me.username)


async def on_shutdown(app: Shuxiang) -> None:
    # Collectable again: a process that builds apps one after another (the tests) frees them.
    gc.unfreeze()
    await app.stop_background()
