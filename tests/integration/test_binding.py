"""Binding codes under guessing, on both databases, with an injected clock: one answer for every
bad code, caps per Telegram user and across the bot that lift when the hour has passed, and the
previous owner of a card that moved to another account named for the bot to tell."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from services.errors import ServiceError
from services.policy import LoanPolicy
from services.readers.binding import BindLimits, BindOutcome, bind_telegram, issue_codes
from storage.db import Database
from storage.models import BindingCode, Reader, utcnow
from tests.factories import make_world

LIMITS = BindLimits(per_user=3, across_bot=5)
READERS = {"S1": ("李明", "student"), "S2": ("王芳", "student"), "S3": ("赵雷", "student")}


async def code_for(db: Database, card: str) -> str:
    async with db.transaction() as s:
        (issued,) = await issue_codes(s, policy=LoanPolicy(), card_nos=[card])
    return issued.code


async def attempt(db: Database, code: str, user: int, **kw: object) -> BindOutcome | str:
    try:
        async with db.transaction() as s:
            return await bind_telegram(
                s,
                code=code,
                telegram_user_id=user,
                chat_id=user,
                limits=LIMITS,
                **kw,  # type: ignore[arg-type]
            )
    except ServiceError as refused:
        return refused.key


async def test_unknown_used_expired_and_inactive_codes_get_one_answer(db: Database) -> None:
    await make_world(db, readers=READERS)
    used = await code_for(db, "S1")
    assert isinstance(await attempt(db, used, 1), BindOutcome)
    expired = await code_for(db, "S2")
    inactive = await code_for(db, "S3")
    async with db.transaction() as s:
        await s.execute(
            update(BindingCode)
            .where(BindingCode.code == expired)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await s.execute(update(Reader).where(Reader.card_no == "S3").values(active=False))
    outcomes = [await attempt(db, c, 2) for c in (used, "ZZZZ2222", expired)]
    outcomes.append(await attempt(db, inactive, 3))
    assert {o.refused for o in outcomes if isinstance(o, BindOutcome)} == {"binding.invalid"}
    assert all(isinstance(o, BindOutcome) and o.reader is None for o in outcomes)


async def test_caps_per_user_and_across_the_bot_lift_after_the_window(db: Database) -> None:
    await make_world(db, readers=READERS)
    now = utcnow()
    good = await code_for(db, "S1")
    for n in range(3):
        assert isinstance(await attempt(db, f"BAD{n}", 10, now=now), BindOutcome)
    # Over the per-user cap even the right code is not looked at.
    assert await attempt(db, good, 10, now=now) == "binding.too_many"
    fourth = await attempt(db, "BAD3", 11, now=now)
    fifth = await attempt(db, "BAD4", 12, now=now)
    assert isinstance(fourth, BindOutcome) and fourth.flood is None
    assert isinstance(fifth, BindOutcome) and fifth.flood == 5  # reached: alert once
    assert await attempt(db, good, 13, now=now) == "binding.busy"
    later = now + LIMITS.window + timedelta(seconds=1)
    bound = await attempt(db, good, 10, now=later)
    assert isinstance(bound, BindOutcome) and bound.reader is not None
    assert bound.reader.card_no == "S1" and bound.previous_chat_id is None


@pytest.mark.parametrize("same_account", [False, True])
async def test_moving_a_card_names_the_previous_account(db: Database, same_account: bool) -> None:
    await make_world(db, readers=READERS)
    assert isinstance(await attempt(db, await code_for(db, "S1"), 20), BindOutcome)
    moved = await attempt(db, await code_for(db, "S1"), 20 if same_account else 21)
    assert isinstance(moved, BindOutcome) and moved.reader is not None
    assert moved.previous_chat_id == (None if same_account else 20)
