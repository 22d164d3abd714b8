"""What a chat message names besides a search: one of our copies (a barcode), a book whose title
is exactly what was said (谢谢你 is small talk and a title), or a named list — the librarian's
lists (``shuxiang lists``: 中考必读, 高考必读 …) and the works a few words name (四大名著), which
win over the class words of the search (nlp.subjects.CLASS_WORDS: 四大名著 → I242.4)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.index import KeyKind
from nlp.intent import list_name_key, list_query_keys
from nlp.normalize import compact
from nlp.search import WORK_LISTS
from services.actor import Actor
from services.codes import clean_code, may_be_code
from services.readers.binding import reader_for_endpoint
from services.reading_lists import ListEntry, all_lists, entries
from storage.models import (
    Channel,
    ClassMonitor,
    Copy,
    Endpoint,
    Reader,
    Record,
    Relation,
    Role,
)
from storage.search_tables import KEY_LENGTH, SearchKey

# Command menus are Telegram's: the reader's own Telegram endpoint and its chat.
_own_telegram = (Endpoint.channel == Channel.TELEGRAM.value) & (
    Endpoint.relation == Relation.SELF.value
)
_telegram_chat = func.coalesce(Endpoint.chat, Endpoint.address)

MAX_LIST_QUERY = 30  # longer messages are not a list's name
MAX_WORK_EDITIONS = 5  # records shown per work of a built-in list (四大名著: 4 works)
MAX_SAME_TITLE = 3


@dataclass(frozen=True, slots=True)
class NamedList:
    name: str
    books: list[ListEntry]
    list_id: int | None  # None: a built-in list (四大名著)


async def copy_record(session: AsyncSession, text: str) -> int | None:
    """The record of the copy whose barcode this is (a reader who typed or scanned it)."""
    code = clean_code(text)
    if not may_be_code(code) or (code.isdigit() and len(code) < 6):
        return None  # 1984, 2001: years and titles, not barcodes
    copy_pk = await session.scalar(select(Copy.record_pk).where(Copy.barcode == code).limit(1))
    return int(copy_pk) if copy_pk is not None else None


async def same_title(session: AsyncSession, text: str) -> list[tuple[int, str]]:
    """Records titled exactly ``text`` (normalised): 谢谢你, 早安 are books too."""
    key = compact(text)[:KEY_LENGTH]
    if len(key) < 2:
        return []
    rows = await session.execute(
        select(Record.id, Record.title)
        .join(SearchKey, SearchKey.record_pk == Record.id)
        .where(SearchKey.kind == KeyKind.TITLE, SearchKey.key == key)
        .order_by(Record.loan_count.desc(), Record.id)
        .limit(MAX_SAME_TITLE)
    )
    return [(int(pk), title) for pk, title in rows]


async def named_list(session: AsyncSession, text: str) -> NamedList | None:
    """The list this message names, words in any order (名著四大, 中考必读书目); the
    librarian's own list of that name first, then the built-in ones."""
    if len(text) > MAX_LIST_QUERY:
        return None
    key = list_name_key(text)
    if len(key) < 2:
        return None
    for summary in await all_lists(session):
        if summary.count and key in list_query_keys(summary.name):
            books = await entries(session, summary.list_id)
            return NamedList(summary.name, books, summary.list_id)
    for name, works in WORK_LISTS.items():
        if key in list_query_keys(name):
            books = await _works(session, works)
            if books:
                return NamedList(name, books, None)
    return None


async def _works(session: AsyncSession, works: tuple[str, ...]) -> list[ListEntry]:
    """Each work's records (editions), in the list's order, the most borrowed first."""
    books: list[ListEntry] = []
    for work in works:
        rows = await session.execute(
            select(Record.id, Record.title, Record.authors)
            .join(SearchKey, SearchKey.record_pk == Record.id)
            .where(SearchKey.kind == KeyKind.TITLE, SearchKey.key == compact(work))
            .order_by(Record.loan_count.desc(), Record.id)
            .limit(MAX_WORK_EDITIONS)
        )
        books += [ListEntry(int(pk), title, authors, None) for pk, title, authors in rows]
    return books


async def monitor_chats(session: AsyncSession) -> list[int]:
    """The Telegram chats of class monitors who are not librarians: their command menu has the
    corner."""
    rows = await session.scalars(
        select(_telegram_chat)
        .join(Reader, Reader.id == Endpoint.reader_id)
        .join(ClassMonitor, ClassMonitor.reader_id == Reader.id)
        .where(_own_telegram, Reader.role != Role.LIBRARIAN.value, Reader.active.is_(True))
        .distinct()
    )
    return [int(chat) for chat in rows]


async def bound_reader_chat(session: AsyncSession, card_no: str) -> tuple[int, Actor] | None:
    """The chat and current roles of the reader with this card, if bound (their command menu
    changes when they become or stop being a class monitor)."""
    row = (
        await session.execute(
            select(Endpoint.address, _telegram_chat)
            .join(Reader, Reader.id == Endpoint.reader_id)
            .where(_own_telegram, Reader.card_no == clean_code(card_no))
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    reader = await reader_for_endpoint(session, Channel.TELEGRAM, row[0])
    return (int(row[1]), reader) if reader is not None else None
