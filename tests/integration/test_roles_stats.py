"""Who may see the statistics, 读书之星 and the report, review 荐购, make and send reading lists
and send the weekly 新书推荐: each service called directly as every role of tests/roles.py, on
SQLite and PostgreSQL. Exactly the listed roles are let in; everyone else gets a ServiceError and
nothing changes (tests/role_checks.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor
from services.reading_lists import add_to_list, create_list, schedule_send, send_due_lists
from services.recommend.model import fit
from services.recommend.weekly import enqueue_weekly
from services.stats.figures import Scope, allowed_scope, compute, month_period
from services.stats.stars import announce_stars, monthly_stars
from services.suggestions import SuggestionStatus, pending_groups, resolve, suggest_purchase
from storage.db import Database
from storage.models import AuditEntry, Loan, Reader
from tests.factories import telegram_endpoint
from tests.role_checks import Call, attempt
from tests.roles import CARDS, CLASS, CLASSMATE, OTHER_CLASS, RoleWorld, Who, role_world

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
GRADE = "初一"
LIST = "暑假书单"
WISH = "百年孤独"

LIBRARIAN = {Who.LIBRARIAN, Who.SYSTEM}
CLASS_FIGURES = {Who.MONITOR, *LIBRARIAN}
OTHER_FIGURES = {Who.OTHER_MONITOR, *LIBRARIAN}
MONITORS = {Who.MONITOR, Who.OTHER_MONITOR}


async def school(db: Database) -> RoleWorld:
    """The role world with a grade, a September star (a student's book kept a week), a 荐购, a
    reading list due to go to CLASS, and two bound students of CLASS."""
    world = await role_world(db)
    student = world.reader_ids[CARDS[Who.STUDENT]]
    async with db.transaction() as s:
        await s.execute(
            update(Reader).where(Reader.class_name.in_([CLASS, OTHER_CLASS])).values(grade=GRADE)
        )
        lent = datetime(2026, 9, 2, 1, 0, tzinfo=UTC)
        s.add(
            Loan(
                copy_id=world.copy_ids["RB1"],
                reader_id=student,
                lent_at=lent,
                due_at=lent + timedelta(days=30),
                returned_at=lent + timedelta(days=7),
            )
        )
        for n, card in enumerate((CARDS[Who.STUDENT], CLASSMATE), 1):
            reader_id = world.reader_ids[card]
            s.add(telegram_endpoint(reader_id, 900 + n))
        await suggest_purchase(
            s, query=WISH, reader_id=student, telegram_user_id=None, now=NOW - timedelta(days=1)
        )
        await create_list(s, Actor.system(), LIST)
        await add_to_list(s, Actor.system(), LIST, "RB3", blurb="老舍")
        await schedule_send(s, Actor.system(), LIST, grades=[], classes=[CLASS], at=NOW)
    return world


# What /stats shows each role that may see something when they name no scope.
DEFAULT_SCOPE = {
    Who.LIBRARIAN: Scope.school(),
    Who.SYSTEM: Scope.school(),
    Who.MONITOR: Scope.klass(CLASS),
    Who.OTHER_MONITOR: Scope.klass(OTHER_CLASS),
}


def scope_asked(asked: str, expected: Scope | None) -> Call:
    async def call(s: AsyncSession, a: Actor | None) -> bool:
        return await allowed_scope(s, a, asked) == expected

    return call


def figures(scope: Scope, loans: int = 1) -> Call:
    async def call(s: AsyncSession, a: Actor | None) -> bool:
        stats = await compute(s, a, scope, month_period(2026, 9, TZ), tz=TZ, now=NOW)
        return stats.scope == scope and stats.loans == loans

    return call


async def stars(s: AsyncSession, a: Actor | None) -> bool:
    found = await monthly_stars(s, a, year=2026, month=9, tz=TZ)
    return {star.group for star in found} == {GRADE, CLASS}


async def announce(s: AsyncSession, a: Actor | None) -> bool:
    found = await monthly_stars(s, Actor.system(), year=2026, month=9, tz=TZ)
    queued = await announce_stars(s, a, found, year=2026, month=9, tell_monitors=True)
    return queued == 3  # the student twice (grade, class) and the class's monitor


async def review(s: AsyncSession, a: Actor | None) -> bool:
    return [g.query for g in await pending_groups(s, a)] == [WISH]


async def decide(s: AsyncSession, a: Actor | None) -> bool:
    done = await resolve(s, a, decision=SuggestionStatus.PURCHASED, query=WISH, now=NOW)
    return (done.suggestions, done.notified) == (1, 1)


async def new_list(s: AsyncSession, a: Actor | None) -> bool:
    return (await create_list(s, a, "寒假书单")).name == "寒假书单"


async def add_book(s: AsyncSession, a: Actor | None) -> bool:
    _, _, added = await add_to_list(s, a, LIST, "RB1")
    return added


async def plan_send(s: AsyncSession, a: Actor | None) -> bool:
    send = await schedule_send(s, a, LIST, grades=[], classes=[CLASS], at=NOW)
    return send.audience == {"grades": [], "classes": [CLASS]}


async def send_lists(s: AsyncSession, a: Actor | None) -> bool:
    return await send_due_lists(s, a, now=NOW) == 2  # both bound students of the class


async def weekly(s: AsyncSession, a: Actor | None) -> bool:
    model = await fit(s)
    return await enqueue_weekly(s, a, model, now=NOW) >= 0


def cases(who: Who) -> dict[str, tuple[Call, set[Who]]]:
    return {
        "statistics scope by default": (
            scope_asked("", DEFAULT_SCOPE.get(who)),
            set(DEFAULT_SCOPE),
        ),
        "statistics of CLASS": (scope_asked(CLASS, Scope.klass(CLASS)), CLASS_FIGURES),
        "statistics of OTHER_CLASS": (
            scope_asked(OTHER_CLASS, Scope.klass(OTHER_CLASS)),
            OTHER_FIGURES,
        ),
        "statistics of the grade": (scope_asked(GRADE, Scope.grade(GRADE)), LIBRARIAN),
        "figures (and the report) of the school": (figures(Scope.school()), LIBRARIAN),
        "figures of the grade": (figures(Scope.grade(GRADE)), LIBRARIAN),
        "figures of CLASS": (figures(Scope.klass(CLASS)), CLASS_FIGURES),
        "figures of OTHER_CLASS": (figures(Scope.klass(OTHER_CLASS), 0), OTHER_FIGURES),
        "读书之星": (stars, LIBRARIAN),
        "announce 读书之星": (announce, LIBRARIAN),
        "荐购 review": (review, LIBRARIAN),
        "decide a 荐购": (decide, LIBRARIAN),
        "create a reading list": (new_list, LIBRARIAN),
        "add a book to a list": (add_book, LIBRARIAN),
        "send a list to a class": (plan_send, LIBRARIAN),
        "fan due lists out": (send_lists, LIBRARIAN),
        "weekly 新书推荐 to every reader": (weekly, LIBRARIAN),
    }


@pytest.mark.parametrize("who", list(Who))
async def test_who_may_see_and_send(db: Database, who: Who) -> None:
    world = await school(db)
    actor = world.actor(who)
    table = cases(who)
    outcomes = {name: await attempt(db, actor, call) for name, (call, _) in table.items()}
    assert outcomes == {name: who in allowed for name, (_, allowed) in table.items()}


async def test_a_monitor_asking_nothing_gets_their_own_class(db: Database) -> None:
    """/stats without a scope: a monitor's own class (the librarian's default is the school)."""
    world = await school(db)
    monitor = world.actor(Who.MONITOR)
    async with db.transaction(read_only=True) as s:
        scope = await allowed_scope(s, monitor, None)
        stats = await compute(s, monitor, scope, month_period(2026, 9, TZ), tz=TZ, now=NOW)
    assert stats.scope == Scope.klass(CLASS) and stats.loans == 1


async def test_the_audit_names_the_job(db: Database) -> None:
    """What the server sends is audited under the name it runs as (``job:<id>``, ``cli``)."""
    await school(db)
    async with db.transaction() as s:
        found = await monthly_stars(s, Actor.system("job:reading-stars"), year=2026, month=9, tz=TZ)
        await announce_stars(
            s, Actor.system("job:reading-stars"), found, year=2026, month=9, tell_monitors=False
        )
        await resolve(s, Actor.system(), decision=SuggestionStatus.REJECTED, query=WISH)
        await schedule_send(s, Actor.system(), LIST, grades=[GRADE], classes=[])
    async with db.transaction(read_only=True) as s:
        audit = dict(
            (action, actor)
            for action, actor in await s.execute(select(AuditEntry.action, AuditEntry.actor))
        )
    assert audit["stars_announce"] == "job:reading-stars"
    assert audit["suggestion_resolve"] == "cli"
    assert audit["list_send"] == "cli"
