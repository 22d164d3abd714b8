"""The one assembly function: config → database → Bot → Dispatcher → routers → middlewares →
scheduler. Nothing here is a module-level global; everything long-lived hangs off ``Shuxiang``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommandScopeChat, BotCommandScopeDefault, MenuButtonCommands
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import jobs
from bot.config import Settings
from bot.retry import RetryMiddleware
from handlers import get_routers
from handlers.keyboards import bot_commands
from handlers.middlewares import (
    PrivateChatsOnly,
    ReaderMiddleware,
    ThrottlingMiddleware,
    UnitOfWorkMiddleware,
)
from handlers.render import Translator
from nlp.search import SearchEngine
from services.i18n import DEFAULT_LOCALE
from services.readers import librarian_chats
from services.recommend.model import MODEL_REFRESH_MINUTES, ModelCache
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Shuxiang:
    settings: Settings
    db: Database
    bot: Bot
    dp: Dispatcher
    scheduler: AsyncIOScheduler
    search: SearchEngine

    unit_of_work: UnitOfWorkMiddleware

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Long polling. Updates are handled one by one before the next getUpdates confirms
        them, so an update in flight when the process dies is delivered again (and the
        processed-update record drops it if it had in fact been handled). SIGINT and SIGTERM
        stop gracefully: the update in flight finishes first (aiogram's own handling would
        cancel it half-way)."""
        stopping: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, lambda: stopping.append(loop.create_task(self.stop())))
        try:
            await self.dp.start_polling(
                self.bot,
                handle_as_tasks=False,
                handle_signals=False,
                close_bot_session=True,
                allowed_updates=self.dp.resolve_used_update_types(),
            )
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await asyncio.gather(*stopping, return_exceptions=True)

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Finish the update in flight, then stop polling."""
        self.unit_of_work.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.unit_of_work.idle.wait(), timeout)
        with contextlib.suppress(RuntimeError):  # not polling (any more)
            await self.dp.stop_polling()

    async def close(self) -> None:
        await self.bot.session.close()
        await self.db.dispose()


def build_bot(settings: Settings, token: str) -> Bot:
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.bot_api_url.rstrip("/")),
        proxy=settings.proxy_url(),
    )
    # Replies go out inside the update's transaction: wait out only short 429s there, so a
    # long Retry-After never keeps SQLite's write lock. The outbox job reschedules longer ones.
    session.middleware(RetryMiddleware(max_wait_s=5.0))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_app(
    settings: Settings,
    *,
    token: str,
    db: Database | None = None,
    search: SearchEngine | None = None,
) -> Shuxiang:
    db = db or Database(settings.checked_database_url())
    search = search or settings.search_engine()
    bot = build_bot(settings, token)
    policy = settings.loan_policy()
    recommender = ModelCache()
    dp = Dispatcher(
        db=db,
        policy=policy,
        tz=settings.tz,
        shelf_map=dict(settings.shelf_map),
        search=search,
        recommender=recommender,
    )
    dp.include_routers(*get_routers())
    dp.update.outer_middleware(PrivateChatsOnly())
    unit_of_work = UnitOfWorkMiddleware(db)
    dp.update.outer_middleware(unit_of_work)
    dp.update.outer_middleware(ReaderMiddleware())
    dp.update.outer_middleware(ThrottlingMiddleware())

    scheduler = AsyncIOScheduler(timezone=settings.tz)
    scheduler.add_job(
        jobs.deliver_notifications,
        "interval",
        seconds=settings.outbox_interval_seconds,
        kwargs={"db": db, "bot": bot, "tz": settings.tz},
        id="deliver_notifications",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=60,
    )
    scheduler.add_job(
        jobs.expire_holds,
        "interval",
        minutes=10,
        kwargs={"db": db, "policy": policy},
        id="expire_ready_holds",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=300,
    )
    # The weekly slot: one list per reader per week, outside quiet hours (afternoon, after class).
    scheduler.add_job(
        jobs.weekly_new_books,
        "cron",
        day_of_week=settings.weekly_day,
        hour=settings.weekly_hour,
        kwargs={"db": db, "days": settings.weekly_new_days},
        id="weekly_new_books",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        jobs.refresh_recommender,
        "interval",
        minutes=MODEL_REFRESH_MINUTES,
        kwargs={"db": db, "cache": recommender},
        id="refresh_recommender",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=600,
    )
    scheduler.add_job(
        jobs.send_reading_lists,
        "interval",
        minutes=5,
        kwargs={"db": db},
        id="send_reading_lists",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=300,
    )
    scheduler.add_job(
        jobs.forget_updates,
        "cron",
        hour=3,
        kwargs={"db": db},
        id="forget_old_updates",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )
    app = Shuxiang(
        settings=settings,
        db=db,
        bot=bot,
        dp=dp,
        scheduler=scheduler,
        search=search,
        unit_of_work=unit_of_work,
    )
    dp["app"] = app  # startup/shutdown hooks receive it by parameter name
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return app


async def on_startup(app: Shuxiang) -> None:
    tr = Translator(DEFAULT_LOCALE)
    await app.bot.set_my_commands(bot_commands(tr), scope=BotCommandScopeDefault())
    await app.bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    async with app.db.transaction(read_only=True) as session:
        chats = await librarian_chats(session)
    for chat_id in chats:
        try:
            await app.bot.set_my_commands(
                bot_commands(tr, librarian=True), scope=BotCommandScopeChat(chat_id=chat_id)
            )
        except TelegramAPIError as exc:  # a librarian who left the chat must not stop the bot
            log.warning("librarian commands for chat %s: %s", chat_id, exc)
    # Load jieba, OpenCC and pypinyin now, not on the first student's search.
    async with app.db.transaction(read_only=True) as session:
        seconds = await app.search.warm_up(session)
    log.info("search ready in %.1f s", seconds)
    # Fitted now so the first 猜你喜欢 does not wait for it.
    await jobs.refresh_recommender(app.db, app.dp["recommender"])
    if not app.scheduler.running:
        app.scheduler.start()
    me = await app.bot.get_me()
    log.info("bot @%s started", me.username)


async def on_shutdown(app: Shuxiang) -> None:
    if app.scheduler.running:
        app.scheduler.shutdown(wait=False)
