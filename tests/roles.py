"""Every kind of caller a service can have, for the service-level role tests
(tests/integration/test_roles_*.py): each service that changes state or reveals someone else's
data is called directly as each of them, on SQLite and PostgreSQL.

The school: two classes, 初一(1)班 (``CLASS``) and 初一(2)班 (``OTHER_CLASS``); a student of
``CLASS``, a monitor of ``CLASS`` (a student of it), a monitor of ``OTHER_CLASS``, a teacher, a
librarian, a stranger (nobody bound: ``None``) and the server (``Actor.system()``). Two titles
with two copies each are on the shelf.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor, actor_of
from storage.db import Database
from storage.models import ClassMonitor, Copy, Reader, Record

CLASS = "初一(1)班"
OTHER_CLASS = "初一(2)班"


class Who(StrEnum):
    STUDENT = "student"
    MONITOR = "monitor"  # of CLASS
    OTHER_MONITOR = "other_monitor"  # of OTHER_CLASS
    TEACHER = "teacher"
    LIBRARIAN = "librarian"
    STRANGER = "stranger"
    SYSTEM = "system"  # the CLI or a scheduled job


EVERYONE = tuple(Who)
# Cards of the readers behind each role (the stranger and the system have none).
CARDS = {
    Who.STUDENT: "R-S1",
    Who.MONITOR: "R-M1",
    Who.OTHER_MONITOR: "R-M2",
    Who.TEACHER: "R-T1",
    Who.LIBRARIAN: "R-L1",
}
# A second student of CLASS, whose data nobody but the librarian (and, for class lists, the
# class's monitor) may see or change.
CLASSMATE = "R-S2"
BARCODES = ("RB1", "RB2", "RB3", "RB4")


@dataclass(frozen=True)
class RoleWorld:
    actors: dict[Who, Actor | None]
    reader_ids: dict[str, int]
    copy_ids: dict[str, int]
    record_pks: dict[str, int]

    def actor(self, who: Who) -> Actor | None:
        return self.actors[who]


async def role_world(db: Database) -> RoleWorld:
    people = {
        CARDS[Who.STUDENT]: ("学生甲", "student", CLASS),
        CLASSMATE: ("学生乙", "student", CLASS),
        CARDS[Who.MONITOR]: ("班管甲", "student", CLASS),
        CARDS[Who.OTHER_MONITOR]: ("班管乙", "student", OTHER_CLASS),
        CARDS[Who.TEACHER]: ("王老师", "teacher", None),
        CARDS[Who.LIBRARIAN]: ("李老师", "librarian", None),
    }
    reader_ids: dict[str, int] = {}
    copy_ids: dict[str, int] = {}
    record_pks: dict[str, int] = {}
    async with db.transaction() as s:
        for n, (title, barcodes) in enumerate((("红岩", BARCODES[:2]), ("骆驼祥子", BARCODES[2:]))):
            record = Record(record_id=f"ROLE-{n}", title=title, clc="I247")
            s.add(record)
            await s.flush()
            record_pks[title] = record.id
            for barcode in barcodes:
                copy = Copy(barcode=barcode, record_pk=record.id)
                s.add(copy)
                await s.flush()
                copy_ids[barcode] = copy.id
        for card, (name, role, class_name) in people.items():
            reader = Reader(card_no=card, name=name, role=role, class_name=class_name)
            s.add(reader)
            await s.flush()
            reader_ids[card] = reader.id
        s.add(ClassMonitor(class_name=CLASS, reader_id=reader_ids[CARDS[Who.MONITOR]]))
        s.add(ClassMonitor(class_name=OTHER_CLASS, reader_id=reader_ids[CARDS[Who.OTHER_MONITOR]]))
    actors: dict[Who, Actor | None] = {Who.STRANGER: None, Who.SYSTEM: Actor.system()}
    async with db.transaction(read_only=True) as s:
        for who, card in CARDS.items():
            actors[who] = await actor_of(s, reader_ids[card])
    return RoleWorld(actors, reader_ids, copy_ids, record_pks)


async def as_reader(session: AsyncSession, reader_id: int) -> Actor:
    """The reader acting for themselves (their loans, holds and renewals), whether or not their
    card is still active: a stopped card is still told why the rule refuses it."""
    reader = await session.get_one(Reader, reader_id)
    return Actor(
        reader.id, str(reader.role), reader.class_name, card_no=reader.card_no, name=reader.name
    )
