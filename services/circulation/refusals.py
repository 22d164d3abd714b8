"""Refusals and facts the desk and the lending rules share: who a reader is (名字（班级，证号）),
已借出 with to whom and until when, and a reader at the limit with what they have out. Kept apart
from the desk's read models so lending and holds can use them without importing the desk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian
from services.circulation.common import open_loan_count, overdue_count
from services.errors import ServiceError
from services.i18n import t
from services.policy import LoanPolicy
from services.titles import book_names, record_name
from storage.models import Copy, Loan, Reader, Record, utcnow


@dataclass(frozen=True, slots=True)
class Person:
    reader_id: int
    card_no: str
    name: str
    class_name: str | None
    role: str
    active: bool

    @classmethod
    def of(cls, reader: Reader) -> Person:
        return cls(
            reader.id, reader.card_no, reader.name, reader.class_name, reader.role, reader.active
        )


async def at_loan_limit(session: AsyncSession, reader: Reader, policy: LoanPolicy) -> bool:
    return await open_loan_count(session, reader.id) >= policy.for_role(reader.role).max_loans


async def lend_refusal(
    session: AsyncSession, reader: Reader, policy: LoanPolicy, now: datetime | None = None
) -> ServiceError | None:
    """Why this reader may borrow nothing now (card stopped, a book overdue, at the limit), in
    the order checkout says it; None when they may. Shared by checkout and the desk's buttons,
    so the desk never offers 借出 to a reader checkout would refuse."""
    if not reader.active:
        return ServiceError("reader.inactive", name=reader.name)
    if await overdue_count(session, reader.id, now or utcnow()):
        return ServiceError("loan.has_overdue", name=reader.name)
    limit = policy.for_role(reader.role).max_loans
    if await open_loan_count(session, reader.id) >= limit:
        return await limit_refusal(session, reader, limit, ZoneInfo(policy.timezone))
    return None


async def title_already_out_to(
    session: AsyncSession, reader_id: int, record_pk: int, *, actor: Actor | None
) -> list[str]:
    """Barcodes of the copies of this title the reader has out now: the desk asks before
    lending them a second copy of a title (the librarian's question)."""
    require_librarian(actor)
    rows = await session.scalars(
        select(Copy.barcode)
        .join(Loan, Loan.copy_id == Copy.id)
        .where(Copy.record_pk == record_pk, Loan.reader_id == reader_id, Loan.returned_at.is_(None))
        .order_by(Copy.barcode)
    )
    return list(rows)


def who(person: Person | Reader) -> str:
    """名字（班级，证号 X）: enough for the librarian to find the reader."""
    if person.class_name:
        return t("desk.who", name=person.name, class_name=person.class_name, card_no=person.card_no)
    return t("desk.who_no_class", name=person.name, card_no=person.card_no)


def _day(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d")


async def on_loan_refusal(
    session: AsyncSession, copy: Copy, record: Record, tz: ZoneInfo
) -> ServiceError:
    """已借出, with to whom and until when."""
    row = (
        await session.execute(
            select(Loan.due_at, Reader)
            .join(Reader, Reader.id == Loan.reader_id)
            .where(Loan.copy_id == copy.id, Loan.returned_at.is_(None))
        )
    ).first()
    to_whom = ""
    if row is not None:
        due_at, borrower = row
        to_whom = t("desk.to_whom", who=who(borrower), due=_day(due_at, tz))
    return ServiceError(
        "copy.on_loan", barcode=copy.barcode, title=record_name(record), to_whom=to_whom
    )


async def limit_refusal(
    session: AsyncSession, reader: Reader, limit: int, tz: ZoneInfo
) -> ServiceError:
    """At the loan limit: what they have out, and that one must come back first."""
    rows = await session.execute(
        select(Record.id, Loan.due_at)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .where(Loan.reader_id == reader.id, Loan.returned_at.is_(None))
        .order_by(Loan.due_at, Loan.id)
    )
    listed = list(rows)
    names = await book_names(session, (pk for pk, _ in listed))
    books = t("desk.list_separator").join(
        t("desk.limit_book", title=names[pk], due=_day(due_at, tz)) for pk, due_at in listed
    )
    books = t("desk.limit_books", books=books) if books else ""
    return ServiceError("loan.limit_reached", name=reader.name, limit=limit, books=books)
