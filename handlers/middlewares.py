"""The path of one update through the bot, and where each step lives.

Outer middlewares on ``dp.update``, after aiogram's own (errors, user and chat context):

1. PrivateChatsOnly: loans and binding codes are personal; groups and channels are ignored.
2. UpdatePipeline: counts the update in flight (a graceful stop lets it finish), gives it a
   Replies buffer (``replies``, handlers/replies.py) and, once everything inside has returned —
   the transaction committed or rolled back — sends the buffer in order. An exception empties
   the buffer; the error handler (handlers/errors.py) then apologises.
3. ThrottlingMiddleware: a per-user window, before any transaction; a throttled update never
   touches the database (librarians are exempt through a roster cached for a minute).
4. ReaderMiddleware: locale, translator and the update's one Actor (services/actor.py: the bound
   reader with their role and monitored classes, or None), read once in a read-only
   transaction (filters such as ``is_librarian`` need it; the services check it again). That
   transaction stays open for a read-only handler to carry on in (one BEGIN and COMMIT per
   update); a writer's unit ends it before opening its own.

aiogram's routers then choose the handler by its filters, and the inner middleware UnitOfWork (on
the message and callback_query observers) opens the transaction that handler asked for and gives
the handler its one typed context, ``ctx`` (handlers/context.py: session, actor, translator,
time zone, policy, replies and the injected clock). A handler
registered with ``flags=bound()`` is for bound readers only: anyone else is told how to bind
(``bind.required``, or the handler's own refusal) and the handler does not run.

- registered with ``flags=writes()``: a write transaction (SQLite ``BEGIN IMMEDIATE``). The update
  id is claimed first: a repeat runs nothing and sends the replies it had not sent yet. The
  handler runs, its replies are stored with the update id, and the transaction commits;
- anything else: the read-only transaction of ReaderMiddleware (deferred ``BEGIN``, no lock, no
  update id; on SQLite a connection that is query_only for good; a redelivered read is simply
  answered again). A read-only handler that writes after all is
  stopped by the database guard, rolled back and run again as a writer, with a warning to flag it.
- ServiceError (a rule said no): rollback, and the only reply is the refusal (a writer's update
  id is recorded with it), with the buttons of the dialogue step when the handler was
  registered with ``keeps(...)`` (so a refused scan at the desk still has its 完成). A commit
  that fails: the only reply is "nothing was saved, try again".
- A database connection lost before the commit (PostgreSQL restarted, a pooled connection cut;
  the pool pings only connections idle for a while): the unit runs once more on a fresh one, as
  does ReaderMiddleware's read. Nothing was committed and no reply sent, so nothing doubles.

No Bot API call is made while a write transaction is open: handlers only queue them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.flags import get_flag
from aiogram.enums import ChatType
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
    User,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.channels import channel_of
from handlers.context import Ctx
from handlers.render import Translator
from handlers.replies import Replies
from handlers.throttle import ALLOWED, REFUSED_FIRST, RedisWindow
from services.actor import Actor
from services.errors import ServiceError
from services.i18n import available_locale
from services.readers.binding import librarian_accounts, reader_for_endpoint
from storage.db import Database, Reading, ReadOnlyTransactionError
from storage.updates import claim_update, keep_replies, replies_sent, unsent_replies

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
WRITES = "writes"
T = TypeVar("T")
BOUND = "bound"  # value: the locale key of the refusal for a user who is not bound
REFUSAL_MARKUP = "refusal_markup"  # value: Translator -> the buttons a refusal keeps
READING = "reading"  # handler data: ReaderMiddleware's open read-only transaction


def writes() -> dict[str, Any]:
    """Flags of a handler that changes state: ``register(handler, ..., flags=writes())``.
    A fresh dict each time: aiogram's filters add their own flags to it."""
    return {WRITES: True}


def bound(*, writes: bool = False, refusal: str = "bind.required") -> dict[str, Any]:
    """Flags of a handler for bound readers only: ``register(..., flags=bound())``. For anyone
    else UnitOfWork answers ``refusal`` (a locale key) and the handler does not run, so its
    ``reader`` is never None. ``writes=True`` as with writes()."""
    flags: dict[str, Any] = {BOUND: refusal}
    if writes:
        flags[WRITES] = True
    return flags


def keeps(markup: Callable[[Translator], InlineKeyboardMarkup]) -> dict[str, Any]:
    """Flags of a dialogue step whose refusals keep its buttons (the desk's 完成 under a refused
    scan): ``register(..., flags={**writes(), **keeps(done_keyboard)})``."""
    return {REFUSAL_MARKUP: markup}


def brief_reply(
    event: TelegramObject, text: str, markup: InlineKeyboardMarkup | None = None
) -> TelegramMethod[Any] | None:
    """A short answer to whatever kind of update this is (an alert for button presses).
    Plain text: refusals quote titles and card numbers as typed, which may hold '<' or '&'."""
    if isinstance(event, Update):
        event = event.event
    if isinstance(event, CallbackQuery):
        return AnswerCallbackQuery(callback_query_id=event.id, text=text[:200], show_alert=True)
    if isinstance(event, Message):
        return SendMessage(chat_id=event.chat.id, text=text, parse_mode=None, reply_markup=markup)
    return None


def _refusal_markup(data: dict[str, Any]) -> InlineKeyboardMarkup | None:
    build = get_flag(data, REFUSAL_MARKUP)
    return build(_translator(data)) if callable(build) else None


async def once_more_if_cut(
    run: Callable[[], Awaitable[T]], what: str, *, before_again: Callable[[], None] | None = None
) -> T:
    """``run()``, and once more if the database connection under it was cut (a restart, a
    firewall): the pool has then dropped all its connections, so the second try gets a fresh
    one. Only for work that commits nothing before it fails."""
    try:
        return await run()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("%s: database connection lost; running it again", what)
        if before_again is not None:
            before_again()
        return await run()


def _translator(data: dict[str, Any]) -> Translator:
    tr = data.get("tr")
    if isinstance(tr, Translator):
        return tr
    user: User | None = data.get("event_from_user")
    return Translator(available_locale(user.language_code if user else None))


class PrivateChatsOnly(BaseMiddleware):
    """Loans and binding codes are personal: updates from groups and channels are ignored."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.type != ChatType.PRIVATE:
            return None
        return await handler(event, data)


class UpdatePipeline(BaseMiddleware):
    """One Replies buffer per update, sent after its transaction; tracks the updates in flight."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # For a graceful stop: ``idle`` tells when no update is in flight. With aiogram's own
        # sequential polling (``hold_when_draining``), a newly fetched update waits here once
        # draining until polling is cancelled: the poller is held up with it, so no later
        # getUpdates confirms it and Telegram delivers it again after the restart. The bounded
        # poller (bot/concurrency.py) stops fetching itself and lets what it started finish.
        self.draining = False
        self.hold_when_draining = True
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        # Sent replies are forgotten (their stored copy cleared) at once, or with
        # ``batch_sent`` in one write per getUpdates, by flush_sent before the offset confirms
        # their updates: a redelivery (only ever of an unconfirmed update) still finds them.
        self.batch_sent = False
        self._sent: list[int] = []

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if self.draining and self.hold_when_draining:
            await asyncio.Event().wait()
        self.in_flight += 1
        self.idle.clear()
        try:
            return await self._handle(handler, event, data)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    async def _handle(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        bot: Bot = data["bot"]
        replies = Replies(bot)
        data["replies"] = replies
        try:
            result = await handler(event, data)
        except BaseException:
            replies.clear()
            raise
        kept_for = replies.kept_for
        await replies.send()
        if kept_for is not None:
            self._sent.append(kept_for)
            if not self.batch_sent:
                await self.flush_sent()
        return result

    async def flush_sent(self) -> None:
        """Clear the stored copies of the replies sent since the last call, in one write."""
        if not self._sent:
            return
        sent, self._sent = self._sent, []
        try:
            async with self.db.transaction() as session:
                await replies_sent(session, sent)
        except SQLAlchemyError:  # a redelivery would send them again: edits are harmless
            log.warning("updates %s: could not mark their replies sent", sent)


class LibrarianRoster:
    """Accounts (channel, address) bound to librarians, read at most once per ``ttl_s``: the
    throttle exempts the desk without a query per update. Binding changes call :meth:`forget`."""

    def __init__(self, db: Database, *, ttl_s: float = 60.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._users: frozenset[tuple[str, str]] = frozenset()
        self._loaded_at: float | None = None

    def forget(self) -> None:
        self._loaded_at = None

    async def includes(self, user_id: int, channel: str = "telegram") -> bool:
        now = time.monotonic()
        if self._loaded_at is None or now - self._loaded_at > self.ttl_s:
            async with self.db.transaction(read_only=True) as session:
                self._users = frozenset(await librarian_accounts(session))
            self._loaded_at = now
        return (str(channel), str(user_id)) in self._users


class ThrottlingMiddleware(BaseMiddleware):
    """Per-user sliding window; the first refusal in a window says so, later ones stay silent.
    Librarians at the desk scan barcodes in quick succession and are not throttled."""

    def __init__(
        self,
        roster: LibrarianRoster | None = None,
        *,
        limit: int = 8,
        window_s: float = 5.0,
        max_users: int = 10_000,
        shared: RedisWindow | None = None,
    ) -> None:
        self.roster = roster
        # Several workers: the window lives in Redis (handlers/throttle.py), counted once.
        self.shared = shared
        self.limit = limit
        self.window_s = window_s
        self.max_users = max_users
        self._events: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def allow(self, user_id: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self._events) > self.max_users:
            self._forget_idle(now)
        stamps = self._events.setdefault(user_id, deque())
        while stamps and now - stamps[0] > self.window_s:
            stamps.popleft()
        if len(stamps) >= self.limit:
            return False
        stamps.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        idle = [u for u, s in self._events.items() if not s or now - s[-1] > self.window_s]
        for user_id in idle:
            self._events.pop(user_id, None)
            self._warned.pop(user_id, None)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        verdict = await self.shared.check(user.id) if self.shared is not None else None
        if verdict == ALLOWED or (verdict is None and self.allow(user.id)):
            return await handler(event, data)
        channel = channel_of(data.get("bot"))
        if self.roster is not None and await self.roster.includes(user.id, channel):
            return await handler(event, data)
        now = time.monotonic()
        first = (
            verdict == REFUSED_FIRST
            if verdict is not None
            else now - self._warned.get(user.id, -1e9) > self.window_s
        )
        if first:
            self._warned[user.id] = now
            replies: Replies | None = data.get("replies")
            refusal = brief_reply(event, _translator(data)("errors.throttled"))
            if replies is not None and refusal is not None:
                replies.add(refusal)
        return None


class ReaderMiddleware(BaseMiddleware):
    """Puts the locale, a translator and the bound reader (or None) into the handler data."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        locale = available_locale(user.language_code if user else None)
        data["locale"] = locale
        data["tr"] = Translator(locale)
        channel = data["channel"] = channel_of(data.get("bot"))
        data["actor"] = None
        if user is None:
            return await handler(event, data)
        address = str(user.id)
        # The lookup's read-only transaction stays open: a read-only handler carries on in it
        # (UnitOfWork), one BEGIN and COMMIT for the update; a writer's unit ends it first.
        reading, data["actor"] = await once_more_if_cut(
            lambda: self._reader(channel, address), "reading the reader"
        )
        data[READING] = reading
        try:
            result = await handler(event, data)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await reading.end(exc)
            raise
        await reading.end()
        return result

    async def _reader(self, channel: str, address: str) -> tuple[Reading, Actor | None]:
        reading = self.db.reading()
        try:
            return reading, await reader_for_endpoint(await reading.begin(), channel, address)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await reading.end(exc)
            raise


def _open(data: dict[str, Any], session: AsyncSession) -> None:
    """The handler's view of its update: the one Ctx, holding the transaction just opened."""
    data["ctx"] = Ctx(
        session=session,
        actor=data.get("actor"),
        tr=_translator(data),
        tz=data["tz"],
        policy=data["policy"],
        replies=data["replies"],
        clock=data["clock"],
    )


class UnitOfWork(BaseMiddleware):
    """Inner middleware: the transaction the chosen handler asked for (see the module doc)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        replies: Replies = data["replies"]
        update: Update = data["event_update"]
        refusal = get_flag(data, BOUND)
        if refusal is not None and data.get("actor") is None:
            # Before any transaction: nothing to read or write for someone we do not know.
            reply = brief_reply(event, _translator(data)(str(refusal)))
            if reply is not None:
                replies.add(reply)
            return None
        # Nothing was committed and no reply sent when the connection died: run it afresh.
        return await once_more_if_cut(
            lambda: self._unit(handler, event, data),
            f"update {update.update_id}",
            before_again=replies.clear,
        )

    async def _unit(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        replies: Replies = data["replies"]
        update: Update = data["event_update"]
        writing = bool(get_flag(data, WRITES))
        # ReaderMiddleware's transaction, on the first run only (a second runs afresh).
        reading: Reading = data.pop(READING, None) or self.db.reading()
        try:
            if not writing:
                try:
                    async with reading as session:
                        _open(data, session)
                        return await handler(event, data)
                except ReadOnlyTransactionError as exc:
                    log.warning(
                        "update %s: %s wrote (%s) without flags={'writes': True}: run as a writer",
                        update.update_id,
                        getattr(data.get("handler"), "callback", "handler"),
                        exc,
                    )
                    replies.clear()
                    writing = True
            await reading.end()
            return await self._write(handler, event, data, update.update_id)
        except ServiceError as refused:
            text = refused.render(_translator(data).locale)
            replies.only(brief_reply(event, text, _refusal_markup(data)))
            if writing:
                # The transaction rolled back, the update id with it: record both on their own.
                async with self.db.transaction() as session:
                    await claim_update(session, update.update_id)
                    await keep_replies(session, update.update_id, replies.dump())
                replies.kept_for = update.update_id
            return None

    async def _write(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any], update_id: int
    ) -> Any:
        replies: Replies = data["replies"]
        ran = False
        try:
            async with self.db.transaction() as session:
                if not await claim_update(session, update_id):
                    unsent = await unsent_replies(session, update_id)
                    state = "resending its replies" if unsent else "done"
                    log.info("update %s already handled: %s", update_id, state)
                    replies.clear()
                    if unsent:
                        replies.load(unsent)
                        replies.kept_for = update_id
                    return None
                _open(data, session)
                result = await handler(event, data)
                ran = True
                await keep_replies(session, update_id, replies.dump())
        except ServiceError:
            raise
        except Exception:
            if not ran:
                raise
            # The handler finished but its work is not saved: never send its success text.
            log.exception("update %s: commit failed; the user is asked to try again", update_id)
            replies.only(brief_reply(event, _translator(data)("pipeline.not_saved")))
            return None
        if len(replies):
            replies.kept_for = update_id
        return result
