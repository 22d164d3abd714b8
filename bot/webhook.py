"""Webhook mode (`shuxiang run --webhook`): one of several workers behind nginx.

An update is answered 2xx only once it is handled: its transaction committed and its replies
sent (the same Dispatcher pipeline as polling: ``dp.feed_update``, waited for, not aiogram's
``SimpleRequestHandler``, which answers at once or after 55 s whatever happened). A worker
killed mid-update never answers, nginx answers 502 and Telegram sends the update again, to this
worker or another; the processed-update record makes the repeat change nothing twice. A database,
Redis or network failure that escapes the pipeline answers 503 without an apology, so Telegram
tries again later; any other failure is answered by the error router's apology and 200 (retrying
a bug would only repeat the apology). Requests without Telegram's secret-token header, or with
a wrong one, are refused with 403 before anything is read. An update already answered 2xx is
not handled again when it comes back (a retry racing a slow first attempt, nginx passing a
request on): the processed-update record guards what writes, a mark in Redis (``HandledUpdates``)
what only reads, so a search is not answered twice.

Several workers share (with SHUXIANG_REDIS_URL): dialogue state (the FSM storage), one lock per
user around each update (aiogram's RedisEventIsolation: a user's updates are handled one at a
time, in the order Telegram sends them, on whichever worker), the throttling window, and the
sender's rate. Exactly one worker runs the scheduled jobs (``bot/leader.py``); every worker's
sender drains the outbox (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import signal
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramNetworkError
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.types import ErrorEvent, TelegramObject, Update
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from bot.health import check_health
from bot.leader import Leader
from bot.shared_rate import SharedRate
from handlers.middlewares import Handler, ThrottlingMiddleware
from handlers.throttle import RedisWindow

if TYPE_CHECKING:
    from bot.app import Shuxiang
    from bot.config import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
HEALTH_PATH = "/healthz"
# A user's lock outlives a killed worker by this long at most; a living worker renews it every
# third of that while the update runs, however long (a busy worker's update once outlived a fixed
# 10 s: its release failed, it was answered 503 and handled again, a quarter of the updates under
# load). Should a renewal still fail (Redis gone), the release fails and the update is answered
# 503: Telegram's retry finds it answered (HandledUpdates) or recorded (writes). Renewed for
# USER_LOCK_KEPT_S at most: nginx and Telegram stop waiting for the answer after about a minute,
# and a retry must not wait forever behind an update that hangs.
USER_LOCK_S = 10
USER_LOCK_KEPT_S = 60
HANDLED_TTL_S = 24 * 3600
# Failures worth Telegram's retry: the update did nothing, and may well work on another attempt.
TRANSIENT = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    RedisError,
    TelegramNetworkError,
    OSError,
    TimeoutError,
)


# PostgreSQL's deadlock and serialization failures: the transaction rolled back, a retry may pass.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT):
        return True
    if isinstance(exc, DBAPIError):
        for cause in (exc.orig, getattr(exc.orig, "__cause__", None), exc.__cause__):
            if getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES:
                return True
    return False


def webhook_secret(settings: Settings, token: str) -> str:
    """SHUXIANG_WEBHOOK_SECRET, or one derived from the token (the same on every worker)."""
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    return hmac.new(token.encode(), b"shuxiang-webhook", hashlib.sha256).hexdigest()


class KeptRedisEventIsolation(RedisEventIsolation):
    """aiogram's RedisEventIsolation, its lock renewed while the update runs (see USER_LOCK_S)."""

    @contextlib.asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock = self.redis.lock(
            name=self.key_builder.build(key, "lock"), **self.lock_kwargs, lock_class=Lock
        )
        async with lock:
            done = asyncio.Event()
            renewer = asyncio.create_task(_renew(lock, done))
            try:
                yield None
            finally:
                # Ended before the release, so no renewal lands after it. ``done`` as well as
                # the cancel: under load a cancel was lost inside a renewal's Redis call (as
                # asyncio.wait_for loses one before Python 3.12), and the update then waited
                # here for the renewer's whole minute (benchmarks/cluster.py, 64 in flight).
                done.set()
                renewer.cancel()
                # asyncio.wait: the renewer's cancellation is not raised here, ours still is.
                await asyncio.wait([renewer])


async def _renew(lock: Lock, done: asyncio.Event) -> None:
    for _ in range(int(USER_LOCK_KEPT_S / (USER_LOCK_S / 3))):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), USER_LOCK_S / 3)
        if done.is_set():
            return
        try:
            await lock.reacquire()
        except (RedisError, OSError):  # LockNotOwnedError included: the release will say so
            log.warning("could not renew a user's lock")
            return
    log.warning("an update has held its user's lock for %s s: no longer renewed", USER_LOCK_KEPT_S)


@dataclass
class Outcome:
    retry: bool = False


class RetryTransient(BaseMiddleware):
    """On the errors observer: a transient failure is not apologised for but answered 503."""

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        outcome: Outcome | None = data.get("webhook_outcome")
        if outcome is not None and isinstance(event, ErrorEvent) and is_transient(event.exception):
            outcome.retry = True
            log.warning(
                "update %s: %s, left for Telegram to send again",
                event.update.update_id,
                type(event.exception).__name__,
            )
            return True
        return await handler(event, data)


def share_between_workers(app: Shuxiang) -> HandledUpdates:
    """What several workers share, when Redis is configured; one worker alone keeps per-user
    order with an in-process lock. Exactly one scheduler either way."""
    settings = app.settings
    storage = app.dp.storage
    if isinstance(storage, RedisStorage):
        key_builder = DefaultKeyBuilder(prefix=settings.redis_prefix)
        app.dp.fsm.events_isolation = KeptRedisEventIsolation(
            storage.redis,
            key_builder=key_builder,
            lock_kwargs={"timeout": USER_LOCK_S, "sleep": 0.02, "blocking_timeout": 60},
        )
        for middleware in app.dp.update.outer_middleware:
            if isinstance(middleware, ThrottlingMiddleware):
                middleware.shared = RedisWindow(
                    storage.redis,
                    prefix=settings.redis_prefix,
                    limit=middleware.limit,
                    window_s=middleware.window_s,
                )
        app.sender.shared_rate = SharedRate(
            storage.redis, f"{settings.redis_prefix}:send-rate", settings.send_rate
        )
    else:
        app.dp.fsm.events_isolation = SimpleEventIsolation()
    app.dp.errors.outer_middleware(RetryTransient())
    app.leader = Leader(app.db)
    redis = storage.redis if isinstance(storage, RedisStorage) else None
    handled = HandledUpdates(redis, settings.redis_prefix)
    _just_inside_the_user_lock(app, SkipHandled(handled))
    return handled


class HandledUpdates:
    """Update ids answered 2xx, so that a repeat (Telegram's retry after a lost answer, or one
    nginx passed on while the first was still running) is not handled again: the
    processed-update record guards what writes, this guards the replies of what only reads.
    Kept in Redis for a day (Telegram gives up on an update after that) when workers share it,
    else the last 10,000 ids in the process."""

    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.recent: OrderedDict[int, None] = OrderedDict()

    def _key(self, update_id: int) -> str:
        return f"{self.prefix}:handled:{update_id}"

    async def seen(self, update_id: int) -> bool:
        if self.redis is None:
            return update_id in self.recent
        try:
            return bool(await self.redis.exists(self._key(update_id)))
        except (RedisError, OSError):
            return False  # handled again at worst: writes are still guarded by the database

    async def done(self, update_id: int) -> None:
        if self.redis is None:
            self.recent[update_id] = None
            while len(self.recent) > 10_000:
                self.recent.popitem(last=False)
            return
        try:
            await self.redis.set(self._key(update_id), 1, ex=HANDLED_TTL_S)
        except (RedisError, OSError):
            log.warning("update %s: could not record it as answered", update_id)


class SkipHandled(BaseMiddleware):
    """Right inside the user's lock (aiogram's FSM middleware holds it), around the whole
    pipeline: an update already answered is not handled again, and an update is marked once
    its replies went out, before the lock is released, so a repeat waiting for the lock finds
    the mark. A failure escapes before the mark: Telegram's retry handles it."""

    def __init__(self, handled: HandledUpdates) -> None:
        self.handled = handled

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update) or data.get("webhook_outcome") is None:
            return await handler(event, data)
        if await self.handled.seen(event.update_id):
            log.info("update %s already answered: not handled again", event.update_id)
            return None
        result = await handler(event, data)
        await self.handled.done(event.update_id)
        return result


def _just_inside_the_user_lock(app: Shuxiang, middleware: BaseMiddleware) -> None:
    """aiogram registers only at the end: take the assembly's middlewares off and put them
    back after this one."""
    manager = app.dp.update.outer_middleware
    registered = list(manager)
    after = registered[registered.index(app.dp.fsm) + 1 :]
    for later in after:
        manager.unregister(later)
    manager.register(middleware)
    for later in after:
        manager.register(later)


class WebhookServer:
    """The aiohttp application: POST ``path`` (updates) and GET /healthz."""

    def __init__(self, app: Shuxiang, *, secret: str, path: str) -> None:
        self.app = app
        self.secret = secret.encode()
        self.path = path
        self.draining = False
        # At most this many updates handled at once; the rest wait here, before their user's
        # lock and a database connection, so neither is held while the process is busy.
        self.in_flight = asyncio.Semaphore(app.settings.max_updates_in_flight)
        self.web = web.Application(client_max_size=1024 * 1024)
        self.web.router.add_post(path, self.handle_update)
        self.web.router.add_get(HEALTH_PATH, self.handle_health)

    async def handle_update(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not secrets.compare_digest(given, self.secret):
            return web.Response(status=403)
        if self.draining:  # stopping: another worker takes it (nginx or Telegram's retry)
            return web.Response(status=503)
        try:
            payload = await request.json(loads=orjson.loads)
            update = Update.model_validate(payload, context={"bot": self.app.bot})
        except (ValueError, ValidationError):
            return web.Response(status=400)
        outcome = Outcome()
        async with self.in_flight:
            try:
                await self.app.dp.feed_update(self.app.bot, update, webhook_outcome=outcome)
            except Exception:  # the error router declined it: never answer 2xx for it
                log.exception("update %s failed", update.update_id)
                return web.Response(status=500)
        return web.Response(status=503 if outcome.retry else 200)

    async def handle_health(self, request: web.Request) -> web.Response:
        report = await check_health(self.app.settings, db=self.app.db, bot=self.app.bot)
        return web.json_response(report.as_json(), status=200 if report.ok else 503)


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return (host or "127.0.0.1").strip("[]"), int(port)


async def serve_webhook(
    app: Shuxiang,
    *,
    token: str,
    listen: str,
    url: str,
    path: str,
    register: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the bot's jobs, register the webhook, serve until SIGTERM/SIGINT (or ``stop``),
    then finish the updates in flight before closing."""
    share_between_workers(app)
    server = WebhookServer(app, secret=webhook_secret(app.settings, token), path=path)
    dp = app.dp
    workflow = {"dispatcher": dp, "bots": [app.bot], **dp.workflow_data}
    await dp.emit_startup(bot=app.bot, **workflow)
    runner = web.AppRunner(server.web, access_log=None, shutdown_timeout=30.0)
    await runner.setup()
    host, port = parse_listen(listen)
    await web.TCPSite(runner, host, port).start()
    if register:
        # Every worker registers the same URL: harmless, and a worker started alone suffices.
        await app.bot.set_webhook(
            url,
            secret_token=webhook_secret(app.settings, token),
            allowed_updates=dp.resolve_used_update_types(),
            max_connections=100,
            drop_pending_updates=False,
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("webhook worker listening on %s:%s%s", host, port, path)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        server.draining = True
        # Waits for the requests in flight (their updates finish and answer) up to 30 s.
        await runner.cleanup()
        with contextlib.suppress(Exception):
            await dp.emit_shutdown(bot=app.bot, **workflow)
