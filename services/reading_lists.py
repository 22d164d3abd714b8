"""The librarian's themed lists (书单): make one, add books by barcode or search with a blurb, send
it to grades or classes now or on a date, browse it in the bot. Making, filling and sending a list
(a message to many readers) are the librarian's, or the server's (the CLI, the send job)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.search import SearchEngine
from services.actor import Actor, require_librarian
from services.audit import record_audit
from services.catalogue.card import search_page
from services.circulation import find_copy_by_barcode
from services.errors import ServiceError
from services.notifications import enqueue
from services.readers.reach import bound
from services.reading_list_kinds import READING_LIST, ReadingListPayload
from services.recommend.kinds import BookItem
from services.scopes import resolve_class, resolve_grade
from services.titles import book_names
from storage.models import (
    Reader,
    ReadingList,
    ReadingListItem,
    ReadingListSend,
    Record,
    Role,
    utcnow,
)

MAX_BLURB_CHARS = 300


@dataclass(frozen=True, slots=True)
class ListSummary:
    list_id: int
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class ListEntry:
    record_pk: int
    title: str
    authors: str | None
    blurb: str | None


async def create_list(session: AsyncSession, actor: Actor | None, name: str) -> ReadingList:
    actor = require_librarian(actor)
    name = " ".join(name.split())
    if await session.scalar(select(ReadingList.id).where(ReadingList.name == name)):
        raise ServiceError("cli_lists.exists", name=name)
    reading_list = ReadingList(name=name)
    session.add(reading_list)
    await session.flush()
    record_audit(session, actor.audit_name, "list_create", {"list_id": reading_list.id})
    return reading_list


async def find_list(session: AsyncSession, name_or_id: str) -> ReadingList:
    stmt = select(ReadingList).where(ReadingList.name == " ".join(name_or_id.split()))
    if name_or_id.isdigit():
        stmt = select(ReadingList).where(
            or_(ReadingList.id == int(name_or_id), ReadingList.name == name_or_id)
        )
    found = await session.scalar(stmt.limit(1))
    if found is None:
        raise ServiceError("cli_lists.no_list", name=name_or_id)
    return found


async def _book(session: AsyncSession, book: str, search: SearchEngine | None) -> Record:
    """A barcode names its record; anything else is a search and the best hit is taken."""
    copy = await find_copy_by_barcode(session, book)  # in any case, width or spacing
    record_pk = copy.record_pk if copy is not None else None
    if record_pk is None and search is not None:
        found = await search_page(session, search, book)
        record_pk = found.hits[0].record_pk if found.hits else None
    if record_pk is None:
        raise ServiceError("cli_lists.no_book", book=book)
    return await session.get_one(Record, record_pk)


async def add_to_list(
    session: AsyncSession,
    actor: Actor | None,
    name_or_id: str,
    book: str,
    *,
    blurb: str | None = None,
    search: SearchEngine | None = None,
) -> tuple[ReadingList, Record, bool]:
    """Add a book (or update its blurb); returns (list, record, newly added)."""
    require_librarian(actor)
    reading_list = await find_list(session, name_or_id)
    record = await _book(session, book, search)
    blurb = (blurb or "").strip()[:MAX_BLURB_CHARS] or None
    item = await session.scalar(
        select(ReadingListItem).where(
            ReadingListItem.list_id == reading_list.id, ReadingListItem.record_pk == record.id
        )
    )
    if item is not None:
        item.blurb = blurb or item.blurb
        await session.flush()
        return reading_list, record, False
    last = await session.scalar(
        select(func.max(ReadingListItem.position)).where(ReadingListItem.list_id == reading_list.id)
    )
    session.add(
        ReadingListItem(
            list_id=reading_list.id, record_pk=record.id, blurb=blurb, position=(last or 0) + 1
        )
    )
    await session.flush()
    return reading_list, record, True


# Most text messages run this (services/talk.py looks for a list's name): built once.
_ALL_LISTS = (
    select(ReadingList.id, ReadingList.name, func.count(ReadingListItem.id))
    .outerjoin(ReadingListItem, ReadingListItem.list_id == ReadingList.id)
    .group_by(ReadingList.id, ReadingList.name)
    .order_by(ReadingList.id)
)


async def all_lists(session: AsyncSession) -> list[ListSummary]:
    rows = await session.execute(_ALL_LISTS)
    return [ListSummary(*row) for row in rows]


async def entries(session: AsyncSession, list_id: int) -> list[ListEntry]:
    rows = await session.execute(
        select(Record.id, Record.title, Record.authors, ReadingListItem.blurb)
        .join(ReadingListItem, ReadingListItem.record_pk == Record.id)
        .where(ReadingListItem.list_id == list_id)
        .order_by(ReadingListItem.position, ReadingListItem.id)
    )
    listed = list(rows)
    names = await book_names(session, (r[0] for r in listed))
    return [ListEntry(pk, names[pk], *rest) for pk, _, *rest in listed]


async def schedule_send(
    session: AsyncSession,
    actor: Actor | None,
    name_or_id: str,
    *,
    grades: list[str],
    classes: list[str],
    at: datetime | None = None,
) -> ReadingListSend:
    """Send a list to grades/classes (nobody named: every student) at ``at`` (default now)."""
    actor = require_librarian(actor)
    reading_list = await find_list(session, name_or_id)
    # Grades and classes the school has, as the roster spells them; anything else is refused.
    grades = [await resolve_grade(session, g) for g in grades]
    classes = [await resolve_class(session, c) for c in classes]
    send = ReadingListSend(
        list_id=reading_list.id,
        audience={"grades": grades, "classes": classes},
        send_at=at or utcnow(),
    )
    session.add(send)
    await session.flush()
    record_audit(
        session, actor.audit_name, "list_send", {"send_id": send.id, "list_id": reading_list.id}
    )
    return send


async def _audience(session: AsyncSession, audience: dict[str, Any]) -> list[int]:
    grades, classes = audience.get("grades") or [], audience.get("classes") or []
    # Only readers the bot can reach: an unbound reader's message would just fail in the outbox.
    stmt = select(Reader.id).where(Reader.active.is_(True), bound(Reader.id))
    if grades or classes:
        stmt = stmt.where(or_(Reader.grade.in_(grades), Reader.class_name.in_(classes)))
    else:
        stmt = stmt.where(Reader.role == Role.STUDENT.value)
    return list(await session.scalars(stmt.order_by(Reader.id)))


async def send_due_lists(
    session: AsyncSession, actor: Actor | None, *, now: datetime | None = None
) -> int:
    """Fan due sends out to the outbox, one message per reader; returns messages queued."""
    require_librarian(actor)
    now = now or utcnow()
    due = list(
        await session.scalars(
            select(ReadingListSend)
            .where(ReadingListSend.sent_at.is_(None), ReadingListSend.send_at <= now)
            .order_by(ReadingListSend.id)
            .with_for_update(skip_locked=True)
        )
    )
    queued = 0
    for send in due:
        reading_list = await session.get_one(ReadingList, send.list_id)
        books = await entries(session, send.list_id)
        items = [
            BookItem(record_pk=b.record_pk, title=b.title, authors=b.authors, blurb=b.blurb)
            for b in books
        ]
        readers = await _audience(session, send.audience)
        for reader_id in readers:
            payload = ReadingListPayload(
                send_id=send.id,
                reader_id=reader_id,
                list_id=reading_list.id,
                name=reading_list.name,
                books=items,
            )
            queued += await enqueue(
                session, READING_LIST, reader_id=reader_id, payload=payload, now=now
            )
        send.sent_at = now
        send.recipients = len(readers)
    await session.flush()
    return queued
