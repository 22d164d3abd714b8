"""The role world itself, and the actor's own rules (services/actor.py), on both databases."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.actor import (
    monitor_or_librarian,
    own_class,
    require_librarian,
    require_monitor,
    require_self_or_librarian,
)
from services.errors import ServiceError
from storage.db import Database
from tests.roles import CARDS, CLASS, CLASSMATE, OTHER_CLASS, Who, role_world

# Who passes each check (everyone else is refused with a ServiceError).
ALLOWED = {
    "librarian": {Who.LIBRARIAN, Who.SYSTEM},
    "monitor of CLASS": {Who.MONITOR},
    "monitor or librarian of CLASS": {Who.MONITOR, Who.LIBRARIAN, Who.SYSTEM},
    "own class": {Who.MONITOR, Who.OTHER_MONITOR},
    "the classmate's data": {Who.LIBRARIAN, Who.SYSTEM},
}


@pytest.mark.parametrize("who", list(Who))
async def test_each_check_lets_in_exactly_its_roles(db: Database, who: Who) -> None:
    world = await role_world(db)
    actor = world.actor(who)
    classmate = world.reader_ids[CLASSMATE]
    checks: dict[str, Callable[[], object]] = {
        "librarian": lambda: require_librarian(actor),
        "monitor of CLASS": lambda: require_monitor(actor, CLASS),
        "monitor or librarian of CLASS": lambda: monitor_or_librarian(actor, CLASS),
        "own class": lambda: own_class(actor),
        "the classmate's data": lambda: require_self_or_librarian(actor, classmate),
    }
    for name, check in checks.items():
        if who in ALLOWED[name]:
            check()
        else:
            with pytest.raises(ServiceError):
                check()


async def test_actors_carry_their_reader(db: Database) -> None:
    world = await role_world(db)
    monitor = world.actor(Who.MONITOR)
    assert monitor is not None and monitor.monitor_of == {CLASS} and monitor.class_name == CLASS
    other = world.actor(Who.OTHER_MONITOR)
    assert other is not None and own_class(other) == OTHER_CLASS
    student = world.actor(Who.STUDENT)
    assert student is not None and student.card_no == CARDS[Who.STUDENT]
    assert not student.is_monitor and student.own_id == world.reader_ids[CARDS[Who.STUDENT]]
    system = world.actor(Who.SYSTEM)
    assert system is not None and system.audit_name == "cli"
    with pytest.raises(ServiceError):
        _ = system.own_id  # the server has no loans of its own
