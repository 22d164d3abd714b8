"""Readers and their endpoints: single-use codes, bind, unbind, lookup.

A reader is reached through endpoints: a channel (Telegram, the school's web chat) and an address
on it (a Telegram user id as text, a web account id). Binding a code makes an endpoint of the
reader's own on the channel the code was typed on: a reader has at most one own endpoint per
channel (a new one replaces the old, whose chat is told), an address belongs to one reader (it
leaves its old reader), and endpoints on other channels are untouched. Unbinding deletes the one
endpoint; whatever hangs off it (the web chat's sessions) goes with it by its foreign key
(``ON DELETE CASCADE`` on ``endpoints.id``), in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, actor_for_endpoint, actor_of, require_librarian
from services.audit import actor_for, record_audit
from services.codes import clean_code
from services.errors import ServiceError
from services.policy import LoanPolicy
from services.scopes import resolve_class
from storage.models import (
    BindAttempt,
    BindingCode,
    Channel,
    Endpoint,
    Reader,
    Relation,
    Role,
    utcnow,
)

# No 0/O, 1/I/L: codes are read off paper and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


@dataclass(frozen=True, slots=True)
class IssuedCode:
    card_no: str
    name: str
    class_name: str | None
    code: str
    expires_at: datetime


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    return "".join(ch for ch in text.strip().upper() if ch.isalnum())


async def issue_codes(
    session: AsyncSession,
    *,
    policy: LoanPolicy,
    class_name: str | None = None,
    card_nos: Sequence[str] = (),
    now: datetime | None = None,
) -> list[IssuedCode]:
    """New codes for a class or for given cards; earlier unused codes of those readers lapse."""
    now = now or utcnow()
    if not class_name and not card_nos:
        raise ServiceError("codes.nobody")
    query = select(Reader).where(Reader.active.is_(True))
    if class_name:
        class_name = await resolve_class(session, class_name)
        query = query.where(Reader.class_name == class_name)
    if card_nos:
        # As stored, or in any case or width (services/codes.py).
        wanted = {c.strip() for c in card_nos} | {clean_code(c) for c in card_nos}
        query = query.where(Reader.card_no.in_(wanted))
    readers = list(await session.scalars(query.order_by(Reader.card_no)))
    if card_nos:
        found = {r.card_no for r in readers}
        missing = sorted(c.strip() for c in card_nos if not {c.strip(), clean_code(c)} & found)
        if missing:
            raise ServiceError("reader.not_found", card_no="、".join(missing))
    if not readers:
        raise ServiceError("codes.class_empty", class_name=class_name or "")
    ids = [r.id for r in readers]
    await session.execute(
        update(BindingCode)
        .where(BindingCode.reader_id.in_(ids), BindingCode.used_at.is_(None))
        .where(BindingCode.expires_at > now)
        .values(expires_at=now)
    )
    expires = now + timedelta(days=policy.binding_code_days)
    issued = []
    for reader in readers:
        code = new_code()
        session.add(BindingCode(code=code, reader_id=reader.id, created_at=now, expires_at=expires))
        issued.append(IssuedCode(reader.card_no, reader.name, reader.class_name, code, expires))
    await session.flush()
    record_audit(session, "cli", "issue_codes", {"count": len(issued)}, now=now)
    return issued


@dataclass(frozen=True, slots=True)
class BindLimits:
    """Refused codes allowed per guesser (a channel and an account or address on it), and across
    the bot, per window. Codes have 31^8 possible values: with these caps guessing one takes
    longer than any code lives."""

    per_user: int = 5
    across_bot: int = 50
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class BindOutcome:
    """``reader`` when bound; else ``refused`` (a catalogue key), the attempt recorded."""

    reader: Actor | None = None
    refused: str | None = None
    channel: str = Channel.TELEGRAM.value
    # Another account on the same channel held this card until now: where to tell it.
    previous: str | None = None
    # This refusal made the refused attempts across the bot reach the cap: alert the librarians.
    flood: int | None = None

    @property
    def previous_chat_id(self) -> int | None:
        """The Telegram chat that held this card until now."""
        if self.previous is None or self.channel != Channel.TELEGRAM.value:
            return None
        return int(self.previous)


async def bind(
    session: AsyncSession,
    *,
    code: str,
    address: str,
    channel: Channel | str = Channel.TELEGRAM,
    chat: str | None = None,
    guesser: str | None = None,
    limits: BindLimits = BindLimits(),
    now: datetime | None = None,
) -> BindOutcome:
    """Bind ``address`` on ``channel`` with a single-use code (``chat``: where its messages go,
    when not the address). Unknown, used and expired codes (and codes of a card no longer in use)
    get one answer, so a guesser learns nothing, and count against the caps: per ``guesser`` on
    the channel (the address itself unless given: the web counts a visitor without an account by
    something else) and across the bot; over a cap, no code is even looked at (ServiceError)."""
    now = now or utcnow()
    channel = Channel(channel)
    who = guesser if guesser is not None else address
    since = now - limits.window
    failures = select(func.count(BindAttempt.id)).where(BindAttempt.at > since)
    guesses = await session.scalar(
        failures.where(BindAttempt.channel == channel.value, BindAttempt.address == who)
    )
    if (guesses or 0) >= limits.per_user:
        raise ServiceError("binding.too_many")
    if (await session.scalar(failures) or 0) >= limits.across_bot:
        raise ServiceError("binding.busy")
    row = await session.scalar(
        select(BindingCode).where(BindingCode.code == normalise_code(code)).with_for_update()
    )
    reader = await session.get(Reader, row.reader_id) if row is not None else None
    if row is None or reader is None or row.used_at is not None or row.expires_at <= now:
        return await _refused(session, channel, who, failures, limits, now)
    if not reader.active:
        return await _refused(session, channel, who, failures, limits, now)
    row.used_at = now
    own = (Endpoint.channel == channel.value) & (Endpoint.relation == Relation.SELF.value)
    theirs = await session.scalar(select(Endpoint).where(own, Endpoint.reader_id == reader.id))
    mine = await session.scalar(
        select(Endpoint).where(Endpoint.channel == channel.value, Endpoint.address == address)
    )
    previous = None
    if theirs is not None and theirs is not mine:
        # The card leaves the account that held it on this channel (which is told).
        previous = theirs.chat or theirs.address
        await session.delete(theirs)
        await session.flush()
    if mine is None:
        mine = Endpoint(channel=channel.value, address=address)
        session.add(mine)
    # Kept in place when the address was bound already: what hangs off the endpoint (a web
    # session) survives binding again, and binding again makes it reachable again.
    mine.reader_id = reader.id
    mine.relation = Relation.SELF.value
    mine.chat = chat if chat != address else None
    mine.bound_at = now
    mine.unreachable_at = None
    mine.unreachable_reason = None
    await session.flush()
    detail = {"channel": channel.value, "address": address, "moved": previous is not None}
    record_audit(session, actor_for(reader.id), "bind", detail)
    return BindOutcome(
        reader=await actor_of(session, reader.id), channel=channel.value, previous=previous
    )


async def bind_telegram(
    session: AsyncSession,
    *,
    code: str,
    telegram_user_id: int,
    chat_id: int,
    limits: BindLimits = BindLimits(),
    now: datetime | None = None,
) -> BindOutcome:
    return await bind(
        session,
        code=code,
        channel=Channel.TELEGRAM,
        address=str(telegram_user_id),
        chat=str(chat_id),
        limits=limits,
        now=now,
    )


async def _refused(
    session: AsyncSession,
    channel: Channel,
    guesser: str,
    failures: Select[tuple[int]],
    limits: BindLimits,
    now: datetime,
) -> BindOutcome:
    session.add(BindAttempt(channel=channel.value, address=guesser, at=now))
    await session.flush()
    total = await session.scalar(failures) or 0
    flood = total if total == limits.across_bot else None
    return BindOutcome(refused="binding.invalid", channel=channel.value, flood=flood)


async def unbind(
    session: AsyncSession, *, address: str, channel: Channel | str = Channel.TELEGRAM
) -> bool:
    """The reader behind this address stops being reachable there (their other endpoints stay);
    False when it was not bound."""
    endpoint = await session.scalar(
        select(Endpoint).where(Endpoint.channel == str(channel), Endpoint.address == address)
    )
    if endpoint is None:
        return False
    await session.delete(endpoint)
    await session.flush()
    record_audit(session, actor_for(endpoint.reader_id), "unbind", {"channel": endpoint.channel})
    return True


async def reader_for_endpoint(
    session: AsyncSession, channel: Channel | str, address: str
) -> Actor | None:
    return await actor_for_endpoint(session, channel, address)


async def reader_for_telegram(session: AsyncSession, telegram_user_id: int) -> Actor | None:
    return await actor_for_endpoint(session, Channel.TELEGRAM, str(telegram_user_id))


# -- the librarian's view ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: int
    channel: str
    address: str
    relation: str
    bound_at: datetime
    unreachable_at: datetime | None
    unreachable_reason: str | None


async def endpoints_of(
    session: AsyncSession, actor: Actor | None, card_no: str
) -> list[EndpointView]:
    """Every endpoint of a reader, for the librarian (who deals with lost phones and
    shared computers)."""
    require_librarian(actor)
    reader = await _reader_by_card(session, card_no)
    rows = await session.scalars(
        select(Endpoint)
        .where(Endpoint.reader_id == reader.id)
        .order_by(Endpoint.channel, Endpoint.id)
    )
    return [
        EndpointView(
            e.id,
            e.channel,
            e.address,
            e.relation,
            e.bound_at,
            e.unreachable_at,
            e.unreachable_reason,
        )
        for e in rows
    ]


async def revoke_endpoints(
    session: AsyncSession,
    actor: Actor | None,
    card_no: str,
    *,
    channel: Channel | str | None = None,
) -> int:
    """The librarian ends a reader's endpoints (on one channel, or all); returns how many."""
    actor = require_librarian(actor)
    reader = await _reader_by_card(session, card_no)
    query = select(Endpoint).where(Endpoint.reader_id == reader.id)
    if channel is not None:
        query = query.where(Endpoint.channel == str(channel))
    ended = list(await session.scalars(query))
    for endpoint in ended:
        await session.delete(endpoint)
    await session.flush()
    if ended:
        detail = {"reader_id": reader.id, "channels": sorted({e.channel for e in ended})}
        record_audit(session, actor.audit_name, "revoke_endpoints", detail)
    return len(ended)


async def _reader_by_card(session: AsyncSession, card_no: str) -> Reader:
    wanted = {card_no.strip(), clean_code(card_no)}
    reader = await session.scalar(select(Reader).where(Reader.card_no.in_(wanted)))
    if reader is None:
        raise ServiceError("reader.not_found", card_no=card_no.strip())
    return reader


async def librarian_addresses(
    session: AsyncSession, channel: Channel | str = Channel.TELEGRAM
) -> list[str]:
    """Where the librarians' own endpoints on ``channel`` receive messages."""
    rows = await session.scalars(
        select(func.coalesce(Endpoint.chat, Endpoint.address))
        .join(Reader, Reader.id == Endpoint.reader_id)
        .where(
            Endpoint.channel == str(channel),
            Endpoint.relation == Relation.SELF.value,
            Reader.role == Role.LIBRARIAN.value,
            Reader.active.is_(True),
        )
    )
    return list(rows)


async def librarian_chats(session: AsyncSession) -> list[int]:
    """The librarians' Telegram chats."""
    return [int(chat) for chat in await librarian_addresses(session, Channel.TELEGRAM)]


async def librarian_accounts(session: AsyncSession) -> set[tuple[str, str]]:
    """The librarians' own endpoints, as (channel, address)."""
    rows = await session.execute(
        select(Endpoint.channel, Endpoint.address)
        .join(Reader, Reader.id == Endpoint.reader_id)
        .where(
            Endpoint.relation == Relation.SELF.value,
            Reader.role == Role.LIBRARIAN.value,
            Reader.active.is_(True),
        )
    )
    return {(channel, address) for channel, address in rows}
