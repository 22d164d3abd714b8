"""Who is asking: one ``Actor`` per update, CLI command, scheduled job or web request.

Resolved once where the request enters (the chat's ReaderMiddleware, a CLI command, a job) and
passed to every service that changes state or shows someone else's data; the service checks it
with the ``require_*`` functions below and refuses with a ServiceError. A handler's filter only
decides which menu a reader sees: no rule lives only there.

- a stranger (not bound): ``None``; services that need someone refuse it;
- a bound reader: student, teacher or librarian, and the classes whose corner they look after;
- the server itself (``Actor.system``): the command line and the scheduler act with the
  librarian's authority, audited as ``cli`` or ``job:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit import actor_for
from services.errors import ServiceError

# Re-exported: the chat names roles and channels through the actor, never through storage.
from storage import core
from storage.models import Channel as Channel
from storage.models import ClassMonitor, Endpoint, Reader, Relation
from storage.models import Role as Role


@dataclass(frozen=True, slots=True)
class Actor:
    reader_id: int | None
    role: str
    class_name: str | None = None
    monitor_of: frozenset[str] = frozenset()
    card_no: str = ""
    name: str = ""
    # How the audit log names a server-side actor (reader_id None).
    system_name: str = "cli"

    @classmethod
    def system(cls, name: str = "cli") -> Actor:
        """The command line at the server (``cli``) or a scheduled job (``job:<id>``)."""
        return cls(None, Role.LIBRARIAN.value, system_name=name)

    @classmethod
    def cli(cls) -> Actor:
        return cls.system("cli")

    @property
    def own_id(self) -> int:
        """The reader's own id, for what only a reader has (their loans, holds, settings)."""
        if self.reader_id is None:
            raise ServiceError("actor.need_binding")
        return self.reader_id

    @property
    def is_librarian(self) -> bool:
        return self.role == Role.LIBRARIAN.value

    @property
    def is_monitor(self) -> bool:
        """Looks after some class's corner (only their own class's counts: ``monitors``)."""
        return bool(self.monitor_of)

    @property
    def audit_name(self) -> str:
        return actor_for(self.reader_id) if self.reader_id is not None else self.system_name

    def monitors(self, class_name: str) -> bool:
        """Monitors act for their own class only, and only while they are students of it."""
        return (
            self.role == Role.STUDENT.value
            and class_name in self.monitor_of
            and self.class_name == class_name
        )


async def _actor(session: AsyncSession, reader: Reader) -> Actor:
    classes = await session.scalars(
        select(ClassMonitor.class_name).where(ClassMonitor.reader_id == reader.id)
    )
    return Actor(
        reader.id,
        str(reader.role),
        reader.class_name,
        frozenset(classes),
        card_no=reader.card_no,
        name=reader.name,
    )


async def actor_of(session: AsyncSession, reader_id: int | None) -> Actor | None:
    """The reader as an actor; None for nobody or a reader no longer active."""
    if reader_id is None:
        return None
    reader = await session.get(Reader, reader_id)
    if reader is None or not reader.active:
        return None
    return await _actor(session, reader)


# Every update asks this: one statement (a row per monitored class), built once, of plain columns.
_readers, _endpoints, _monitors = Reader.__table__.c, Endpoint.__table__.c, ClassMonitor.__table__.c
_BY_ENDPOINT = (
    select(
        _readers.id,
        _readers.role,
        _readers.class_name,
        _readers.card_no,
        _readers.name,
        _monitors.class_name,
    )
    .select_from(Reader.__table__)
    .join(Endpoint.__table__, _endpoints.reader_id == _readers.id)
    .outerjoin(ClassMonitor.__table__, _monitors.reader_id == _readers.id)
    .where(
        _endpoints.channel == bindparam("channel"),
        _endpoints.address == bindparam("address"),
        _endpoints.relation == Relation.SELF.value,
        _readers.active.is_(True),
    )
)


async def actor_for_endpoint(session: AsyncSession, channel: str, address: str) -> Actor | None:
    """The active reader this endpoint is their own (a channel and an address on it: a Telegram
    user id as text, a web account id), or None (a stranger)."""
    rows = (
        await core.execute(session, _BY_ENDPOINT, {"channel": str(channel), "address": address})
    ).all()
    if not rows:
        return None
    reader_id, role, class_name, card_no, name, _ = rows[0]
    return Actor(
        reader_id,
        str(role),
        class_name,
        frozenset(row[5] for row in rows if row[5] is not None),
        card_no=card_no,
        name=name,
    )


async def actor_for_telegram(session: AsyncSession, telegram_user_id: int) -> Actor | None:
    """The active reader bound to this Telegram user, or None (a stranger)."""
    return await actor_for_endpoint(session, Channel.TELEGRAM, str(telegram_user_id))


def require_reader(actor: Actor | None) -> Actor:
    """Someone we know: a bound reader or the server."""
    if actor is None:
        raise ServiceError("actor.need_binding")
    return actor


def require_librarian(actor: Actor | None) -> Actor:
    actor = require_reader(actor)
    if not actor.is_librarian:
        raise ServiceError("actor.librarian_only")
    return actor


def require_monitor(actor: Actor | None, class_name: str) -> Actor:
    actor = require_reader(actor)
    if not actor.monitors(class_name):
        raise ServiceError("actor.monitor_only", class_name=class_name)
    return actor


def monitor_or_librarian(actor: Actor | None, class_name: str) -> Actor:
    """A class's corner or overdue list: its own monitors, or the librarian."""
    if actor is not None and actor.is_librarian:
        return actor
    return require_monitor(actor, class_name)


def own_class(actor: Actor | None) -> str:
    """The class a monitor acts for (a monitor belongs to one class)."""
    actor = require_reader(actor)
    if actor.class_name and actor.monitors(actor.class_name):
        return actor.class_name
    raise ServiceError("actor.not_a_monitor")


def require_self_or_librarian(actor: Actor | None, reader_id: int) -> Actor:
    """A reader's own loans, holds and history: that reader, or the librarian."""
    actor = require_reader(actor)
    if actor.reader_id != reader_id and not actor.is_librarian:
        raise ServiceError("actor.not_yours")
    return actor
