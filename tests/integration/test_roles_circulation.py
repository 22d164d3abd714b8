"""Who may lend, take back, renew, reserve, cancel and look: every circulation service that changes
state or shows a reader's data, called directly (no handler, no filter) as every role of
tests/roles.py, on both databases.

The desk (lending, returns, reader look-ups, the hold shelf, a copy's state, hold expiry) is the
librarian's and the server's; a reader's own loans, holds and renewals are that reader's too. A
refused call raises ServiceError before it writes anything: every table is the same after it as
before (tests/role_checks.py). Each call is rolled back, so each starts from the same library.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services import circulation as circ
from services.actor import Actor
from services.errors import ServiceError
from services.policy import LoanPolicy
from storage.db import Database
from storage.models import AuditEntry, Copy, Loan, Record, utcnow
from tests.role_checks import refusal
from tests.roles import CARDS, CLASSMATE, Who, as_reader, role_world

POLICY = LoanPolicy()
DESK = frozenset({Who.LIBRARIAN, Who.SYSTEM})
OWN = frozenset({Who.STUDENT, Who.LIBRARIAN, Who.SYSTEM})
# What a refusal may say: the actor's refusals, or "no such loan/hold" for another reader's.
REFUSALS = {
    "actor.need_binding",
    "actor.librarian_only",
    "actor.not_yours",
    "renew.not_found",
    "hold.not_found",
}
SYSTEM = Actor.system("job:test")


@dataclass(frozen=True)
class Library:
    """The role world with loans and holds: the student and the classmate (a second student of
    the same class) each have a loan of 红岩 and a hold on 骆驼祥子; 边城 is on the shelf; 围城 is
    out (reservable); 城南旧事 waits on the hold shelf for the other class's monitor, past its
    pickup day."""

    student: int
    classmate: int
    student_loan: int
    classmate_loan: int
    student_hold: int
    classmate_hold: int
    reservable: int  # 围城's record
    red_rock: int  # 红岩's record
    later: datetime  # after the ready hold's pickup day


Call = Callable[[AsyncSession, Actor | None, Library], Awaitable[object]]


async def library(db: Database) -> tuple[Library, dict[Who, Actor | None]]:
    world = await role_world(db)
    ids = world.reader_ids
    student, classmate = ids[CARDS[Who.STUDENT]], ids[CLASSMATE]
    async with db.transaction() as s:
        for n, (title, barcode) in enumerate(
            (("边城", "RC1"), ("围城", "RD1"), ("城南旧事", "RE1")), start=10
        ):
            record = Record(record_id=f"ROLE-{n}", title=title, clc="I247")
            s.add(record)
            await s.flush()
            s.add(Copy(barcode=barcode, record_pk=record.id))
        await s.flush()
    lend = {
        "RB1": CARDS[Who.STUDENT],
        "RB2": CLASSMATE,
        "RB3": CARDS[Who.TEACHER],
        "RB4": CARDS[Who.TEACHER],
        "RD1": CARDS[Who.TEACHER],
        "RE1": CARDS[Who.TEACHER],
    }
    async with db.transaction() as s:
        loans = {
            barcode: (
                await circ.checkout(s, actor=SYSTEM, card_no=card, barcode=barcode, policy=POLICY)
            ).loan_id
            for barcode, card in lend.items()
        }
        holds = {}
        for reader_id in (student, classmate, ids[CARDS[Who.OTHER_MONITOR]]):
            title = "城南旧事" if reader_id == ids[CARDS[Who.OTHER_MONITOR]] else "骆驼祥子"
            record_pk = await s.scalar(select(Record.id).where(Record.title == title))
            assert record_pk is not None
            placed = await circ.place_hold(
                s, actor=SYSTEM, reader_id=reader_id, record_pk=record_pk, policy=POLICY
            )
            holds[reader_id] = placed.hold_id
        returned = await circ.return_copy(s, actor=SYSTEM, barcode="RE1", policy=POLICY)
        assert returned.held_for_card == CARDS[Who.OTHER_MONITOR]
        reservable = await s.scalar(select(Record.id).where(Record.title == "围城"))
        assert reservable is not None
    lib = Library(
        student=student,
        classmate=classmate,
        student_loan=loans["RB1"],
        classmate_loan=loans["RB2"],
        student_hold=holds[student],
        classmate_hold=holds[classmate],
        reservable=reservable,
        red_rock=world.record_pks["红岩"],
        later=utcnow() + timedelta(days=POLICY.hold_pickup_days + 2),
    )
    return lib, world.actors


# Each service, the roles it lets in, and the call (the student's data, or the classmate's).
CASES: dict[str, tuple[frozenset[Who], Call]] = {
    "checkout to the student": (
        DESK,
        lambda s, a, lib: circ.checkout(
            s, actor=a, card_no=CARDS[Who.STUDENT], barcode="RC1", policy=POLICY
        ),
    ),
    "return the student's book": (
        DESK,
        lambda s, a, lib: circ.return_copy(s, actor=a, barcode="RB1", policy=POLICY),
    ),
    "renew the student's loan": (
        OWN,
        lambda s, a, lib: circ.renew(s, actor=a, loan_id=lib.student_loan, policy=POLICY),
    ),
    "renew the classmate's loan": (
        DESK,
        lambda s, a, lib: circ.renew(s, actor=a, loan_id=lib.classmate_loan, policy=POLICY),
    ),
    "reserve for the student": (
        OWN,
        lambda s, a, lib: circ.place_hold(
            s, actor=a, reader_id=lib.student, record_pk=lib.reservable, policy=POLICY
        ),
    ),
    "reserve for the classmate": (
        DESK,
        lambda s, a, lib: circ.place_hold(
            s, actor=a, reader_id=lib.classmate, record_pk=lib.reservable, policy=POLICY
        ),
    ),
    "cancel the student's hold": (
        OWN,
        lambda s, a, lib: circ.cancel_hold(s, actor=a, hold_id=lib.student_hold, policy=POLICY),
    ),
    "cancel the classmate's hold": (
        DESK,
        lambda s, a, lib: circ.cancel_hold(s, actor=a, hold_id=lib.classmate_hold, policy=POLICY),
    ),
    "expire ready holds": (
        DESK,
        lambda s, a, lib: circ.expire_ready_holds(s, actor=a, policy=POLICY, now=lib.later),
    ),
    "the student's loans": (OWN, lambda s, a, lib: circ.loans_of(s, lib.student, actor=a)),
    "the classmate's loans": (DESK, lambda s, a, lib: circ.loans_of(s, lib.classmate, actor=a)),
    "the student's history": (OWN, lambda s, a, lib: circ.loan_history(s, lib.student, actor=a)),
    "the classmate's history": (
        DESK,
        lambda s, a, lib: circ.loan_history(s, lib.classmate, actor=a),
    ),
    "the student's holds": (OWN, lambda s, a, lib: circ.holds_of(s, lib.student, actor=a)),
    "the classmate's holds": (DESK, lambda s, a, lib: circ.holds_of(s, lib.classmate, actor=a)),
    "the student's hold": (
        OWN,
        lambda s, a, lib: circ.hold_of(s, lib.student, lib.student_hold, actor=a),
    ),
    "the classmate's hold": (
        DESK,
        lambda s, a, lib: circ.hold_of(s, lib.classmate, lib.classmate_hold, actor=a),
    ),
    # The desk's views, even of the reader themselves: they name other readers.
    "the desk's view of the student": (
        DESK,
        lambda s, a, lib: circ.reader_desk(s, lib.student, POLICY, actor=a),
    ),
    "the desk's view of the classmate": (
        DESK,
        lambda s, a, lib: circ.reader_desk(s, lib.classmate, POLICY, actor=a),
    ),
    "find readers by name": (DESK, lambda s, a, lib: circ.find_readers(s, "学生乙", actor=a)),
    "a card at the desk": (
        DESK,
        lambda s, a, lib: circ.card_at_desk(s, CARDS[Who.STUDENT], actor=a),
    ),
    "a barcode at the desk": (DESK, lambda s, a, lib: circ.copy_at_desk(s, "RB1", actor=a)),
    "the hold shelf": (DESK, lambda s, a, lib: circ.hold_shelf(s, actor=a)),
    "a copy's state (who has it)": (
        DESK,
        lambda s, a, lib: circ.copy_state(s, POLICY, actor=a, barcode="RB2"),
    ),
    "the titles a reader has out": (
        DESK,
        lambda s, a, lib: circ.title_already_out_to(s, lib.classmate, lib.red_rock, actor=a),
    ),
}


def _did(call: Call, lib: Library) -> Callable[[AsyncSession, Actor | None], Awaitable[bool]]:
    """The case as role_checks runs it: let in means it ran without a refusal."""

    async def run(session: AsyncSession, actor: Actor | None) -> bool:
        await call(session, actor, lib)
        return True

    return run


@pytest.mark.parametrize("who", list(Who))
async def test_each_circulation_service_lets_in_exactly_its_roles(db: Database, who: Who) -> None:
    lib, actors = await library(db)
    actor = actors[who]
    wrong = []
    for name, (allowed, call) in CASES.items():
        # Every table is compared before and after a refused call (tests/role_checks.py).
        key = await refusal(db, actor, _did(call, lib))
        if who in allowed and key is not None:
            wrong.append(f"{name}: refused ({key})")
        elif who not in allowed and key is None:
            wrong.append(f"{name}: allowed")
        elif key is not None and key not in REFUSALS:
            wrong.append(f"{name}: refused by a rule ({key}), not for who asked")
    assert wrong == []


async def test_refused_checkout_leaves_the_copy_on_the_shelf(db: Database) -> None:
    """The review's case: a student lending themselves a book, with no handler in the way."""
    lib, actors = await library(db)
    for who in (Who.STUDENT, Who.MONITOR, Who.TEACHER, Who.STRANGER):
        with pytest.raises(ServiceError) as refused:
            async with db.transaction() as s:
                await circ.checkout(
                    s, actor=actors[who], card_no=CARDS[Who.STUDENT], barcode="RC1", policy=POLICY
                )
        assert refused.value.key in ("actor.librarian_only", "actor.need_binding")
    async with db.transaction(read_only=True) as s:
        copy = await s.scalar(select(Copy).where(Copy.barcode == "RC1"))
        assert copy is not None and copy.status == "on_shelf"
        lent = await s.scalar(select(Loan.id).where(Loan.copy_id == copy.id))
        assert lent is None
        mine = await circ.loans_of(s, lib.student, actor=await as_reader(s, lib.student))
        assert [loan.barcode for loan in mine] == ["RB1"]


async def test_the_audit_names_who_acted(db: Database) -> None:
    lib, actors = await library(db)
    librarian, student = actors[Who.LIBRARIAN], actors[Who.STUDENT]
    assert librarian is not None and student is not None
    async with db.transaction() as s:
        done = await circ.checkout(
            s, actor=librarian, card_no=CARDS[Who.STUDENT], barcode="RC1", policy=POLICY
        )
        await circ.renew(s, actor=student, loan_id=lib.student_loan, policy=POLICY)
        await circ.return_copy(s, actor=Actor.system("job:test"), barcode="RC1", policy=POLICY)
    async with db.transaction(read_only=True) as s:
        rows = (
            await s.execute(
                select(AuditEntry.action, AuditEntry.actor)
                .where(AuditEntry.action.in_(("checkout", "renew", "return")))
                .order_by(AuditEntry.id.desc())
                .limit(3)
            )
        ).all()
        lent_by = await s.scalar(select(Loan.lent_by).where(Loan.id == done.loan_id))
    assert sorted(rows) == [
        ("checkout", f"reader:{librarian.reader_id}"),
        ("renew", f"reader:{student.reader_id}"),
        ("return", "job:test"),
    ]
    assert lent_by == librarian.reader_id
