"""The web channel's sign-in and sessions: a binding code typed into the school's chat page
makes (or keeps) the reader's web endpoint and opens a long-lived session on that browser.

Only a hash of the session's token is stored. A session holds while it is not revoked, was used
within the school's number of days, and the endpoint it was opened on (or the one a later
sign-in of the same reader put in its place) is still bound: /unbind, or a librarian removing
the endpoint, ends every session on it at once. Sign-in refusals are counted by the address
the request came from, under the same caps as /bind."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import (
    Actor,
    require_librarian,
    require_reader,
    require_self_or_librarian,
)
from services.audit import actor_for, record_audit
from services.circulation.common import reader_by_card
from services.errors import ServiceError
from services.readers.binding import BindLimits, bind, normalise_code
from storage.models import (
    BindingCode,
    Channel,
    Endpoint,
    Reader,
    Relation,
    WebConversation,
    WebSession,
    utcnow,
)

# How often a session's last use is written down: the idle limit counts in days.
TOUCH_EVERY = timedelta(minutes=5)


_own_web = (Endpoint.channel == Channel.WEB.value) & (Endpoint.relation == Relation.SELF.value)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def chat_of(conversation_id: int) -> int:
    """The chat (and user) id a web conversation's updates carry: negative, where Telegram has
    only groups and channels, so that a message meant for a Telegram chat can never land in a
    web conversation (and the other way round)."""
    return -conversation_id


def address_of(conversation_id: int) -> str:
    """The web endpoint's address: its conversation's chat id."""
    return str(chat_of(conversation_id))


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str  # for the cookie; never stored
    csrf: str
    conversation_id: int
    reader: Actor


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused code; ``flood`` when this refusal brought the school's refusals to the cap
    (the librarians are told, as for /bind)."""

    flood: int | None = None


@dataclass(frozen=True, slots=True)
class Current:
    """The session a request's cookie names, still valid."""

    session_id: int
    conversation_id: int
    reader_id: int
    csrf: str
    name: str
    last_seen: datetime

    def stale(self, now: datetime) -> bool:
        """Its last use is worth writing down again (once in a while, not every request)."""
        return now - self.last_seen > TOUCH_EVERY


async def sign_in(
    session: AsyncSession,
    *,
    code: str,
    address: str,
    user_agent: str = "",
    limits: BindLimits | None = None,
    now: datetime | None = None,
) -> SignedIn | Refused:
    """A session for the reader whose code this is, or Refused (counted for ``address``: the
    same answer for every reason). ServiceError over a cap."""
    now = now or utcnow()
    # The endpoint this reader's browsers hang on until now, if any (their sessions move to the
    # new one: a second phone does not sign out the first).
    before = await session.scalar(
        select(Endpoint.id)
        .join(BindingCode, BindingCode.reader_id == Endpoint.reader_id)
        .where(BindingCode.code == normalise_code(code), _own_web)
    )
    # Bound under a placeholder first: the conversation (whose id is the address) is known
    # only once the code has named its reader.
    placeholder = f"new-{secrets.token_hex(8)}"
    outcome = await bind(
        session,
        code=code,
        channel=Channel.WEB,
        address=placeholder,
        guesser=address,
        limits=limits or BindLimits(),
        now=now,
    )
    if outcome.reader is None or outcome.reader.reader_id is None:
        return Refused(outcome.flood)
    reader_id = outcome.reader.reader_id
    conversation = await session.scalar(
        select(WebConversation).where(WebConversation.reader_id == reader_id)
    )
    if conversation is None:
        conversation = WebConversation(reader_id=reader_id, created_at=now, seq=0)
        session.add(conversation)
        await session.flush()
    endpoint = await session.scalar(
        select(Endpoint).where(_own_web, Endpoint.address == placeholder)
    )
    if endpoint is None:  # pragma: no cover - bind just made it
        return Refused()
    endpoint.address = address_of(conversation.id)
    still_open = (WebSession.conversation_id == conversation.id) & WebSession.revoked_at.is_(None)
    # The browsers on the endpoint this one replaces stay signed in; any other open session is
    # of an endpoint unbound since, and ends for good (SQLite may even have handed that
    # endpoint's row id to the new one: ids alone cannot tell).
    others = still_open if before is None else still_open & (WebSession.endpoint_id != before)
    await session.execute(update(WebSession).where(others).values(revoked_at=now))
    if before is not None:
        await session.execute(
            update(WebSession)
            .where(still_open, WebSession.endpoint_id == before)
            .values(endpoint_id=endpoint.id)
        )
    token, csrf = new_token(), new_token()
    session.add(
        WebSession(
            conversation_id=conversation.id,
            endpoint_id=endpoint.id,
            token_hash=token_hash(token),
            csrf=csrf,
            created_at=now,
            last_seen=now,
            user_agent=user_agent[:200],
            address=address[:64],
        )
    )
    await session.flush()
    record_audit(session, actor_for(reader_id), "web_sign_in", {"address": address[:64]})
    return SignedIn(token, csrf, conversation.id, outcome.reader)


async def current(
    session: AsyncSession,
    token: str | None,
    *,
    days: int,
    now: datetime | None = None,
) -> Current | None:
    """The valid session of this token, or None (unknown, revoked, idle too long, unbound)."""
    if not token:
        return None
    now = now or utcnow()
    row = await session.execute(
        select(WebSession, Reader.name, Reader.active)
        .join(Endpoint, Endpoint.id == WebSession.endpoint_id)
        .join(WebConversation, WebConversation.id == WebSession.conversation_id)
        .join(Reader, Reader.id == WebConversation.reader_id)
        .where(
            WebSession.token_hash == token_hash(token),
            WebSession.revoked_at.is_(None),
            WebSession.last_seen > now - timedelta(days=days),
            Endpoint.reader_id == WebConversation.reader_id,
            Endpoint.address == (-WebConversation.id).cast(Endpoint.address.type),
        )
    )
    found = row.first()
    if found is None:
        return None
    web_session, name, active = found
    if not active:
        return None
    conversation = await session.get(WebConversation, web_session.conversation_id)
    if conversation is None:  # pragma: no cover - joined above
        return None
    return Current(
        web_session.id,
        conversation.id,
        conversation.reader_id,
        web_session.csrf,
        name,
        web_session.last_seen,
    )


async def touch(session: AsyncSession, session_id: int, now: datetime) -> None:
    """The session was used now (it stays signed in ``days`` from here)."""
    await session.execute(
        update(WebSession).where(WebSession.id == session_id).values(last_seen=now)
    )


async def end(session: AsyncSession, token: str | None, now: datetime | None = None) -> None:
    """Sign out this browser (a sign-in also ends the session it replaces)."""
    if token:
        await session.execute(
            update(WebSession)
            .where(WebSession.token_hash == token_hash(token), WebSession.revoked_at.is_(None))
            .values(revoked_at=now or utcnow())
        )


@dataclass(frozen=True, slots=True)
class SessionView:
    id: int
    created_at: datetime
    last_seen: datetime
    user_agent: str
    address: str


async def sessions_of(
    session: AsyncSession,
    actor: Actor | None,
    *,
    card_no: str | None = None,
    days: int,
    now: datetime,
) -> tuple[str, list[SessionView]]:
    """The signed-in browsers of the asking reader, or (a librarian's question) of the reader
    with ``card_no``; with that reader's name."""
    me = require_reader(actor)
    reader: Reader | None
    if card_no:
        require_librarian(me)
        reader = await reader_by_card(session, card_no)
    else:
        reader = await session.get(Reader, me.reader_id)
    if reader is None:  # pragma: no cover - a bound actor has a reader
        raise ServiceError("bind.required")
    reader_id = reader.id
    require_self_or_librarian(me, reader_id)
    rows = await session.scalars(
        select(WebSession)
        .join(WebConversation, WebConversation.id == WebSession.conversation_id)
        .join(Endpoint, Endpoint.id == WebSession.endpoint_id)
        .where(
            WebConversation.reader_id == reader_id,
            WebSession.revoked_at.is_(None),
            WebSession.last_seen > now - timedelta(days=days),
        )
        .order_by(WebSession.last_seen.desc())
    )
    views = [SessionView(s.id, s.created_at, s.last_seen, s.user_agent, s.address) for s in rows]
    return reader.name, views


async def revoke(
    session: AsyncSession, actor: Actor | None, session_id: int, *, now: datetime
) -> bool:
    """Sign one browser out (its reader, or a librarian). False when there is no such session
    of someone the actor may act for (the same answer as for one that never existed)."""
    web_session = await session.get(WebSession, session_id)
    if web_session is None or web_session.revoked_at is not None:
        return False
    conversation = await session.get(WebConversation, web_session.conversation_id)
    if conversation is None:
        return False
    try:
        require_self_or_librarian(actor, conversation.reader_id)
    except ServiceError:
        return False
    web_session.revoked_at = now
    await session.flush()
    who = actor.audit_name if actor is not None else "system"
    record_audit(session, who, "web_sign_out", {"reader_id": conversation.reader_id})
    return True


async def forget_old(session: AsyncSession, *, days: int, now: datetime) -> None:
    """Sessions unused or revoked more than ``days`` ago go, and those of unbound endpoints."""
    before = now - timedelta(days=days)
    bound = select(Endpoint.id).where(Endpoint.id == WebSession.endpoint_id).exists()
    await session.execute(
        delete(WebSession).where(
            (WebSession.last_seen < before) | (WebSession.revoked_at < before) | ~bound
        )
    )
