"""Outer middlewares on ``dp.update``, in this order: private chats only, unit of work, reader and
locale, throttling.

The unit of work is the one place a per-update session is opened and committed. It also records
the update id in the same transaction, so a redelivered update is dropped, and turns a refused rule
(ServiceError) into a rollback plus a polite reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update, User

from handlers.render import Translator
from services.errors import ServiceError
from services.i18n import available_locale
from services.readers import BoundReader, reader_for_telegram
from services.updates import claim_update
from storage.db import Database

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


async def reply_briefly(bot: Bot, update: Update, text: str) -> None:
    """Answer whatever kind of update this is with a short text (alert for button presses).
    Plain text: refusals quote titles and card numbers as typed, which may hold '<' or '&'."""
    event = update.event
    if isinstance(event, CallbackQuery):
        await bot.answer_callback_query(event.id, text=text[:200], show_alert=True)
    elif isinstance(event, Message):
        await bot.send_message(event.chat.id, text, parse_mode=None)


class PrivateChatsOnly(BaseMiddleware):
    """Loans and binding codes are personal: updates from groups and channels are ignored."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.type != ChatType.PRIVATE:
            return None
        return await handler(event, data)


class ThrottlingMiddleware(BaseMiddleware):
    """Per-user sliding window; the first refusal in a window says so, later ones stay silent.
    Librarians at the desk scan barcodes in quick succession and are not throttled."""

    def __init__(self, *, limit: int = 8, window_s: float = 5.0, max_users: int = 10_000) -> None:
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
        reader: BoundReader | None = data.get("reader")
        if user is None or (reader is not None and reader.is_librarian) or self.allow(user.id):
            return await handler(event, data)
        now = time.monotonic()
        if isinstance(event, Update) and now - self._warned.get(user.id, -1e9) > self.window_s:
            self._warned[user.id] = now
            tr = Translator(available_locale(user.language_code))
            await reply_briefly(data["bot"], event, tr("errors.throttled"))
        return None


class UnitOfWorkMiddleware(BaseMiddleware):
    def __init__(self, db: Database) -> None:
        self.db = db
        # For a graceful stop: ``idle`` tells when the update in flight has committed; once
        # draining, a newly fetched update waits here until polling is cancelled. The poller is
        # held up with it, so no later getUpdates confirms it: Telegram delivers it again after
        # the restart.
        self.draining = False
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if self.draining:
            await asyncio.Event().wait()
        self.in_flight += 1
        self.idle.clear()
        try:
            return await self._unit_of_work(handler, event, data)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    async def _unit_of_work(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        try:
            async with self.db.transaction() as session:
                if not await claim_update(session, event.update_id):
                    log.info("update %s already handled: dropped", event.update_id)
                    return None
                data["session"] = session
                return await handler(event, data)
        except ServiceError as refused:
            # The transaction rolled back, the update id with it: record it on its own.
            async with self.db.transaction() as session:
                await claim_update(session, event.update_id)
            user: User | None = data.get("event_from_user")
            tr = Translator(available_locale(user.language_code if user else None))
            await reply_briefly(data["bot"], event, refused.render(tr.locale))
            return None


class ReaderMiddleware(BaseMiddleware):
    """Puts the bound reader (or None), the locale and a translator into the handler data."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        locale = available_locale(user.language_code if user else None)
        data["locale"] = locale
        data["tr"] = Translator(locale)
        data["reader"] = (
            await reader_for_telegram(data["session"], user.id) if user is not None else None
        )
        return await handler(event, data)
