"""One identity, many endpoints, on both databases: a reader bound on Telegram and on the web is
one reader found by (channel, address) on each; binding on one channel leaves the other alone;
unbinding ends one endpoint; guessing is capped per channel and address; the librarian lists and
revokes a reader's endpoints."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, Channel
from services.errors import ServiceError
from services.policy import LoanPolicy
from services.readers.binding import (
    BindLimits,
    BindOutcome,
    bind,
    endpoints_of,
    issue_codes,
    librarian_accounts,
    reader_for_endpoint,
    revoke_endpoints,
    unbind,
)
from storage.db import Database
from storage.models import AuditEntry, Endpoint, Reader, utcnow
from tests.factories import cli, make_world, sqlite_env, telegram_endpoint
from tests.role_checks import attempt as attempt_as
from tests.roles import CLASSMATE, Who, role_world

READERS = {"S1": ("李明", "student"), "S2": ("王芳", "student"), "L1": ("周老师", "librarian")}
LIMITS = BindLimits(per_user=2, across_bot=50)


async def code_for(db: Database, card: str) -> str:
    async with db.transaction() as s:
        (issued,) = await issue_codes(s, policy=LoanPolicy(), card_nos=[card])
    return issued.code


async def bind_as(
    db: Database, card: str, channel: Channel, address: str, **kw: object
) -> BindOutcome:
    code = await code_for(db, card)
    async with db.transaction() as s:
        return await bind(s, code=code, channel=channel, address=address, **kw)  # type: ignore[arg-type]


async def who(db: Database, channel: Channel, address: str) -> str | None:
    async with db.transaction(read_only=True) as s:
        actor = await reader_for_endpoint(s, channel, address)
    return actor.card_no if actor is not None else None


async def test_one_reader_on_both_channels_and_unbinding_one(db: Database) -> None:
    await make_world(db, readers=READERS)
    tg = await bind_as(db, "S1", Channel.TELEGRAM, "501", chat="501")
    web = await bind_as(db, "S1", Channel.WEB, "acct-1")
    assert tg.reader is not None and web.reader is not None
    assert tg.reader.reader_id == web.reader.reader_id and web.previous is None
    # The same text on another channel is another account.
    assert await who(db, Channel.TELEGRAM, "501") == "S1"
    assert await who(db, Channel.WEB, "acct-1") == "S1"
    assert await who(db, Channel.WEB, "501") is None
    # A second web account takes the card's web endpoint; the Telegram one stays.
    moved = await bind_as(db, "S1", Channel.WEB, "acct-2")
    assert moved.previous == "acct-1" and moved.previous_chat_id is None
    assert await who(db, Channel.WEB, "acct-1") is None
    assert await who(db, Channel.TELEGRAM, "501") == "S1"
    # An address moving to another reader leaves its old one.
    await bind_as(db, "S2", Channel.WEB, "acct-2")
    assert await who(db, Channel.WEB, "acct-2") == "S2"
    async with db.transaction() as s:
        assert await unbind(s, channel=Channel.TELEGRAM, address="501")
        assert not await unbind(s, channel=Channel.TELEGRAM, address="501")
    assert await who(db, Channel.TELEGRAM, "501") is None
    assert await who(db, Channel.WEB, "acct-2") == "S2"


async def test_guessing_is_capped_per_channel_and_address(db: Database) -> None:
    await make_world(db, readers=READERS)
    now = utcnow()
    good = await code_for(db, "S1")

    async def attempt(channel: Channel, address: str, code: str, **kw: object) -> str:
        try:
            async with db.transaction() as s:
                out = await bind(
                    s,
                    code=code,
                    channel=channel,
                    address=address,
                    limits=LIMITS,
                    now=now,
                    **kw,  # type: ignore[arg-type]
                )
        except ServiceError as refused:
            return refused.key
        return out.refused or "bound"

    for n in range(2):
        assert await attempt(Channel.WEB, "acct-9", f"BAD{n}") == "binding.invalid"
    assert await attempt(Channel.WEB, "acct-9", good) == "binding.too_many"
    # The same address on Telegram is someone else; a web visitor counted by another key too.
    assert await attempt(Channel.TELEGRAM, "acct-9", "BAD9") == "binding.invalid"
    for n in range(2):
        assert await attempt(Channel.WEB, f"visitor{n}", f"BAD{n}", guesser="10.0.0.7") == (
            "binding.invalid"
        )
    assert await attempt(Channel.WEB, "visitor3", good, guesser="10.0.0.7") == "binding.too_many"
    assert await attempt(Channel.WEB, "visitor3", good, guesser="10.0.0.8") == "bound"


async def test_the_librarian_lists_and_revokes_endpoints(db: Database) -> None:
    await make_world(db, readers=READERS)
    await bind_as(db, "S1", Channel.TELEGRAM, "601")
    await bind_as(db, "S1", Channel.WEB, "acct-6")
    await bind_as(db, "L1", Channel.WEB, "lib-web")
    async with db.transaction(read_only=True) as s:
        assert await librarian_accounts(s) == {("web", "lib-web")}
        librarian = await reader_for_endpoint(s, Channel.WEB, "lib-web")
        listed = await endpoints_of(s, librarian, "s1")
    assert [(e.channel, e.address) for e in listed] == [("telegram", "601"), ("web", "acct-6")]
    async with db.transaction() as s:
        assert await revoke_endpoints(s, librarian, "S1", channel=Channel.WEB) == 1
    assert await who(db, Channel.WEB, "acct-6") is None
    assert await who(db, Channel.TELEGRAM, "601") == "S1"
    async with db.transaction() as s:
        assert await revoke_endpoints(s, Actor.cli(), "S1") == 1
        audit = list(await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert await who(db, Channel.TELEGRAM, "601") is None
    assert audit.count("revoke_endpoints") == 2


async def test_a_reader_no_longer_active_is_nobody_on_any_channel(db: Database) -> None:
    await make_world(db, readers=READERS)
    await bind_as(db, "S2", Channel.WEB, "acct-7", now=utcnow() - timedelta(minutes=1))
    async with db.transaction() as s:
        await s.execute(update(Reader).where(Reader.card_no == "S2").values(active=False))
    assert await who(db, Channel.WEB, "acct-7") is None


def test_the_librarian_lists_and_revokes_at_the_terminal(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "endpoints.sqlite3"
    shutil.copyfile(sqlite_template, database)

    async def seed() -> None:
        db = Database(f"sqlite+aiosqlite:///{database}")
        try:
            await make_world(db, readers=READERS)
            await bind_as(db, "S1", Channel.TELEGRAM, "701")
            await bind_as(db, "S1", Channel.WEB, "acct-701")
        finally:
            await db.dispose()

    asyncio.run(seed())
    env = sqlite_env(database)
    code, text = cli(["readers", "endpoints", "S1"], env)
    assert code == 0 and "Telegram　701" in text and "网页聊天　acct-701" in text, text
    assert cli(["readers", "revoke", "S1", "--channel", "mail"], env)[0] == 2
    code, text = cli(["readers", "revoke", "S1", "--channel", "web"], env)
    assert code == 0 and "1 个绑定" in text, text
    assert "acct-701" not in cli(["readers", "endpoints", "S1"], env)[1]
    assert cli(["readers", "revoke", "S9"], env)[0] == 1


async def test_only_the_librarian_sees_or_ends_a_readers_endpoints(db: Database) -> None:
    world = await role_world(db)
    async with db.transaction() as s:
        s.add(telegram_endpoint(world.reader_ids[CLASSMATE], 8801))

    async def listed(s: AsyncSession, actor: Actor | None) -> bool:
        return len(await endpoints_of(s, actor, CLASSMATE)) == 1

    async def revoked(s: AsyncSession, actor: Actor | None) -> bool:
        return await revoke_endpoints(s, actor, CLASSMATE) == 1

    for call in (listed, revoked):
        allowed = {who for who in Who if await attempt_as(db, world.actor(who), call)}
        assert allowed == {Who.LIBRARIAN, Who.SYSTEM}, call.__name__


async def test_binding_again_keeps_the_endpoint_and_makes_it_reachable(db: Database) -> None:
    """The same account binding again keeps its endpoint row (what hangs off it, such as a web
    session, survives) and clears an unreachable mark."""
    await make_world(db, readers=READERS)
    await bind_as(db, "S1", Channel.WEB, "acct-8")
    async with db.transaction() as s:
        await s.execute(update(Endpoint).values(unreachable_at=utcnow(), unreachable_reason="x"))
        (first,) = await s.scalars(select(Endpoint.id))
    again = await bind_as(db, "S2", Channel.WEB, "acct-8")  # the account moves to S2's card
    assert again.previous is None
    async with db.transaction(read_only=True) as s:
        (endpoint,) = await s.scalars(select(Endpoint))
    assert endpoint.id == first and endpoint.unreachable_at is None
    assert await who(db, Channel.WEB, "acct-8") == "S2"
