"""Readers and their Telegram bindings: single-use codes, bind, unbind, lookup."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, actor_for_telegram, actor_of
from services.audit import actor_for, record_audit
from services.codes import clean_code
from services.errors import ServiceError
from services.policy import LoanPolicy
from services.scopes import resolve_class
from storage.models import (
    BindAttempt,
    BindingCode,
    Reader,
    Role,
    TelegramBinding,
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
    """Refused codes allowed per Telegram user, and across the bot, per window. Codes have
    31^8 possible values: with these caps guessing one takes longer than any code lives."""

    per_user: int = 5
    across_bot: int = 50
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class BindOutcome:
    """``reader`` when bound; else ``refused`` (a catalogue key), the attempt recorded."""

    reader: Actor | None = None
    refused: str | None = None
    # Another Telegram account held this card until now: its chat is told.
    previous_chat_id: int | None = None
    # This refusal made the refused attempts across the bot reach the cap: alert the librarians.
    flood: int | None = None


async def bind(
    session: AsyncSession,
    *,
    code: str,
    telegram_user_id: int,
    chat_id: int,
    limits: BindLimits = BindLimits(),
    now: datetime | None = None,
) -> BindOutcome:
    """Bind with a single-use code. Unknown, used and expired codes (and codes of a card no longer
    in use) get one answer, so a guesser learns nothing, and count against the caps; over a cap,
    no code is even looked at (ServiceError)."""
    now = now or utcnow()
    since = now - limits.window
    failures = select(func.count(BindAttempt.id)).where(BindAttempt.at > since)
    mine = await session.scalar(failures.where(BindAttempt.telegram_user_id == telegram_user_id))
    if (mine or 0) >= limits.per_user:
        raise ServiceError("binding.too_many")
    if (await session.scalar(failures) or 0) >= limits.across_bot:
        raise ServiceError("binding.busy")
    row = await session.scalar(
        select(BindingCode).where(BindingCode.code == normalise_code(code)).with_for_update()
    )
    reader = await session.get(Reader, row.reader_id) if row is not None else None
    if row is None or reader is None or row.used_at is not None or row.expires_at <= now:
        return await _refused(session, telegram_user_id, failures, limits, now)
    if not reader.active:
        return await _refused(session, telegram_user_id, failures, limits, now)
    row.used_at = now
    previous = await session.scalar(
        select(TelegramBinding.chat_id).where(
            TelegramBinding.reader_id == reader.id,
            TelegramBinding.telegram_user_id != telegram_user_id,
        )
    )
    # A new binding replaces the reader's old one, and this Telegram user's old one.
    await session.execute(
        delete(TelegramBinding).where(
            (TelegramBinding.reader_id == reader.id)
            | (TelegramBinding.telegram_user_id == telegram_user_id)
        )
    )
    session.add(
        TelegramBinding(
            reader_id=reader.id, telegram_user_id=telegram_user_id, chat_id=chat_id, bound_at=now
        )
    )
    await session.flush()
    detail = {"telegram_user_id": telegram_user_id, "moved": previous is not None}
    record_audit(session, actor_for(reader.id), "bind", detail)
    return BindOutcome(reader=await actor_of(session, reader.id), previous_chat_id=previous)


async def _refused(
    session: AsyncSession,
    telegram_user_id: int,
    failures: Select[tuple[int]],
    limits: BindLimits,
    now: datetime,
) -> BindOutcome:
    session.add(BindAttempt(telegram_user_id=telegram_user_id, at=now))
    await session.flush()
    total = await session.scalar(failures) or 0
    flood = total if total == limits.across_bot else None
    return BindOutcome(refused="binding.invalid", flood=flood)


async def unbind(session: AsyncSession, *, telegram_user_id: int) -> bool:
    binding = await session.scalar(
        select(TelegramBinding).where(TelegramBinding.telegram_user_id == telegram_user_id)
    )
    if binding is None:
        return False
    await session.delete(binding)
    record_audit(session, actor_for(binding.reader_id), "unbind", {})
    return True


async def reader_for_telegram(session: AsyncSession, telegram_user_id: int) -> Actor | None:
    return await actor_for_telegram(session, telegram_user_id)


async def librarian_chats(session: AsyncSession) -> list[int]:
    rows = await session.scalars(
        select(TelegramBinding.chat_id)
        .join(Reader, Reader.id == TelegramBinding.reader_id)
        .where(Reader.role == Role.LIBRARIAN.value, Reader.active.is_(True))
    )
    return list(rows)


async def librarian_user_ids(session: AsyncSession) -> list[int]:
    rows = await session.scalars(
        select(TelegramBinding.telegram_user_id)
        .join(Reader, Reader.id == TelegramBinding.reader_id)
        .where(Reader.role == Role.LIBRARIAN, Reader.active.is_(True))
    )
    return list(rows)
