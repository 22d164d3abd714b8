"""Who may list and sign out a reader's web browsers (services/web_sessions.py), as every role
of tests/roles.py on SQLite and PostgreSQL: the reader themselves and the librarian (and the
server); anyone else learns nothing and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor
from services.readers.binding import issue_codes
from services.web_sessions import SignedIn, revoke, sessions_of, sign_in
from storage.db import Database
from storage.models import WebSession
from tests.factories import POLICY
from tests.role_checks import Call, attempt, snapshot
from tests.roles import CARDS, EVERYONE, Who, role_world

NOW = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
MAY = {Who.STUDENT, Who.LIBRARIAN, Who.SYSTEM}


async def _signed_in_student(db: Database) -> tuple[dict[Who, Actor | None], int]:
    world = await role_world(db)
    async with db.transaction() as s:
        (code,) = await issue_codes(s, policy=POLICY, card_nos=[CARDS[Who.STUDENT]], now=NOW)
        signed = await sign_in(s, code=code.code, address="198.51.100.1", now=NOW)
        assert isinstance(signed, SignedIn)
        session_id = await s.scalar(select(WebSession.id))
    assert session_id is not None
    return world.actors, session_id


class _Undo(Exception):
    """Rolls a sign-out back, so every role tries the same world."""


async def test_who_may_list_and_sign_out_a_students_browsers(db: Database) -> None:
    actors, session_id = await _signed_in_student(db)

    def listing(who: Who) -> Call:
        async def call(session: AsyncSession, actor: Actor | None) -> bool:
            # The student asks for their own; anyone else names the student's card.
            card = None if who == Who.STUDENT else CARDS[Who.STUDENT]
            _, views = await sessions_of(session, actor, card_no=card, days=180, now=NOW)
            return len(views) == 1

        return call

    listed = {who: await attempt(db, actors[who], listing(who)) for who in EVERYONE}
    assert listed == {who: who in MAY for who in EVERYONE}

    signed_out = {}
    for who in EVERYONE:
        try:
            async with db.transaction() as s:
                before = await snapshot(s)
                signed_out[who] = await revoke(s, actors[who], session_id, now=NOW)
                if not signed_out[who]:  # refused like a session that never existed
                    assert await snapshot(s) == before
                raise _Undo
        except _Undo:
            pass
    assert signed_out == {who: who in MAY for who in EVERYONE}
