"""A school-sized broadcast for the crash test and the pushes benchmark: every reader of a roster
imported, bound to an emulator user, and one queued notice each; and how long a killed sender's
claims take to go out after its restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import insert, select

from sandbox.emulator import BotApiEmulator
from sandbox.shared_data import shared_data_dir
from services.imports.catalogue import import_readers
from services.notifications import enqueue_many
from services.notifications.notice import NOTICE, NoticePayload
from storage.db import Database
from storage.models import (
    Channel,
    Endpoint,
    Notification,
    OutboxStatus,
    Reader,
    Relation,
    utcnow,
)

ROSTER = shared_data_dir() / "readers" / "school_roster.csv"
CHAT_BASE = 10_000_000


async def seed_broadcast(
    db: Database, emu: BotApiEmulator, roster: Path = ROSTER, notice: str = "crash-test"
) -> list[int]:
    """Returns the chat ids that must each receive the notice exactly once."""
    now = utcnow()
    async with db.transaction() as session:
        await import_readers(session, roster)
        reader_ids = list(await session.scalars(select(Reader.id).order_by(Reader.id)))
        await session.execute(
            insert(Endpoint),
            [
                {
                    "channel": Channel.TELEGRAM.value,
                    "address": str(CHAT_BASE + rid),
                    "reader_id": rid,
                    "relation": Relation.SELF.value,
                    "bound_at": now,
                }
                for rid in reader_ids
            ],
        )
        text = "本周五下午图书馆闭馆盘点，请提前借还。"
        await enqueue_many(
            session,
            NOTICE,
            [(rid, NoticePayload(notice=notice, reader_id=rid, text=text)) for rid in reader_ids],
            now=now,
        )
    chats = [CHAT_BASE + rid for rid in reader_ids]
    for chat in chats:
        emu.add_user(chat, first_name=f"r{chat}")
    return chats


def deliveries(emu: BotApiEmulator, chats: list[int]) -> dict[int, int]:
    sent = emu.sent_counts()
    return {chat: sent.get(chat, 0) for chat in chats}


async def claimed_ids(db: Database) -> set[int]:
    """The notifications leased to a sender right now (status 'sending')."""
    async with db.transaction(read_only=True) as session:
        rows = await session.scalars(
            select(Notification.id).where(Notification.status == OutboxStatus.SENDING.value)
        )
        return set(rows)


async def time_to_sent(db: Database, ids: set[int], since: float, poll: float = 0.2) -> float:
    """Seconds from ``since`` (``time.monotonic()``) until every notification in ``ids`` is
    recorded as sent (so it reached its reader): a killed sender's claims, after its restart."""
    left = set(ids)
    while left:
        async with db.transaction(read_only=True) as session:
            done = await session.scalars(
                select(Notification.id).where(
                    Notification.id.in_(left), Notification.status == OutboxStatus.SENT.value
                )
            )
            left -= set(done)
        if left:
            await asyncio.sleep(poll)
    return time.monotonic() - since
