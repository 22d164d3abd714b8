"""The weekly new-book list: new arrivals of the last days (services.catalogue.arrivals: the
same rule as the statistics' 新书, counted from midnight so that today's imports are in), ranked
for each reader, queued in the outbox (one message per reader per ISO week, whatever the number
of runs), and the reader's 退订 / 少一点 / subscriptions.

A reader with no history of their own gets the new books their grade borrows most, then the new
books closest to what their grade reads; without a grade (or a grade that has borrowed nothing)
the new books closest to what the school reads. The list is about new books, so no line of it is
ever labelled 全校热门: a new book without a reason of its own is 新到馆."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian
from services.catalogue.arrivals import window_start
from services.circulation import title_hold_refusal
from services.errors import ServiceError
from services.notifications import enqueue
from services.readers.reach import bound
from services.recommend.engine import Context, Reason, Recommender, Scored
from services.recommend.kinds import WEEKLY_NEW_BOOKS, BookItem, WeeklyPayload
from services.recommend.model import ReaderInfo, context_for, new_records
from storage.models import (
    Copy,
    Loan,
    PastLoan,
    Reader,
    ReadingListItem,
    Record,
    Role,
    Subscription,
    WeeklyPreference,
    utcnow,
)

WEEKLY_KIND = WEEKLY_NEW_BOOKS.name
MAX_BOOKS = 5
MIN_BOOKS = 1
MAX_TOPIC_CHARS = 30
# A reader with no loans is matched against the books their grade borrows most.
GRADE_TASTE_BOOKS = 30


@dataclass(frozen=True, slots=True)
class WeeklyBook:
    record_pk: int
    title: str
    authors: str | None
    reasons: tuple[dict[str, object], ...]


@dataclass(frozen=True, slots=True)
class WeeklyMessage:
    reader: ReaderInfo
    week: str
    books: list[WeeklyBook]

    def payload(self) -> WeeklyPayload:
        books = [
            BookItem(
                record_pk=b.record_pk, title=b.title, authors=b.authors, reasons=list(b.reasons)
            )
            for b in self.books
        ]
        return WeeklyPayload(reader_id=self.reader.reader_id, week=self.week, books=books)


def iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


async def _recipients(session: AsyncSession) -> list[tuple[ReaderInfo, int]]:
    """Bound, active students and teachers who did not unsubscribe, with their list size."""
    rows = await session.execute(
        select(
            Reader.id,
            Reader.card_no,
            Reader.name,
            Reader.grade,
            Reader.class_name,
            WeeklyPreference.max_books,
        )
        .outerjoin(WeeklyPreference, WeeklyPreference.reader_id == Reader.id)
        .where(
            Reader.active.is_(True),
            bound(Reader.id),
            Reader.role.in_((Role.STUDENT.value, Role.TEACHER.value)),
            func.coalesce(WeeklyPreference.unsubscribed, False).is_(False),
        )
        .order_by(Reader.id)
    )
    return [(ReaderInfo(*row[:5]), row[5] or MAX_BOOKS) for row in rows]


async def _picks(session: AsyncSession, pks: list[int]) -> dict[int, str]:
    """The librarian's blurbs for new books (from any themed list): they go first."""
    if not pks:
        return {}
    rows = await session.execute(
        select(ReadingListItem.record_pk, ReadingListItem.blurb)
        .where(ReadingListItem.record_pk.in_(pks), ReadingListItem.blurb.is_not(None))
        .order_by(ReadingListItem.position, ReadingListItem.id)
    )
    picks: dict[int, str] = {}
    for pk, blurb in rows:
        picks.setdefault(pk, blurb)
    return picks


async def borrowed_by(session: AsyncSession, grade: str | None) -> Counter[int]:
    """Loans (live and imported) per record by the readers of ``grade`` (``None``: everyone)."""
    counts: Counter[int] = Counter()
    live = (
        select(Copy.record_pk, func.count(Loan.id))
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Reader, Reader.id == Loan.reader_id)
        .group_by(Copy.record_pk)
    )
    past = (
        select(PastLoan.record_pk, func.count(PastLoan.id))
        .join(Reader, Reader.id == PastLoan.reader_id)
        .group_by(PastLoan.record_pk)
    )
    if grade is not None:
        live, past = live.where(Reader.grade == grade), past.where(Reader.grade == grade)
    counts.update(dict((await session.execute(live)).tuples().all()))
    counts.update(dict((await session.execute(past)).tuples().all()))
    return counts


def _weekly_reason(reason: Reason, *, cold: bool, taste: str | None) -> Reason:
    """In the weekly list: a cold reader's "because you borrowed" is their grade's taste (or,
    without one, just a new book), and no new book is called 全校热门."""
    if cold and (reason.kind == "borrowed" or (taste and reason.kind in ("popular", "fresh"))):
        return Reason("grade_taste", group=taste) if taste else Reason("fresh")
    if reason.kind == "popular":
        return Reason("fresh")
    return reason


def _book(model: Recommender, scored: Scored, extra: Reason | None = None) -> WeeklyBook:
    item = model.items[scored.pk]
    reasons = ((extra,) if extra else ()) + scored.reasons
    return WeeklyBook(item.pk, item.label, item.authors, tuple(r.as_dict() for r in reasons))


async def weekly_for(
    session: AsyncSession,
    model: Recommender,
    reader: ReaderInfo,
    *,
    new: list[int],
    picks: dict[int, str],
    size: int,
    now: datetime,
    tastes: dict[str | None, Counter[int]] | None = None,
) -> list[WeeklyBook]:
    """One reader's list: the librarian's picks first, then the new books ranked for them.
    ``tastes`` keeps each grade's (and the school's) loan counts for the next reader."""
    tastes = {} if tastes is None else tastes

    async def loans_of(grade: str | None) -> Counter[int]:
        if grade not in tastes:
            tastes[grade] = await borrowed_by(session, grade)
        return tastes[grade]

    ctx = await context_for(session, model, reader, now=now)
    cold = not ctx.history
    grade_taste: str | None = None
    grade_loans: Counter[int] = Counter()
    if cold:
        # The grade's reading stands in for the reader's own; failing that, the school's. The
        # new books themselves stay out of it (a book in the history is never offered).
        fresh = set(new)
        taste: list[int] = []
        if reader.grade:
            counts = await loans_of(reader.grade)
            taste = [pk for pk, _ in counts.most_common() if pk not in fresh]
            grade_loans = Counter({pk: n for pk, n in counts.items() if pk in fresh})
        if taste or grade_loans:
            grade_taste = reader.grade
        else:
            everyone = await loans_of(None)
            taste = [pk for pk, _ in everyone.most_common() if pk not in fresh]
        taste = taste[:GRADE_TASTE_BOOKS]
        ctx = Context(
            history=taste,
            class_name=ctx.class_name,
            grade=ctx.grade,
            topics=ctx.topics,
            class_counts=ctx.class_counts,
            grade_counts=ctx.grade_counts,
        )
    # Picks are ranked too, so a reader sees the picks closest to them first.
    ranked = model.rank(ctx, n=len(new), reader=reader.reader_id, candidates=new)
    if cold:
        own = set(model.items_of.get(reader.reader_id, []))
        ranked = [s for s in ranked if s.pk not in own]
        # The new books the grade borrows most first; the rest as close to its taste as ranked.
        ranked.sort(key=lambda s: -grade_loans.get(s.pk, 0))
    ranked = [
        Scored(
            s.pk,
            s.score,
            tuple(
                dict.fromkeys(_weekly_reason(r, cold=cold, taste=grade_taste) for r in s.reasons)
            ),
        )
        for s in ranked
    ]
    first = [_book(model, s, Reason("pick", blurb=picks[s.pk])) for s in ranked if s.pk in picks]
    rest = [_book(model, s) for s in ranked if s.pk not in picks]
    return (first + rest)[:size]


async def compose_weekly(
    session: AsyncSession,
    model: Recommender,
    *,
    now: datetime,
    days: int = 7,
    tz: ZoneInfo | None = None,
) -> list[WeeklyMessage]:
    """Every recipient's weekly list (readers with nothing new to read get none): the new
    arrivals since midnight (school time ``tz``) ``days`` days ago, today's included."""
    since = window_start(now, days, tz or ZoneInfo("UTC"))
    new = [pk for pk in await new_records(session, since=since)]
    new = [pk for pk in new if pk in model.items]
    if not new:
        return []
    picks = await _picks(session, new)
    week = iso_week(now)
    messages = []
    tastes: dict[str | None, Counter[int]] = {}
    for reader, size in await _recipients(session):
        books = await weekly_for(
            session, model, reader, new=new, picks=picks, size=size, now=now, tastes=tastes
        )
        if books:
            messages.append(WeeklyMessage(reader, week, books))
    return messages


async def enqueue_weekly(
    session: AsyncSession,
    actor: Actor | None,
    model: Recommender,
    *,
    now: datetime | None = None,
    days: int = 7,
    tz: ZoneInfo | None = None,
) -> int:
    """Queue this week's lists in the outbox; returns how many were newly queued. A message to
    every reader: the server's weekly job (or the librarian) sends it."""
    require_librarian(actor)
    now = now or utcnow()
    queued = 0
    messages = await compose_weekly(session, model, now=now, days=days, tz=tz)
    # 预约 N only where place_hold would take it: a new book on the shelf is taken, not reserved.
    no_reserve: dict[int, str | None] = {}
    for pk in {book.record_pk for message in messages for book in message.books}:
        refused = await title_hold_refusal(session, await session.get_one(Record, pk))
        no_reserve[pk] = refused.key.rpartition(".")[2] if refused is not None else None
    for message in messages:
        payload = message.payload()
        for item in payload.books:
            item.no_reserve = no_reserve.get(item.record_pk)
        queued += await enqueue(
            session,
            WEEKLY_NEW_BOOKS,
            reader_id=message.reader.reader_id,
            payload=payload,
            now=now,
        )
    return queued


# -- the reader's choices -----------------------------------------------------------------------


async def _preference(session: AsyncSession, reader_id: int) -> WeeklyPreference:
    values = {"reader_id": reader_id, "unsubscribed": False, "max_books": MAX_BOOKS}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(WeeklyPreference).values(**values, updated_at=utcnow()).on_conflict_do_nothing()
    )
    return await session.get_one(WeeklyPreference, reader_id, with_for_update=True)


async def unsubscribe_weekly(session: AsyncSession, reader_id: int) -> None:
    pref = await _preference(session, reader_id)
    pref.unsubscribed = True
    await session.flush()


async def resubscribe_weekly(session: AsyncSession, reader_id: int) -> bool:
    """Start the weekly list again; returns True when it had been stopped."""
    pref = await _preference(session, reader_id)
    was = pref.unsubscribed
    pref.unsubscribed = False
    await session.flush()
    return was


async def fewer_books(session: AsyncSession, reader_id: int) -> int:
    """少一点: halve the list (at least one book); returns the new size."""
    pref = await _preference(session, reader_id)
    pref.max_books = max(MIN_BOOKS, pref.max_books // 2)
    await session.flush()
    return pref.max_books


async def subscribe_topic(session: AsyncSession, reader_id: int, topic: str) -> bool:
    """Follow a subject or author; returns False when already followed."""
    topic = " ".join(topic.split())
    if len(topic) > MAX_TOPIC_CHARS:
        raise ServiceError("recommend.subscribe_too_long", limit=MAX_TOPIC_CHARS)
    exists = await session.scalar(
        select(Subscription.id).where(
            Subscription.reader_id == reader_id, Subscription.topic == topic
        )
    )
    if exists:
        return False
    session.add(Subscription(reader_id=reader_id, topic=topic))
    await session.flush()
    return True


async def unsubscribe_topic(session: AsyncSession, reader_id: int, topic: str) -> bool:
    result = await session.execute(
        delete(Subscription).where(
            Subscription.reader_id == reader_id, Subscription.topic == " ".join(topic.split())
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def topics_of(session: AsyncSession, reader_id: int) -> list[str]:
    rows = await session.scalars(
        select(Subscription.topic)
        .where(Subscription.reader_id == reader_id)
        .order_by(Subscription.id)
    )
    return list(rows)
