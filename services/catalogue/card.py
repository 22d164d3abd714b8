"""What a reader sees of the catalogue: search pages, the book card, a held title by its name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.index import KeyKind
from nlp.normalize import compact
from nlp.search import SearchEngine, SearchResult
from nlp.series import series_neighbours
from services.circulation import COUNTED, queue_place
from services.circulation.holds import HOLD_FACTS, READER_ID, RECORD_PK, refusal_of
from services.corners.requests import CORNER_STATUSES, CornerStage, corner_places
from services.errors import ServiceError
from services.policy import LoanPolicy
from services.titles import book_name
from storage import core
from storage.models import (
    ACTIVE_HOLD_STATUSES,
    Copy,
    CopyStatus,
    Hold,
    HoldStatus,
    Loan,
    Reader,
    Record,
)
from storage.search_tables import KEY_LENGTH, SearchKey

PAGE_SIZE = 10
# Records of one series read to find a card's neighbours (a publisher's 文库 can be large).
SERIES_FETCH = 500


@dataclass(frozen=True, slots=True)
class SeriesLink:
    record_pk: int
    title: str


@dataclass(frozen=True, slots=True)
class BookCard:
    record_pk: int
    record_id: str
    title: str
    subtitle: str | None
    authors: str | None
    publisher: str | None
    pub_year: str | None
    call_number: str | None
    clc: str | None
    location: str | None
    copies: int
    on_shelf: int
    in_corners: int
    waiting: int
    # Classes whose reading corner holds a copy ("在高一(3)班图书角").
    corner_names: tuple[str, ...]
    # The viewing reader's own relation to the title.
    my_hold_id: int | None
    my_hold_status: HoldStatus | None
    my_hold_position: int
    my_hold_ready_until: datetime | None
    my_hold_office: bool
    my_loan_due: datetime | None
    # When every copy is out: the soonest one is due back (None otherwise).
    earliest_due: datetime | None = None
    summary: str | None = None  # 内容简介
    # The volumes before and after this one in its series (None at either end or no series).
    series_previous: SeriesLink | None = None
    series_next: SeriesLink | None = None
    # Why place_hold would refuse the viewing reader (services.circulation.hold_refusal).
    reserve_refusal: ServiceError | None = None
    # Classes whose corner a copy is on its way to (sent, not yet received): not on the shelf.
    corners_bound: tuple[str, ...] = ()

    @property
    def can_reserve(self) -> bool:
        return (
            self.copies > 0
            and self.on_shelf == 0
            and self.my_hold_id is None
            and self.my_loan_due is None
            and self.reserve_refusal is None
        )


def shelf_location(shelf_map: Mapping[str, str], clc: str | None) -> str | None:
    """The longest CLC prefix in the map wins: 'TP3' before 'T'."""
    if not clc:
        return None
    code = clc.strip().upper()
    for length in range(len(code), 0, -1):
        place = shelf_map.get(code[:length])
        if place:
            return place
    return None


async def search_page(
    session: AsyncSession, search: SearchEngine, query: str, page: int = 0
) -> SearchResult:
    page = max(0, page)
    # The engine caps the query length itself.
    return await search.search(session, query, limit=PAGE_SIZE, offset=page * PAGE_SIZE)


def _compact_title(title: str, subtitle: str | None) -> str:
    return compact(f"{title} {subtitle}" if subtitle else title)


async def series_links(
    session: AsyncSession, record: Record
) -> tuple[SeriesLink | None, SeriesLink | None]:
    """The previous and next volume of the record's series (nlp.series says what a volume is).
    The series search key (compact series name, indexed) finds the other records."""
    return await _series_links(session, record.id, record.title, record.subtitle, record.series)


async def _series_links(
    session: AsyncSession, pk: int, title: str, subtitle: str | None, series: str | None
) -> tuple[SeriesLink | None, SeriesLink | None]:
    key = compact(series or "")[:KEY_LENGTH]
    if len(key) < 2:
        return None, None
    rows = list(
        await session.execute(
            select(Record.id, Record.title, Record.subtitle)
            .join(SearchKey, SearchKey.record_pk == Record.id)
            .where(
                SearchKey.kind == KeyKind.SERIES,
                SearchKey.key == key,
                Record.id != pk,
            )
            .order_by(Record.id)
            .limit(SERIES_FETCH)
        )
    )
    # Volumes often share the title and differ in the subtitle (平凡的世界 第二部).
    titles = {pk: book_name(title, subtitle) for pk, title, subtitle in rows}
    found = series_neighbours(
        _compact_title(title, subtitle),
        [(pk, _compact_title(title, subtitle)) for pk, title, subtitle in rows],
    )

    def link(pk: int | None) -> SeriesLink | None:
        return SeriesLink(pk, titles[pk]) if pk is not None else None

    return link(found.previous), link(found.next)


# The whole card but its series links and corner names, in one statement: the record, the
# viewer's active hold and their standing (HOLD_FACTS: what 预约 would say), and the copies.
_records, _copies, _loans = Record.__table__.c, Copy.__table__.c, Loan.__table__.c
_holds, _readers = Hold.__table__.c, Reader.__table__.c
_CARD = (
    select(
        _records.id,
        _records.record_id,
        _records.title,
        _records.subtitle,
        _records.authors,
        _records.publisher,
        _records.pub_date,
        _records.call_number,
        _records.clc,
        _records.series,
        _records.summary,
        _holds.id.label("hold_id"),
        _holds.status.label("hold_status"),
        _holds.ready_until,
        _holds.deliver_to_office,
        _holds.placed_at,
        _readers.role.label("reader_role"),
        _readers.active.label("reader_active"),
        _readers.name.label("reader_name"),
        *HOLD_FACTS,
        select(func.min(_loans.due_at))
        .select_from(Loan.__table__.join(Copy.__table__, _copies.id == _loans.copy_id))
        .where(_copies.record_pk == RECORD_PK, _loans.returned_at.is_(None))
        .scalar_subquery()
        .label("earliest_due"),
        select(func.count(_copies.id))
        .where(
            _copies.record_pk == RECORD_PK,
            _copies.corner_id.is_not(None),
            _copies.status.in_(CORNER_STATUSES),
        )
        .scalar_subquery()
        .label("in_corners"),
    )
    .select_from(
        Record.__table__.outerjoin(
            Hold.__table__,
            and_(
                _holds.record_pk == _records.id,
                _holds.reader_id == READER_ID,
                _holds.status.in_(ACTIVE_HOLD_STATUSES),
            ),
        ).outerjoin(Reader.__table__, _readers.id == READER_ID)
    )
    .where(_records.id == RECORD_PK)
)


async def book_card(
    session: AsyncSession,
    record_pk: int,
    *,
    reader_id: int | None,
    shelf_map: Mapping[str, str],
    policy: LoanPolicy | None = None,
) -> BookCard:
    """With ``policy``, the card also says whether the reader's 预约 would be accepted."""
    row = (
        await core.execute(session, _CARD, {"record_pk": record_pk, "reader_id": reader_id})
    ).first()
    if row is None:
        raise ServiceError("book.not_found")
    title = book_name(row.title, row.subtitle)
    refusal = None
    if reader_id is not None and policy is not None and row.reader_role is not None:
        refusal = refusal_of(
            row,
            active=row.reader_active,
            role=row.reader_role,
            name=row.reader_name,
            title=title,
            policy=policy,
        )
    copies, on_shelf = int(row.holdable or 0), int(row.on_shelf or 0)
    hold_status = HoldStatus(row.hold_status) if row.hold_id is not None else None
    position = 0
    if hold_status == HoldStatus.WAITING:
        position = await queue_place(session, record_pk, row.placed_at, row.hold_id)
    previous, following = (
        await _series_links(session, row.id, row.title, row.subtitle, row.series)
        if row.series
        else (None, None)
    )
    # Copies in a class corner or on their way there (services/corners/requests.py).
    in_corners = int(row.in_corners or 0)
    places = await corner_places(session, record_pk) if in_corners else []
    return BookCard(
        record_pk=row.id,
        record_id=row.record_id,
        title=row.title,
        subtitle=row.subtitle,
        authors=row.authors,
        publisher=row.publisher,
        pub_year=(row.pub_date or "")[:4] or None,
        call_number=row.call_number,
        clc=row.clc,
        location=shelf_location(shelf_map, row.clc or row.call_number),
        copies=copies,
        on_shelf=on_shelf,
        in_corners=in_corners,
        waiting=int(row.waiting or 0),
        corner_names=tuple(p.class_name for p in places if p.stage == CornerStage.IN),
        my_hold_id=row.hold_id,
        my_hold_status=hold_status,
        my_hold_position=position,
        my_hold_ready_until=row.ready_until if hold_status is not None else None,
        my_hold_office=bool(hold_status is not None and row.deliver_to_office),
        my_loan_due=row.borrowed_due,
        earliest_due=row.earliest_due if copies and not on_shelf else None,
        summary=(row.summary or "").strip() or None,
        series_previous=previous,
        series_next=following,
        reserve_refusal=refusal,
        corners_bound=tuple(p.class_name for p in places if p.stage == CornerStage.TO),
    )


@dataclass(frozen=True, slots=True)
class HeldTitle:
    """A title the library already holds, found by the name a reader would suggest it under."""

    record_pk: int
    title: str
    call_number: str | None
    clc: str | None
    on_shelf: int
    copies: int


async def held_title(session: AsyncSession, query: str) -> HeldTitle | None:
    """The held title named exactly so (as the search's title key has it: title, or title and
    subtitle, normalised, 《》 and spaces dropped), with copies that still count; the one with
    most copies on the shelf first. None when the library does not hold it."""
    key = compact(query)[:KEY_LENGTH]
    if not key:
        return None
    on_shelf = func.sum(case((Copy.status == CopyStatus.ON_SHELF.value, 1), else_=0))
    row = (
        await session.execute(
            select(
                Record.id,
                Record.title,
                Record.call_number,
                Record.clc,
                on_shelf,
                func.count(Copy.id),
            )
            .join(SearchKey, SearchKey.record_pk == Record.id)
            .join(Copy, Copy.record_pk == Record.id)
            .where(SearchKey.kind == KeyKind.TITLE, SearchKey.key == key)
            .where(Copy.status.in_(COUNTED))
            .group_by(Record.id, Record.title, Record.call_number, Record.clc)
            .order_by(on_shelf.desc(), Record.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    pk, title, call_number, clc, shelf, copies = row
    return HeldTitle(int(pk), str(title), call_number, clc, int(shelf or 0), int(copies))
