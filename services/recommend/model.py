"""Building the recommender from the database, and asking it about readers.

The model is fitted from the catalogue and every loan (live loans and imported past loans) in one
pass, then answers any number of readers (the CLI's batch mode answers thousands in one process).
Live facts that change by the minute (which copies are on the shelf, what a class borrowed this
month) are read per question, not baked into the model.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.recommend.engine import Context, Item, Recommender, Scored, Weights
from storage.models import (
    Copy,
    CopyStatus,
    Loan,
    PastLoan,
    Reader,
    Record,
    Subscription,
    utcnow,
)

# 同学在读: what a class and grade borrowed in the last month.
PEER_WINDOW = timedelta(days=30)
# How often the bot refits the model (new records and loans change it slowly).
MODEL_REFRESH_MINUTES = 30


@dataclass(slots=True)
class ReaderInfo:
    reader_id: int
    card_no: str
    name: str
    grade: str | None
    class_name: str | None


async def load_items(session: AsyncSession) -> list[Item]:
    rows = await session.execute(
        select(
            Record.id,
            Record.title,
            Record.authors,
            Record.clc,
            Record.tags,
            Record.series,
            Record.record_id,
        ).order_by(Record.id)
    )
    return [Item(*row) for row in rows]


async def load_histories(session: AsyncSession) -> dict[int, list[int]]:
    """Every reader's borrowed records, oldest first (past loans before live ones)."""
    histories: dict[int, list[int]] = defaultdict(list)
    past = await session.execute(
        select(PastLoan.reader_id, PastLoan.record_pk).order_by(
            PastLoan.reader_id, PastLoan.lent_at, PastLoan.id
        )
    )
    for reader_id, record_pk in past:
        histories[reader_id].append(record_pk)
    live = await session.execute(
        select(Loan.reader_id, Copy.record_pk)
        .join(Copy, Copy.id == Loan.copy_id)
        .order_by(Loan.reader_id, Loan.lent_at, Loan.id)
    )
    for reader_id, record_pk in live:
        histories[reader_id].append(record_pk)
    return histories


async def own_history(session: AsyncSession, reader_id: int) -> list[int]:
    """One reader's borrowed records, read now: the model may be older than their last loan."""
    past = await session.scalars(
        select(PastLoan.record_pk)
        .where(PastLoan.reader_id == reader_id)
        .order_by(PastLoan.lent_at, PastLoan.id)
    )
    live = await session.scalars(
        select(Copy.record_pk)
        .join(Loan, Loan.copy_id == Copy.id)
        .where(Loan.reader_id == reader_id)
        .order_by(Loan.lent_at, Loan.id)
    )
    return list(dict.fromkeys([*past, *live]))


async def fit(session: AsyncSession, *, weights: Weights | None = None) -> Recommender:
    items = await load_items(session)
    histories = await load_histories(session)
    return Recommender(items, histories, weights=weights)


class ModelCache:
    """One fitted model per process. Fitting an 80k-title library takes tens of seconds, so a
    reader never waits for it after the first time: a scheduled job refits it (``refresh``) and
    questions use whatever model is there. Live facts (shelf, own loans, classmates) are read per
    question anyway."""

    def __init__(self) -> None:
        self._model: Recommender | None = None
        self.built_at = 0.0

    async def get(self, session: AsyncSession) -> Recommender:
        # An empty model (fitted before the first import) is refitted at once.
        if self._model is not None and self._model.items:
            return self._model
        return await self.refresh(session)

    async def refresh(self, session: AsyncSession) -> Recommender:
        self._model = model = await fit(session)
        self.built_at = time.monotonic()
        return model


async def reader_info(session: AsyncSession, reader_id: int) -> ReaderInfo | None:
    row = (
        await session.execute(
            select(Reader.id, Reader.card_no, Reader.name, Reader.grade, Reader.class_name).where(
                Reader.id == reader_id
            )
        )
    ).first()
    return ReaderInfo(*row) if row else None


async def reader_by_card(session: AsyncSession, card_no: str) -> ReaderInfo | None:
    row = (
        await session.execute(
            select(Reader.id, Reader.card_no, Reader.name, Reader.grade, Reader.class_name).where(
                Reader.card_no == card_no
            )
        )
    ).first()
    return ReaderInfo(*row) if row else None


async def peer_counts(
    session: AsyncSession, *, column: str, value: str, since: datetime, exclude: int
) -> Counter[int]:
    """How many readers of a class (or grade) borrowed each record since ``since``."""
    group = Reader.class_name if column == "class" else Reader.grade
    rows = await session.execute(
        select(Copy.record_pk, Loan.reader_id)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Reader, Reader.id == Loan.reader_id)
        .where(group == value, Loan.lent_at >= since, Loan.reader_id != exclude)
        .distinct()
    )
    return Counter(record_pk for record_pk, _ in rows)


async def context_for(
    session: AsyncSession, model: Recommender, reader: ReaderInfo, *, now: datetime | None = None
) -> Context:
    since = (now or utcnow()) - PEER_WINDOW
    topics = list(
        await session.scalars(
            select(Subscription.topic)
            .where(Subscription.reader_id == reader.reader_id)
            .order_by(Subscription.id)
        )
    )
    klass: Counter[int] = Counter()
    grade: Counter[int] = Counter()
    if reader.class_name:
        klass = await peer_counts(
            session, column="class", value=reader.class_name, since=since, exclude=reader.reader_id
        )
    if reader.grade:
        grade = await peer_counts(
            session, column="grade", value=reader.grade, since=since, exclude=reader.reader_id
        )
    return Context(
        history=await own_history(session, reader.reader_id),
        class_name=reader.class_name,
        grade=reader.grade,
        topics=topics,
        class_counts=klass,
        grade_counts=grade,
    )


async def on_shelf_records(session: AsyncSession) -> set[int]:
    rows = await session.scalars(
        select(Copy.record_pk).where(Copy.status == CopyStatus.ON_SHELF.value).distinct()
    )
    return set(rows)


async def holdable_records(session: AsyncSession, pks: Collection[int] | None = None) -> set[int]:
    """Records with at least one copy that is neither lost nor withdrawn."""
    gone = (CopyStatus.LOST.value, CopyStatus.WITHDRAWN.value)
    stmt = select(Copy.record_pk).where(Copy.status.not_in(gone)).distinct()
    if pks is not None:
        stmt = stmt.where(Copy.record_pk.in_(list(pks)))
    return set(await session.scalars(stmt))


async def new_records(session: AsyncSession, *, since: datetime) -> list[int]:
    """Records catalogued since ``since`` that can be lent (a copy not lost or withdrawn)."""
    gone = (CopyStatus.LOST.value, CopyStatus.WITHDRAWN.value)
    rows = await session.scalars(
        select(Record.id)
        .join(Copy, and_(Copy.record_pk == Record.id, Copy.status.not_in(gone)))
        .where(Record.catalogued_at >= since)
        .distinct()
        .order_by(Record.id)
    )
    return list(rows)


async def recommend_for(
    session: AsyncSession,
    model: Recommender,
    reader: ReaderInfo,
    *,
    n: int,
    shelf: set[int] | None = None,
    now: datetime | None = None,
) -> list[Scored]:
    """猜你喜欢: the whole collection, on the shelf now, never a book the reader borrowed."""
    ctx = await context_for(session, model, reader, now=now)
    on_shelf = shelf if shelf is not None else await on_shelf_records(session)
    return model.rank(ctx, n=n, reader=reader.reader_id, allowed=on_shelf.__contains__)


async def classmates_reading(
    session: AsyncSession, model: Recommender, reader: ReaderInfo, *, n: int, now: datetime
) -> list[Scored]:
    """同学在读: popular in the reader's class, then grade, this month; not already borrowed."""
    ctx = await context_for(session, model, reader, now=now)
    pool = set(ctx.class_counts) | set(ctx.grade_counts)
    peers_only = Context(
        history=ctx.history,
        class_name=ctx.class_name,
        grade=ctx.grade,
        class_counts=ctx.class_counts,
        grade_counts=ctx.grade_counts,
    )
    ranked = model.rank(peers_only, n=n, reader=reader.reader_id, candidates=pool)
    return [s for s in ranked if any(r.kind in ("class", "grade") for r in s.reasons)]


def titles(model: Recommender, scored: Sequence[Scored]) -> list[str]:
    return [model.items[s.pk].title for s in scored]
