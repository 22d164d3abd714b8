"""Core statements (of table columns, not ORM entities) run through the session.

The hot paths read plain columns with statements built once: no ORM entities to load, a smaller
statement to compile and look up in the cache. A Core statement does not trigger the session's
autoflush as an ORM query does, so :func:`execute` flushes what is pending first: what a
service changed earlier in the transaction is seen as it would be by an ORM query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Result
from sqlalchemy.ext.asyncio import AsyncSession


async def execute(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Result[Any]:
    sync = session.sync_session
    if sync.autoflush and (sync.new or sync.dirty or sync.deleted):
        await session.flush()
    return await session.execute(statement, params)
