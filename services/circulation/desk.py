"""Read models and refusals for the circulation desk: what a scanned copy is doing, who a typed
card number, name or name + class is, the hold shelf, and refusals that say who has the book or
what a reader at their limit has out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian
from services.circulation.common import find_copy_by_barcode, find_reader_by_card
from services.circulation.refusals import Person, lend_refusal
from services.circulation.views import HoldView, holds_of
from services.corners.requests import CornerPlace, corner_place
from services.errors import ServiceError
from services.policy import LoanPolicy
from services.school_order import class_key as school_class_key
from services.titles import book_names, record_name
from storage.models import Copy, CopyStatus, Hold, HoldStatus, Loan, Reader, Record, utcnow

MAX_MATCHES = 10
LIMIT_KEY = "loan.limit_reached"
SHELF_PAGE = 10
# Input vocabulary: a token with one of these (or a digit) names a class: 初二(3)班, 八年级3班.
CLASS_MARKS = "班级年"


@dataclass(frozen=True, slots=True)
class CopyState:
    copy_id: int
    barcode: str
    record_pk: int
    title: str
    call_number: str | None
    status: CopyStatus
    borrower: Person | None = None  # on loan
    due_at: datetime | None = None
    overdue: bool = False
    held_for: Person | None = None  # on the hold shelf
    ready_until: datetime | None = None
    # Why the reader it is kept for may not take it now (at the limit: they return one first).
    held_for_refusal: ServiceError | None = None

    @property
    def held_for_at_limit(self) -> bool:
        return self.held_for_refusal is not None and self.held_for_refusal.key == LIMIT_KEY

    # A copy of a class corner: on its way there, in it, or on its way back (not on the shelf).
    corner: CornerPlace | None = None


@dataclass(frozen=True, slots=True)
class ShelfItem:
    hold_id: int
    copy_id: int
    barcode: str
    title: str
    reader: Person
    ready_until: datetime
    deliver_to_office: bool


@dataclass(frozen=True, slots=True)
class ShelfPage:
    items: list[ShelfItem]
    total: int
    page: int
    pages: int


async def copy_state(
    session: AsyncSession,
    policy: LoanPolicy,
    *,
    actor: Actor | None,
    barcode: str | None = None,
    copy_id: int | None = None,
    now: datetime | None = None,
) -> CopyState | None:
    """A copy by its barcode (any case or width) or id; None when there is no such copy. The
    librarian's view: it names who has the copy or whom it is kept for."""
    require_librarian(actor)
    now = now or utcnow()
    if copy_id is not None:
        copy = await session.get(Copy, copy_id)
    else:
        copy = await find_copy_by_barcode(session, barcode or "")
    if copy is None:
        return None
    record = await session.get_one(Record, copy.record_pk)
    state = CopyState(
        copy.id,
        copy.barcode,
        record.id,
        record_name(record),
        record.call_number,
        CopyStatus(copy.status),
    )
    if copy.status == CopyStatus.ON_LOAN.value:
        row = (
            await session.execute(
                select(Loan, Reader)
                .join(Reader, Reader.id == Loan.reader_id)
                .where(Loan.copy_id == copy.id, Loan.returned_at.is_(None))
            )
        ).first()
        if row is not None:
            loan, borrower = row
            return _replace(
                state, borrower=Person.of(borrower), due_at=loan.due_at, overdue=loan.due_at < now
            )
    if copy.status == CopyStatus.ON_HOLD_SHELF.value:
        kept = (
            await session.execute(
                select(Hold, Reader)
                .join(Reader, Reader.id == Hold.reader_id)
                .where(Hold.copy_id == copy.id, Hold.status == HoldStatus.READY.value)
            )
        ).first()
        if kept is not None:
            hold, reader = kept
            return _replace(
                state,
                held_for=Person.of(reader),
                ready_until=hold.ready_until,
                held_for_refusal=await lend_refusal(session, reader, policy, now),
            )
    place = await corner_place(session, copy)
    if place is not None:
        return _replace(state, corner=place)
    return state


def _replace(state: CopyState, **changes: object) -> CopyState:
    return replace(state, **changes)  # type: ignore[arg-type]


async def card_at_desk(session: AsyncSession, code: str, *, actor: Actor | None) -> Person | None:
    """The reader a scanned or typed card number belongs to (any case or width), or None."""
    require_librarian(actor)
    reader = await find_reader_by_card(session, code)
    return Person.of(reader) if reader is not None else None


async def copy_at_desk(session: AsyncSession, code: str, *, actor: Actor | None) -> int | None:
    """The id of the copy a scanned barcode belongs to (any case or width), or None."""
    require_librarian(actor)
    copy = await find_copy_by_barcode(session, code)
    return copy.id if copy is not None else None


def class_key(text: str) -> str:
    """初二(3)班, 初二（3）班, 初二 3 班 and 初二3班 are one class."""
    return re.sub(r"[\s()]", "", unicodedata.normalize("NFKC", text)).upper()


def _looks_like_class(token: str) -> bool:
    return any(ch.isdigit() or ch in CLASS_MARKS for ch in unicodedata.normalize("NFKC", token))


async def find_readers(session: AsyncSession, query: str, *, actor: Actor | None) -> list[Person]:
    """By card number, name, or name and class in either order (``王小明 初二(3)班``, also
    without the space); at most MAX_MATCHES + 1, so the caller can tell "more than MAX_MATCHES".
    The librarian's look-up: nobody else searches the school's readers."""
    require_librarian(actor)
    text = unicodedata.normalize("NFKC", query).strip()
    if not text:
        return []
    card = await find_reader_by_card(session, text)
    if card is not None:
        return [Person.of(card)]
    tokens = text.split()
    if len(tokens) == 1:
        exact = await _by_name(session, text, like=False)
        found = exact or await _by_name(session, text, like=True)
        if found or not _looks_like_class(text):
            return found
        return await _name_and_class_as_one_word(session, text)
    classes = [tok for tok in tokens if _looks_like_class(tok)]
    names = [tok for tok in tokens if tok not in classes]
    if len(names) != 1 or not classes:
        return []
    wanted = class_key("".join(classes))
    found = await _by_name(session, names[0], like=False)
    if not found:
        found = await _by_name(session, names[0], like=True)
    return [p for p in found if p.class_name and class_key(p.class_name) == wanted]


async def _name_and_class_as_one_word(session: AsyncSession, text: str) -> list[Person]:
    """``王小明初二3班`` or ``初二(3)班王小明``: a name and one of the school's classes typed
    without a space. Only the classes readers are in count, so no name is cut at random."""
    classes = {
        class_key(name)
        for name in await session.scalars(select(Reader.class_name).distinct())
        if name
    }
    for cut in range(1, len(text)):
        for name, klass in ((text[:cut], text[cut:]), (text[cut:], text[:cut])):
            wanted = class_key(klass)
            if wanted not in classes:
                continue
            found = [
                p
                for p in await _by_name(session, name, like=False)
                if p.class_name and class_key(p.class_name) == wanted
            ]
            if found:
                return found
    return []


async def _by_name(session: AsyncSession, name: str, *, like: bool) -> list[Person]:
    condition = Reader.name.contains(name, autoescape=True) if like else Reader.name == name
    rows = await session.scalars(
        select(Reader)
        .where(condition)
        .order_by(Reader.active.desc(), Reader.class_name, Reader.card_no)
        .limit(MAX_MATCHES * 5 if not like else MAX_MATCHES + 1)
    )
    # Active readers first, then classes in the school's order.
    found = sorted(rows, key=lambda r: (not r.active, school_class_key(r.class_name), r.card_no))
    return [Person.of(r) for r in found]


async def hold_shelf(session: AsyncSession, page: int = 0, *, actor: Actor | None) -> ShelfPage:
    """Copies kept for readers, the one whose time runs out first on top (the librarian's)."""
    require_librarian(actor)
    total = int(
        await session.scalar(
            select(func.count(Hold.id)).where(Hold.status == HoldStatus.READY.value)
        )
        or 0
    )
    pages = max(1, -(-total // SHELF_PAGE))
    page = min(max(page, 0), pages - 1)
    rows = await session.execute(
        select(Hold, Copy.barcode, Record.id, Reader)
        .join(Copy, Copy.id == Hold.copy_id)
        .join(Record, Record.id == Hold.record_pk)
        .join(Reader, Reader.id == Hold.reader_id)
        .where(Hold.status == HoldStatus.READY.value)
        .order_by(Hold.ready_until, Hold.id)
        .offset(page * SHELF_PAGE)
        .limit(SHELF_PAGE)
    )
    listed = list(rows)
    names = await book_names(session, (r[2] for r in listed))
    items = [
        ShelfItem(
            hold.id,
            hold.copy_id or 0,
            barcode,
            names[pk],
            Person.of(reader),
            hold.ready_until or hold.placed_at,
            hold.deliver_to_office,
        )
        for hold, barcode, pk, reader in listed
    ]
    return ShelfPage(items, total, page, pages)


@dataclass(frozen=True, slots=True)
class DeskLoan:
    copy_id: int
    barcode: str
    title: str
    due_at: datetime
    overdue: bool


@dataclass(frozen=True, slots=True)
class ReaderDesk:
    person: Person
    loans: list[DeskLoan]
    holds: list[HoldView]
    max_loans: int
    # Why checkout would lend this reader nothing now (services.circulation.lend_refusal).
    cannot_lend: ServiceError | None = None

    @property
    def at_limit(self) -> bool:
        return len(self.loans) >= self.max_loans


async def reader_desk(
    session: AsyncSession,
    reader_id: int,
    policy: LoanPolicy,
    now: datetime | None = None,
    *,
    actor: Actor | None,
) -> ReaderDesk:
    """What the desk needs about one reader: loans (copy ids for 归还), holds, the limit. The
    librarian's view of any reader."""
    require_librarian(actor)
    now = now or utcnow()
    reader = await session.get(Reader, reader_id)
    if reader is None:
        raise ServiceError("desk.reader_gone")
    rows = await session.execute(
        select(Copy.id, Copy.barcode, Record.id, Loan.due_at)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(Loan.reader_id == reader_id, Loan.returned_at.is_(None))
        .order_by(Loan.due_at, Loan.id)
    )
    listed = list(rows)
    names = await book_names(session, (r[2] for r in listed))
    loans = [DeskLoan(cid, bc, names[pk], due, due < now) for cid, bc, pk, due in listed]
    return ReaderDesk(
        Person.of(reader),
        loans,
        await holds_of(session, reader_id, actor=actor),
        policy.for_role(reader.role).max_loans,
        await lend_refusal(session, reader, policy, now),
    )
