"""The web channel, assembled: the conversation store, the web channel's Bot (what the handlers
and the sender talk to for a web reader) and its HTTP server. ``bot.app.build_app`` builds it
when SHUXIANG_WEB_LISTEN is set; ``shuxiang run`` starts it beside Telegram's polling, or alone
without a bot token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiohttp import web

from bot.channels import Push, Unreachable
from bot.config import Settings
from bot.web.server import WebServer
from bot.web.session import WEB_BOT_TOKEN, WebChannelSession
from bot.web.store import ConversationStore, NotFound
from services.i18n import t
from services.web_sessions import forget_old
from storage.db import Database
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.app import Shuxiang

log = logging.getLogger(__name__)

# How often the school's retention (web_keep_days, web_session_days) is applied.
PURGE_EVERY_S = 6 * 3600


class WebBot(Bot):
    """A Bot whose updates came in on the web channel (handlers/channels.py reads the mark)."""

    shuxiang_channel = "web"


@dataclass
class WebChannel:
    settings: Settings
    db: Database
    store: ConversationStore
    session: WebChannelSession
    bot: WebBot
    clock: Callable[[], datetime] = utcnow
    runner: web.AppRunner | None = None
    _purger: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls, settings: Settings, db: Database, *, clock: Callable[[], datetime] = utcnow
    ) -> WebChannel:
        store = ConversationStore(db, clock=clock)
        session = WebChannelSession(store)
        bot = WebBot(
            WEB_BOT_TOKEN,
            session=session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        return cls(settings, db, store, session, bot, clock)

    def server(
        self,
        dp: Dispatcher,
        *,
        poll_seconds: float = 25.0,
        page_extra: str = "",
        telegram: Bot | None = None,
    ) -> WebServer:
        return WebServer(
            db=self.db,
            store=self.store,
            bot=self.bot,
            answers=self.session.answers,
            dp=dp,
            secure=self.settings.web_secure(),
            public_url=self.settings.web_base_url(),
            session_days=self.settings.web_session_days,
            bind_limits=self.settings.bind_limits(),
            clock=self.clock,
            poll_seconds=poll_seconds,
            page_extra=page_extra,
            telegram=telegram,
        )

    async def start(
        self,
        dp: Dispatcher,
        *,
        host: str,
        port: int,
        extra_routes: Callable[[web.Application], None] | None = None,
        page_extra: str = "",
        telegram: Bot | None = None,
    ) -> int:
        """Serve the page and its API (and ``extra_routes``: the sandbox's); returns the port
        (0 asks for a free one)."""
        self.store.wakeups.closed = False
        web_app = self.server(dp, page_extra=page_extra, telegram=telegram).app()
        if extra_routes is not None:
            extra_routes(web_app)
        self.runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=5.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self._purger = asyncio.create_task(self._purge_now_and_then(), name="web-purge")
        sockets = [s for s in getattr(site._server, "sockets", None) or []]
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def deliver(self, push: Push) -> None:
        """A push (bot/channels.py): stored in the reader's conversation, at once on an open
        page; once, however often the sender tries."""
        try:
            conversation = -int(push.address)
        except ValueError:
            raise Unreachable(f"not a web address: {push.address!r}") from None
        markup = push.keyboard.model_dump(exclude_none=True) if push.keyboard else None
        try:
            await self.store.add(
                conversation,
                outgoing=True,
                text=push.text,
                html=True,
                markup=markup,
                notification_id=push.notification_id,
            )
        except NotFound:
            raise Unreachable("no such web conversation") from None

    async def purge(self) -> None:
        """Forget what is older than the school keeps (messages, files, sessions)."""
        await self.store.forget_older_than(self.settings.web_keep_days)
        async with self.db.transaction() as session:
            await forget_old(session, days=self.settings.web_session_days, now=self.clock())

    async def _purge_now_and_then(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:  # the next round tries again; the chat goes on
                log.exception("web channel: purging old conversations failed")
            await asyncio.sleep(PURGE_EVERY_S)

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        if self.runner is not None:
            self.store.wakeups.close()  # open pages' long polls answer now
            await self.runner.cleanup()
            self.runner = None


async def start_web(app: Shuxiang) -> None:
    """Serve the web channel where SHUXIANG_WEB_LISTEN says (``shuxiang run``), and say where;
    over plain HTTP, with the warning that this is for a school's intranet only."""
    import typer

    from bot.config import ConfigError

    web_channel, settings = app.web, app.settings
    address = settings.web_address()
    if web_channel is None or address is None:
        return
    telegram = None if app.bot is web_channel.bot else app.bot
    try:
        await web_channel.start(app.dp, host=address[0], port=address[1], telegram=telegram)
    except OSError as exc:
        raise ConfigError(
            t("web.cannot_listen", listen=settings.web_listen, reason=exc.strerror or exc)
        ) from None
    typer.echo(t("web.listening", url=settings.web_base_url(), listen=settings.web_listen))
    if not settings.web_secure():
        typer.echo(t("web.insecure_warning"), err=True)


async def serve_alone(app: Shuxiang, *, stop: asyncio.Event | None = None) -> None:
    """The web channel without Telegram: the dispatcher's start-up (menus, the search index,
    the sweeps and the sender) as polling would run it, then serve until SIGINT or SIGTERM (or
    ``stop``), finishing the updates in flight."""
    import typer

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    workflow = {"dispatcher": app.dp, "bots": [app.bot], **app.dp.workflow_data}
    try:
        await app.dp.emit_startup(bot=app.bot, **workflow)
        typer.echo(t("web.alone"))
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if app.web is not None:
            await app.web.stop()  # no new requests; those in flight finish below
        app.pipeline.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(app.pipeline.idle.wait(), 30)
        await app.dp.emit_shutdown(bot=app.bot, **workflow)


async def run_web(app: Shuxiang) -> bool:
    """``shuxiang run``'s web part: serve the web channel when configured; without Telegram,
    serve it until stopped and return True (else polling runs beside it)."""
    if app.web is None:
        return False
    await start_web(app)
    if app.bot is not app.web.bot:
        return False
    await serve_alone(app)
    return True
