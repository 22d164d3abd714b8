"""The outbox around the kinds: enqueue (inside the event's transaction), claim, record outcomes.

Enqueueing is one ``INSERT … SELECT`` per few thousand rows, deduplicated in SQL (``insert_rows``).
Claiming marks rows 'sending' with a short lease (next_attempt_at = now + lease): a sender killed
mid-batch leaves rows that come due again within the lease (or at once when a sender restarts
alone: ``release_claims``), and several senders on PostgreSQL skip each other's locked rows
(``FOR UPDATE SKIP LOCKED``); SQLite emits no FOR UPDATE and its ``BEGIN IMMEDIATE`` serialises
claims, so one process sends there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.kinds import Kind
from services.notifications.quiet import QuietHours
from storage.models import (
    Channel,
    Endpoint,
    Notification,
    NotificationOptOut,
    OutboxStatus,
    Relation,
    utcnow,
)

P = TypeVar("P", bound=BaseModel)
DEFAULT_LEASE = timedelta(seconds=30)
# Rows per INSERT … SELECT: a few MB of JSON at most.
ROW_CHUNK = 5000
MAX_ATTEMPTS = 8
# A push whose reader has no endpoint on its channel any more (its last_error).
NO_ENDPOINT = "no endpoint"


class _Row(TypedDict):
    kind: str
    reader_id: int
    dedupe_key: str
    payload: dict[str, Any]


def _row(kind: str, reader_id: int, dedupe_key: str, payload: dict[str, Any]) -> _Row:
    return {"kind": kind, "reader_id": reader_id, "dedupe_key": dedupe_key, "payload": payload}


def _rows_source(dialect: str) -> tuple[Any, dict[str, Any]]:
    """The rows, unpacked from one JSON parameter (``rows``) by the database (one bound value,
    not four per row: SQLAlchemy's per-row bind processing was most of a 10,000-row sweep's
    time)."""
    rows = bindparam("rows", type_=Text)
    if dialect == "postgresql":
        src = (
            func.json_to_recordset(sql_cast(rows, JSON))
            .table_valued(
                column("kind", String),
                column("reader_id", Integer),
                column("dedupe_key", String),
                column("payload", JSON),
            )
            .render_derived(name="r", with_types=True)
        )
        return src, {name: src.c[name] for name in ("kind", "reader_id", "dedupe_key", "payload")}
    src = func.json_each(rows).table_valued("value").alias("r")
    fields = {
        name: func.json_extract(src.c.value, f"$.{name}")
        for name in ("kind", "reader_id", "dedupe_key", "payload")
    }
    return src, fields


def _fan_out(reader_id: Any) -> tuple[Any, Any]:
    """The endpoints a push to ``reader_id`` goes to (as a join condition) and the channel of
    each row: every reachable endpoint of the reader's own, once per channel; a reader with none
    reachable still gets one row (on the channel of an unreachable endpoint, else Telegram) which
    the claim ends as failed with the reason, as before there were several channels."""
    endpoint = cast(Table, Endpoint.__table__).alias("e")
    live = cast(Table, Endpoint.__table__).alias("live")
    any_live = exists().where(
        live.c.reader_id == reader_id,
        live.c.relation == Relation.SELF.value,
        live.c.unreachable_at.is_(None),
    )
    on = and_(
        endpoint.c.reader_id == reader_id,
        endpoint.c.relation == Relation.SELF.value,
        or_(endpoint.c.unreachable_at.is_(None), ~any_live),
    )
    channel = func.coalesce(endpoint.c.channel, literal(Channel.TELEGRAM.value, String))
    return (endpoint, on), channel


def _insert_statement(dialect: str) -> Any:
    """The ``INSERT … SELECT`` of :func:`insert_rows`, with the parameters ``rows`` (JSON) and
    ``now``."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, Notification.__table__)
    now = bindparam("now", type_=table.c.created_at.type)
    src, f = _rows_source(dialect)
    (endpoint, on), channel = _fan_out(f["reader_id"])
    queued = table.alias("queued")
    select_rows = select(
        f["kind"],
        f["reader_id"],
        f["dedupe_key"],
        channel,
        f["payload"],
        literal(OutboxStatus.PENDING.value, String),
        literal(0, Integer),
        now,
        now,
    ).where(~exists().where(queued.c.dedupe_key == f["dedupe_key"], queued.c.channel == channel))
    return (
        insert(table)
        .from_select(
            [
                "kind",
                "reader_id",
                "dedupe_key",
                "channel",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            select_rows.select_from(src.outerjoin(endpoint, on)),
        )
        .on_conflict_do_nothing(index_elements=[table.c.dedupe_key, table.c.channel])
        .returning(table.c.dedupe_key)
    )


# Built once: building it (aliases, a table-valued function, their column collections) cost more
# CPU than running it, on every hold placed and every reply that queues a push.
_INSERT_ROWS = {dialect: _insert_statement(dialect) for dialect in ("postgresql", "sqlite")}


async def insert_rows(session: AsyncSession, rows: Sequence[_Row], now: datetime) -> int:
    """Insert outbox rows, one per push and channel of its reader (``_fan_out``), skipping those
    queued before; returns how many pushes were new (a push to two channels counts once).

    One ``INSERT … SELECT`` per chunk: rows queued before are skipped in SQL (``NOT EXISTS``, so
    a sweep run again writes nothing and PostgreSQL spends no sequence values); the unique index
    (dedupe key, channel) still decides under a race (``ON CONFLICT DO NOTHING``)."""
    stmt = _INSERT_ROWS[session.get_bind().dialect.name]
    new: set[str] = set()
    for start in range(0, len(rows), ROW_CHUNK):
        rows_json = json.dumps(rows[start : start + ROW_CHUNK], ensure_ascii=False)
        result = await session.execute(stmt, {"rows": rows_json, "now": now})
        new.update(key for (key,) in result)
    return len(new)


async def enqueue(
    session: AsyncSession,
    kind: Kind[P],
    *,
    reader_id: int,
    payload: P,
    now: datetime | None = None,
    defaults_off: Iterable[str] = (),
) -> bool:
    """Queue one push of ``kind``; False when its dedupe key was queued before or the reader
    switched the kind off."""
    if kind.optional and not await wants(session, reader_id, kind.name, defaults_off):
        return False
    row = _row(kind.name, reader_id, kind.dedupe(payload), kind.dump(payload))
    return await insert_rows(session, [row], now or utcnow()) > 0


async def enqueue_many(
    session: AsyncSession,
    kind: Kind[P],
    items: Iterable[tuple[int, P]],
    *,
    now: datetime | None = None,
) -> int:
    """Queue many pushes of one kind in a few statements (sweeps filter preferences in SQL)."""
    rows = [_row(kind.name, r, kind.dedupe(p), kind.dump(p)) for r, p in items]
    return await insert_rows(session, rows, now or utcnow())


async def enqueue_rows(
    session: AsyncSession,
    kind: Kind[Any],
    rows: Iterable[tuple[int, str, dict[str, Any]]],
    *,
    now: datetime | None = None,
) -> int:
    """Queue many pushes of one kind given as (reader id, dedupe key, payload in its JSON form):
    the bulk sweeps' path, without a pydantic model per row. The caller builds the key with
    ``kind.dedupe`` and the payload as ``kind.dump`` would (tests compare the two)."""
    queued = [_row(kind.name, reader, key, payload) for reader, key, payload in rows]
    return await insert_rows(session, queued, now or utcnow())


async def enqueue_raw(
    session: AsyncSession,
    *,
    kind: str,
    reader_id: int,
    dedupe_key: str,
    payload: dict[str, Any],
    now: datetime | None = None,
) -> bool:
    """The untyped form (services.outbox.enqueue): the kind must still be declared to be sent."""
    row = _row(kind, reader_id, dedupe_key, payload)
    return await insert_rows(session, [row], now or utcnow()) > 0


# -- preferences -------------------------------------------------------------------------------


async def wants(
    session: AsyncSession, reader_id: int, kind: str, defaults_off: Iterable[str] = ()
) -> bool:
    chosen = await session.scalar(
        select(NotificationOptOut.enabled).where(
            NotificationOptOut.reader_id == reader_id, NotificationOptOut.kind == kind
        )
    )
    return bool(chosen) if chosen is not None else kind not in set(defaults_off)


async def preferences(
    session: AsyncSession, reader_id: int, kinds: Iterable[str], defaults_off: Iterable[str] = ()
) -> dict[str, bool]:
    off = set(defaults_off)
    rows = await session.execute(
        select(NotificationOptOut.kind, NotificationOptOut.enabled).where(
            NotificationOptOut.reader_id == reader_id
        )
    )
    chosen = {kind: enabled for kind, enabled in rows}
    return {kind: chosen.get(kind, kind not in off) for kind in kinds}


async def set_preference(
    session: AsyncSession, reader_id: int, kind: str, enabled: bool, now: datetime | None = None
) -> None:
    pref = await session.scalar(
        select(NotificationOptOut).where(
            NotificationOptOut.reader_id == reader_id, NotificationOptOut.kind == kind
        )
    )
    if pref is None:
        session.add(
            NotificationOptOut(
                reader_id=reader_id, kind=kind, enabled=enabled, updated_at=now or utcnow()
            )
        )
    else:
        pref.enabled = enabled
    await session.flush()


# -- sending side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    notification_id: int
    kind: str
    reader_id: int
    # The Telegram chat (0 on other channels, whose destination is ``address``).
    chat_id: int
    payload: dict[str, Any]
    attempts: int
    channel: str = Channel.TELEGRAM.value
    # Where the channel delivers it: the endpoint's chat, else its address.
    address: str = ""
    endpoint_id: int | None = None


async def claim(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    limit: int = 50,
    lease: timedelta = DEFAULT_LEASE,
    quiet: QuietHours | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[Outgoing]:
    """Due notifications, now leased to the caller; nothing during quiet hours."""
    now = now or utcnow()
    if quiet is not None and quiet.active(now):
        return []
    rows = await session.execute(
        select(Notification, Endpoint.id, Endpoint.chat, Endpoint.address, Endpoint.unreachable_at)
        # The reader's own endpoint on the row's channel now: one who bound again since the push
        # was queued still gets it.
        .outerjoin(
            Endpoint,
            and_(
                Endpoint.reader_id == Notification.reader_id,
                Endpoint.channel == Notification.channel,
                Endpoint.relation == Relation.SELF.value,
            ),
        )
        .where(
            Notification.status.in_((OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)),
            Notification.next_attempt_at <= now,
        )
        # A lease run out (or ended) first: a dead sender's messages were next in line; after
        # them, the oldest due.
        .order_by(
            Notification.status != OutboxStatus.SENDING.value,
            Notification.next_attempt_at,
            Notification.id,
        )
        .limit(limit)
        .with_for_update(skip_locked=True, of=Notification)
    )
    claimed = []
    for note, endpoint_id, chat, address, unreachable_at in rows:
        if endpoint_id is None or unreachable_at is not None:
            # Nowhere to send (not bound there any more, or the reader blocked the bot).
            note.status = OutboxStatus.FAILED.value
            note.last_error = "unreachable" if endpoint_id is not None else NO_ENDPOINT
            continue
        if note.attempts >= max_attempts:
            # A lease ran out on the last attempt: the sender died mid-send every time.
            note.status = OutboxStatus.FAILED.value
            note.last_error = (note.last_error or "lease expired")[:500]
            continue
        destination = chat or address
        telegram = note.channel == Channel.TELEGRAM.value
        if telegram and not destination.lstrip("-").isdigit():
            note.status = OutboxStatus.FAILED.value
            note.last_error = "not a Telegram chat"
            continue
        note.status = OutboxStatus.SENDING.value
        note.attempts += 1
        note.next_attempt_at = now + lease
        claimed.append(
            Outgoing(
                note.id,
                note.kind,
                note.reader_id,
                int(destination) if telegram else 0,
                dict(note.payload),
                note.attempts,
                channel=note.channel,
                address=destination,
                endpoint_id=endpoint_id,
            )
        )
    return claimed


async def release_claims(session: AsyncSession, now: datetime) -> int:
    """End every lease now: only for a sender that knows it is the only one alive
    (``Database.role``), so every claim left is a dead sender's. They are claimed again first,
    their lost attempt counted (the send may have gone out before the kill)."""
    result = await session.execute(
        update(Notification)
        .where(Notification.status == OutboxStatus.SENDING.value)
        .values(next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_sent(session: AsyncSession, notification_id: int, now: datetime) -> None:
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(status=OutboxStatus.SENT.value, sent_at=now, last_error=None)
    )


async def mark_retry(
    session: AsyncSession,
    notification_id: int,
    *,
    at: datetime,
    error: str,
    max_attempts: int = MAX_ATTEMPTS,
    count_attempt: bool = True,
) -> bool:
    """Try again at ``at``; past ``max_attempts`` it ends as failed with ``error``. True when
    it will be retried. A 429 is not the message's fault: ``count_attempt=False`` gives the
    attempt back."""
    note = await session.get_one(Notification, notification_id, with_for_update=True)
    note.last_error = error[:500]
    if not count_attempt:
        note.attempts = max(0, note.attempts - 1)
    if note.attempts >= max_attempts:
        note.status = OutboxStatus.FAILED.value
        return False
    note.status = OutboxStatus.PENDING.value
    note.next_attempt_at = at
    return True


async def mark_failed(session: AsyncSession, notification_id: int, *, error: str) -> None:
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(status=OutboxStatus.FAILED.value, last_error=error[:500])
    )


async def mark_unreachable(
    session: AsyncSession,
    notification_id: int,
    reader_id: int,
    *,
    error: str,
    now: datetime,
    channel: str = Channel.TELEGRAM.value,
) -> None:
    """The channel said the reader cannot be reached there (Telegram's 403): this message fails,
    and that endpoint gets no more pushes until they bind it again (the librarian lists them with
    `shuxiang outbox unreachable`); the reader's endpoints on other channels still do."""
    await mark_failed(session, notification_id, error=error)
    await session.execute(
        update(Endpoint)
        .where(
            Endpoint.reader_id == reader_id,
            Endpoint.channel == str(channel),
            Endpoint.relation == Relation.SELF.value,
            Endpoint.unreachable_at.is_(None),
        )
        .values(unreachable_at=now, unreachable_reason=error[:200])
    )
