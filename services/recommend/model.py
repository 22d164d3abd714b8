"""Building the recommender from the database, and asking it about readers.

The model is fitted from the catalogue and every loan (live loans and imported past loans) in one
pass, then answers any number of readers (the CLI's batch mode answers thousands in one process).
Live facts that change by the minute (which copies are on the shelf, what a class borrowed this
month) are read per question, not baked into the model.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, and_, bindparam, cast, literal, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.arrivals import new_title
from services.codes import clean_code
from services.recommend.engine import Context, Item, Recommender, Scored, Weights
from services.titles import book_name
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
# 猜你喜欢 checks the shelf for this many times the books asked for at a time.
SHELF_LOOKAHEAD = 4
SHELF_LOOKUP_MAX = 2000


@dataclass(slots=True)
class ReaderInfo:
    reader_id: int
    card_no: str
    name: str
    grade: str | None
    class_name: str | None


# The statements one answer runs, built once: building a select and its cache key costs more
# than running it (~3-6 ms against ~0.3 ms under load), and one answer runs several.
_READER_COLUMNS = (Reader.id, Reader.card_no, Reader.name, Reader.grade, Reader.class_name)
_READER_BY_ID = select(*_READER_COLUMNS).where(Reader.id == bindparam("reader"))
_READER_BY_CARD = select(*_READER_COLUMNS).where(Reader.card_no == bindparam("card"))
# Everything one answer needs to know about the reader, in one round trip (each costs several
# thread hops on SQLite, and under load a hop is what an answer waits for): the subjects they
# follow (part 0), their past and live loans (1, 2), what their class and grade borrowed lately
# (3; a NULL class or grade matches nobody). Ordered so each part reads in its own order.
_NO_INT = cast(null(), Integer)
_NO_TEXT = cast(null(), String)
_NO_TIME = cast(null(), Loan.lent_at.type)
_TOPICS = select(
    literal(0).label("part"),
    _NO_INT.label("record_pk"),
    Subscription.topic,
    _NO_INT.label("peer"),
    _NO_TEXT.label("class_name"),
    _NO_TEXT.label("grade"),
    _NO_TIME.label("lent_at"),
    Subscription.id.label("seq"),
).where(Subscription.reader_id == bindparam("reader"))
_PAST = select(
    literal(1),
    PastLoan.record_pk,
    _NO_TEXT,
    _NO_INT,
    _NO_TEXT,
    _NO_TEXT,
    PastLoan.lent_at,
    PastLoan.id,
).where(PastLoan.reader_id == bindparam("reader"))
_LIVE = (
    select(literal(2), Copy.record_pk, _NO_TEXT, _NO_INT, _NO_TEXT, _NO_TEXT, Loan.lent_at, Loan.id)
    .join(Loan, Loan.copy_id == Copy.id)
    .where(Loan.reader_id == bindparam("reader"))
)
_PEERS = (
    select(
        literal(3),
        Copy.record_pk,
        _NO_TEXT,
        Loan.reader_id,
        Reader.class_name,
        Reader.grade,
        _NO_TIME,
        _NO_INT,
    )
    .join(Copy, Copy.id == Loan.copy_id)
    .join(Reader, Reader.id == Loan.reader_id)
    .where(
        or_(Reader.class_name == bindparam("klass"), Reader.grade == bindparam("grade")),
        Loan.lent_at >= bindparam("since"),
        Loan.reader_id != bindparam("reader"),
    )
    .distinct()
)
_ALL = union_all(_TOPICS, _PAST, _LIVE, _PEERS).subquery()
_CONTEXT = select(_ALL).order_by(_ALL.c.part, _ALL.c.lent_at, _ALL.c.seq)
# The status is checked in Python, not SQL: SQLite would otherwise walk the status index (most
# copies are on the shelf) instead of looking up these few records.
_COPIES_OF = select(Copy.record_pk, Copy.status).where(
    Copy.record_pk.in_(bindparam("pks", expanding=True))
)


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
            Record.subtitle,
        ).order_by(Record.id)
    )
    return [
        Item(pk, title, authors, clc, tags, series, record_id, book_name(title, subtitle))
        for pk, title, authors, clc, tags, series, record_id, subtitle in rows
    ]


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
    row = (await session.execute(_READER_BY_ID, {"reader": reader_id})).first()
    return ReaderInfo(*row) if row else None


async def reader_by_card(session: AsyncSession, card_no: str) -> ReaderInfo | None:
    row = (await session.execute(_READER_BY_CARD, {"card": clean_code(card_no)})).first()
    return ReaderInfo(*row) if row else None


async def context_for(
    session: AsyncSession, model: Recommender, reader: ReaderInfo, *, now: datetime | None = None
) -> Context:
    """The reader's own loans (read now: the model may be older than their last loan), the
    subjects they follow, and what their class and grade borrowed in the last month."""
    params = {
        "reader": reader.reader_id,
        "klass": reader.class_name,
        "grade": reader.grade,
        "since": (now or utcnow()) - PEER_WINDOW,
    }
    topics: list[str] = []
    history: list[int] = []
    klass: Counter[int] = Counter()
    grade: Counter[int] = Counter()
    for part, record_pk, topic, _, class_name, grade_name, _, _ in await session.execute(
        _CONTEXT, params
    ):
        if part == 0:
            topics.append(topic)
        elif part in (1, 2):
            history.append(record_pk)
        else:
            if reader.class_name and class_name == reader.class_name:
                klass[record_pk] += 1
            if reader.grade and grade_name == reader.grade:
                grade[record_pk] += 1
    return Context(
        history=list(dict.fromkeys(history)),
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


async def on_shelf_among(session: AsyncSession, pks: Sequence[int]) -> set[int]:
    """Which of ``pks`` have a copy on the shelf now."""
    if not pks:
        return set()
    rows = await session.execute(_COPIES_OF, {"pks": list(pks)})
    return {pk for pk, status in rows if status == CopyStatus.ON_SHELF.value}


async def new_records(session: AsyncSession, *, since: datetime) -> list[int]:
    """New arrivals since ``since`` (services.catalogue.arrivals: the statistics' 新书 rule, with
    no end, so whatever was imported after ``since`` is in) that can be lent (a copy not lost or
    withdrawn)."""
    gone = (CopyStatus.LOST.value, CopyStatus.WITHDRAWN.value)
    rows = await session.scalars(
        select(Record.id)
        .join(Copy, and_(Copy.record_pk == Record.id, Copy.status.not_in(gone)))
        .where(new_title(since))
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
    """猜你喜欢: the whole collection, on the shelf now, never a book the reader borrowed.

    ``shelf`` is every record on the shelf, for a caller answering many readers at once (the
    CLI); without it only the head of the ranking is looked up, a few times more books than
    asked for, further down only if too few of them are on the shelf."""
    ctx = await context_for(session, model, reader, now=now)
    ranking = model.ranking(ctx, reader=reader.reader_id, n=n)
    if shelf is not None:
        return ranking.scored(ranking.best(n, shelf.__contains__))
    k = max(n, 1) * SHELF_LOOKAHEAD
    while True:
        if k > SHELF_LOOKUP_MAX:
            # Most of the head is out: the whole shelf in one query beats ever longer IN lists.
            everything = await on_shelf_records(session)
            return ranking.scored(ranking.best(n, everything.__contains__))
        head = ranking.head(k)
        there = await on_shelf_among(session, head)
        chosen = model.one_per_name(pk for pk in head if pk in there)[:n]
        if len(chosen) >= n or len(head) < k:
            return ranking.scored(chosen)
        k *= SHELF_LOOKAHEAD


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
    return [model.items[s.pk].label for s in scored]
