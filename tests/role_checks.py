"""Trying one service call as one role, for the role tests (tests/integration/test_roles_*.py).

Each attempt runs in its own transaction, rolled back afterwards, so every case of a test starts
from the same world. A refused attempt must raise a ServiceError with a real message and leave
every table as it was (compared row by row inside the attempt's transaction, after a flush, so a
change made before the refusal would show)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor
from services.errors import ServiceError
from storage.db import Database
from storage.models import Base

# A case: the call as the given actor; returns True when it did what it is for.
Call = Callable[[AsyncSession, Actor | None], Awaitable[bool]]


class _Undo(Exception):
    """Rolls an attempt back, allowed or not."""


async def snapshot(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as the session sees it."""
    await session.flush()
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in Base.metadata.sorted_tables:
        rows = (await session.execute(select(table))).all()
        tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


async def refusal(db: Database, actor: Actor | None, call: Call) -> str | None:
    """The key of the refusal when ``actor`` was refused (with a message, and nothing changed);
    None when it was let in (and the call did its work). Either way nothing stays."""
    refused_with: str | None = None
    try:
        async with db.transaction() as session:
            before = await snapshot(session)
            try:
                assert await call(session, actor), "let in, but did not do its work"
            except ServiceError as refused:
                assert refused.render() != refused.key  # a real message, not a bare key
                assert await snapshot(session) == before, "refused, but something changed"
                refused_with = refused.key
            raise _Undo
    except _Undo:
        pass
    return refused_with


async def attempt(db: Database, actor: Actor | None, call: Call) -> bool:
    """True if ``actor`` was let in; False if refused (see :func:`refusal`)."""
    return await refusal(db, actor, call) is None
