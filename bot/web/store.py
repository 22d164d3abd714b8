"""Web conversations in the database: every message either way, its edits and deletions, the
command menu and the reply keyboard. Each change takes the conversation's next ``seq``, so a
page asks for what changed after the last ``seq`` it saw (after a restart too); a page that is
open here is woken at once (``Wakeups``), one open on another process within its poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.html import sanitise
from storage.db import Database
from storage.models import WebConversation, WebFile, WebMessage, utcnow


class NotFound(LookupError):
    """No such message in this conversation (another reader's id is not found either)."""


class NotModified(ValueError):
    """An edit that changes nothing (Telegram refuses it so; the replies count it as done)."""


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    mime: str
    data: bytes


class Wakeups:
    """In-process wake-ups of the pages waiting on a conversation."""

    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}
        self.closed = False

    def close(self) -> None:
        """Shutting down: every waiting page gets its answer now, and no one waits again."""
        self.closed = True
        for event in self._events.values():
            event.set()
        self._events.clear()

    def notify(self, conversation_id: int) -> None:
        event = self._events.pop(conversation_id, None)
        if event is not None:
            event.set()

    async def wait(self, conversation_id: int, timeout: float) -> None:  # noqa: ASYNC109
        if self.closed:
            return
        event = self._events.setdefault(conversation_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


async def next_seq(session: AsyncSession, conversation_id: int) -> int:
    # One UPDATE ... RETURNING: the row lock orders concurrent writers on both databases.
    seq = await session.scalar(
        update(WebConversation)
        .where(WebConversation.id == conversation_id)
        .values(seq=WebConversation.seq + 1)
        .returning(WebConversation.seq)
    )
    if seq is None:
        raise NotFound(conversation_id)
    return int(seq)


def message_json(row: WebMessage) -> dict[str, Any]:
    """A message as the page gets it: text is escaped unless it is the bot's (then only
    Telegram's subset survives); buttons as rows of {text, data | url}."""
    if row.deleted:
        return {"id": row.id, "seq": row.seq, "deleted": True}
    body = sanitise(row.text) if row.html else _escaped(row.text)
    rows = []
    for line in (row.markup or {}).get("inline_keyboard") or []:
        buttons = []
        for button in line:
            if button.get("callback_data"):
                buttons.append({"text": button["text"], "data": button["callback_data"]})
            elif button.get("url"):
                buttons.append({"text": button["text"], "url": button["url"]})
        rows.append(buttons)
    return {
        "id": row.id,
        "seq": row.seq,
        "out": row.outgoing,
        "date": int(row.date.timestamp()),
        "html": body,
        "buttons": rows,
        "media": row.media,
        "file": row.file_id,
        "edited": row.edited,
    }


def _escaped(text: str) -> str:
    return escape(text, quote=False)


class ConversationStore:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.wakeups = Wakeups()

    async def add(
        self,
        conversation_id: int,
        *,
        outgoing: bool,
        text: str,
        html: bool,
        markup: dict[str, Any] | None = None,
        keyboard: dict[str, Any] | bool | None = False,
        upload: Upload | None = None,
        media: str | None = None,
        notification_id: int | None = None,
    ) -> WebMessage:
        """A new message. ``keyboard``: a reply keyboard to show, None to remove it, False to
        leave it as it is. A push (``notification_id``) already stored is not stored again."""
        async with self.db.transaction() as session:
            if notification_id is not None:
                stored_push = await session.scalar(
                    select(WebMessage).where(WebMessage.notification_id == notification_id)
                )
                if stored_push is not None:
                    return stored_push
            seq = await next_seq(session, conversation_id)
            file_id = None
            if upload is not None:
                stored = WebFile(
                    conversation_id=conversation_id,
                    name=upload.name,
                    mime=upload.mime,
                    data=upload.data,
                    created_at=self.clock(),
                )
                session.add(stored)
                await session.flush()
                file_id = stored.id
            row = WebMessage(
                conversation_id=conversation_id,
                seq=seq,
                outgoing=outgoing,
                date=self.clock(),
                text=text,
                html=html,
                markup=markup,
                media=media,
                file_id=file_id,
                edited=False,
                deleted=False,
                notification_id=notification_id,
            )
            session.add(row)
            if keyboard is not False:
                conversation = await session.get(WebConversation, conversation_id)
                if conversation is not None:
                    conversation.keyboard = keyboard if isinstance(keyboard, dict) else None
            await session.flush()
        self.wakeups.notify(conversation_id)
        return row

    async def edit(
        self,
        conversation_id: int,
        message_id: int,
        *,
        text: str | None = None,
        html: bool | None = None,
        markup: dict[str, Any] | None,
    ) -> WebMessage:
        async with self.db.transaction() as session:
            row = await _mine(session, conversation_id, message_id)
            if not row.outgoing:
                raise NotFound(message_id)
            same_text = text is None or (text == row.text and html == row.html)
            if same_text and markup == row.markup:
                raise NotModified(message_id)
            if text is not None:
                row.text = text
                row.html = bool(html)
            row.markup = markup
            row.edited = True
            row.seq = await next_seq(session, conversation_id)
            await session.flush()
        self.wakeups.notify(conversation_id)
        return row

    async def delete(self, conversation_id: int, message_id: int) -> None:
        async with self.db.transaction() as session:
            row = await _mine(session, conversation_id, message_id)
            row.deleted = True
            row.markup = None
            row.seq = await next_seq(session, conversation_id)
        self.wakeups.notify(conversation_id)

    async def tick(self, conversation_id: int) -> int:
        """A new ``seq`` without a change to show (a button pressed: its update's id)."""
        async with self.db.transaction() as session:
            return await next_seq(session, conversation_id)

    async def set_commands(self, conversation_id: int, commands: list[dict[str, Any]]) -> None:
        async with self.db.transaction() as session:
            conversation = await session.get(WebConversation, conversation_id)
            if conversation is not None:
                conversation.commands = commands
                conversation.seq = await next_seq(session, conversation_id)
        self.wakeups.notify(conversation_id)

    async def button(self, conversation_id: int, message_id: int, data: str) -> WebMessage:
        """The message whose inline keyboard has a button with this data, in this conversation
        only: a page presses what it was shown, nothing else."""
        async with self.db.transaction(read_only=True) as session:
            row = await _mine(session, conversation_id, message_id)
        for line in (row.markup or {}).get("inline_keyboard") or []:
            for button in line:
                if button.get("callback_data") == data:
                    return row
        raise NotFound(message_id)

    async def changes(self, conversation_id: int, after: int, limit: int = 200) -> dict[str, Any]:
        """What changed after ``after``: messages (the last ``limit`` on a first load), the
        command menu and the reply keyboard, and the ``seq`` to ask after next time."""
        async with self.db.transaction(read_only=True) as session:
            conversation = await session.get(WebConversation, conversation_id)
            if conversation is None:
                raise NotFound(conversation_id)
            rows = list(
                await session.scalars(
                    select(WebMessage)
                    .where(WebMessage.conversation_id == conversation_id, WebMessage.seq > after)
                    .order_by(WebMessage.seq.desc())
                    .limit(limit)
                )
            )
        rows.reverse()
        return {
            "seq": conversation.seq,
            "messages": [message_json(row) for row in rows if not (after == 0 and row.deleted)],
            "commands": conversation.commands or [],
            "keyboard": conversation.keyboard,
        }

    async def file(self, conversation_id: int, file_id: int) -> WebFile:
        async with self.db.transaction(read_only=True) as session:
            stored = await session.get(WebFile, file_id)
        if stored is None or stored.conversation_id != conversation_id:
            raise NotFound(file_id)
        return stored

    async def forget_older_than(self, days: int) -> int:
        """Messages and files older than ``days`` go (the school's retention setting)."""
        before = self.clock() - timedelta(days=days)
        async with self.db.transaction() as session:
            result = await session.execute(delete(WebMessage).where(WebMessage.date < before))
            await session.execute(delete(WebFile).where(WebFile.created_at < before))
        return int(getattr(result, "rowcount", 0) or 0)


async def _mine(session: AsyncSession, conversation_id: int, message_id: int) -> WebMessage:
    row = await session.get(WebMessage, message_id)
    if row is None or row.conversation_id != conversation_id or row.deleted:
        raise NotFound(message_id)
    return row
