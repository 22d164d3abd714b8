"""Purchase suggestions (荐购): a reader suggests a title the library does not hold (a held one is
shown where it is instead); the librarian sees them grouped by title with how many readers
asked, marks them bought or declined, and every reader who asked is told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, require_librarian
from services.audit import actor_for, record_audit
from services.catalogue.card import HeldTitle, held_title
from services.errors import ServiceError
from services.notifications import enqueue
from services.suggestion_kinds import SUGGESTION_RESOLVED, SuggestionResolvedPayload
from storage.models import PurchaseSuggestion, utcnow
from storage.models import SuggestionStatus as SuggestionStatus  # the chat's decisions name it

MAX_SUGGESTION_CHARS = 200
MAX_AUTHOR_CHARS = 100
PENDING = (SuggestionStatus.NEW.value, SuggestionStatus.ACCEPTED.value)
# What the librarian may decide.
DECISIONS = (SuggestionStatus.PURCHASED, SuggestionStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class PendingGroup:
    first_id: int  # names the group in a button: the oldest suggestion of this title
    query: str
    readers: int
    first_at: datetime
    # The library holds a title of that name (bought since, or suggested anyway): 馆藏已有.
    held: HeldTitle | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    query: str
    status: SuggestionStatus
    suggestions: int
    notified: int


async def pending_groups(
    session: AsyncSession, actor: Actor | None, *, limit: int | None = None
) -> list[PendingGroup]:
    """Undecided suggestions by title, most asked first, for the librarian (or the server) to
    review. Unbound Telegram users count too."""
    require_librarian(actor)
    askers = func.count(
        distinct(func.coalesce(PurchaseSuggestion.reader_id, -PurchaseSuggestion.telegram_user_id))
    )
    first_at = func.min(PurchaseSuggestion.created_at)
    stmt = (
        select(func.min(PurchaseSuggestion.id), PurchaseSuggestion.query, askers, first_at)
        .where(PurchaseSuggestion.status.in_(PENDING))
        .group_by(PurchaseSuggestion.query)
        .order_by(askers.desc(), first_at, PurchaseSuggestion.query)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = list(await session.execute(stmt))
    return [
        PendingGroup(int(i), q, int(n), at, await held_title(session, q)) for i, q, n, at in rows
    ]


async def resolve(
    session: AsyncSession,
    actor: Actor | None,
    *,
    decision: SuggestionStatus,
    suggestion_id: int | None = None,
    query: str | None = None,
    now: datetime | None = None,
) -> Resolved:
    """Decide every pending suggestion of one title (named by one of its ids or by its text):
    the librarian's (or the server's) decision, told to every reader who asked."""
    actor = require_librarian(actor)
    if decision not in DECISIONS:
        raise ValueError(f"not a decision: {decision}")
    if suggestion_id is not None:
        query = await session.scalar(
            select(PurchaseSuggestion.query).where(PurchaseSuggestion.id == suggestion_id)
        )
    text = (query or "").strip()
    rows = list(
        await session.scalars(
            select(PurchaseSuggestion)
            .where(PurchaseSuggestion.query == text, PurchaseSuggestion.status.in_(PENDING))
            .order_by(PurchaseSuggestion.id)
            .with_for_update()
        )
    )
    if not rows:
        raise ServiceError("stats.suggest.unknown", query=text)
    moment = now or utcnow()
    notified = 0
    told: set[int] = set()
    for row in rows:
        row.status = decision.value
        if row.reader_id is None or row.reader_id in told:
            continue  # an unbound Telegram user: no reader to write to
        told.add(row.reader_id)
        payload = SuggestionResolvedPayload(suggestion_id=row.id, query=text, status=decision)
        notified += await enqueue(
            session, SUGGESTION_RESOLVED, reader_id=row.reader_id, payload=payload, now=moment
        )
    record_audit(
        session,
        actor.audit_name,
        "suggestion_resolve",
        {"query": text, "status": decision.value, "suggestions": len(rows)},
        now=moment,
    )
    await session.flush()
    return Resolved(text, decision, len(rows), notified)


async def suggest_purchase(
    session: AsyncSession,
    *,
    query: str,
    reader_id: int | None,
    telegram_user_id: int | None,
    author: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record a purchase suggestion (荐购); the same reader suggesting the same text counts once.
    ``query`` is the title (suggestions are grouped by it); the author, if given, is its note."""
    text = query.strip()[:MAX_SUGGESTION_CHARS]
    by = (author or "").strip()[:MAX_AUTHOR_CHARS] or None
    if not text:
        raise ServiceError("suggest.empty")
    held = await held_title(session, text)
    if held is not None:  # nothing to buy: the chat shows where it is (handlers/suggest.py)
        raise ServiceError(
            "suggest.held", title=held.title, on_shelf=held.on_shelf, copies=held.copies
        )
    owner = (
        PurchaseSuggestion.reader_id == reader_id
        if reader_id is not None
        else PurchaseSuggestion.telegram_user_id == telegram_user_id
    )
    seen = await session.scalar(
        select(PurchaseSuggestion).where(owner, PurchaseSuggestion.query == text).limit(1)
    )
    if seen is not None:
        if by and not seen.note:  # the author learnt on a second try is kept
            seen.note = by
            await session.flush()
        return False
    session.add(
        PurchaseSuggestion(
            reader_id=reader_id,
            telegram_user_id=telegram_user_id,
            query=text,
            note=by,
            created_at=now or utcnow(),
        )
    )
    record_audit(session, actor_for(reader_id), "suggest", {"query": text}, now=now)
    return True
