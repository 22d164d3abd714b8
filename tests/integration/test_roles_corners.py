"""Who may run the class corners, the overdue chase (催书单) and the graduation clearance: each
service called directly as every role of tests/roles.py, on SQLite and PostgreSQL. Exactly the
listed roles are let in; everyone else gets a ServiceError and nothing changes
(tests/role_checks.py). The server (the CLI, the jobs) acts with the librarian's authority, but
it is nobody's monitor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor
from services.corners import chase
from services.corners import swaps as corners
from services.policy import LoanPolicy
from storage.db import Database
from storage.models import (
    AuditEntry,
    ClassCorner,
    Copy,
    CopyStatus,
    CornerSwapItem,
    Loan,
    Reader,
    SwapDirection,
    SwapOutcome,
    SwapStatus,
)
from tests.role_checks import Call, attempt
from tests.roles import CARDS, CLASS, CLASSMATE, OTHER_CLASS, RoleWorld, Who, role_world

TZ = ZoneInfo("Asia/Shanghai")
POLICY = LoanPolicy()
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in Shanghai
GRADE = "初一"

LIBRARIAN = {Who.LIBRARIAN, Who.SYSTEM}
MONITOR = {Who.MONITOR}
CLASS_KEEPERS = {Who.MONITOR, *LIBRARIAN}  # a class's own monitor, or the librarian
MONITORS = {Who.MONITOR, Who.OTHER_MONITOR}  # each for their own class


@dataclass(frozen=True)
class Corners:
    """What the cases act on: a batch on its way to CLASS, a draft for OTHER_CLASS."""

    draft: int  # OTHER_CLASS's draft, RB2 in it
    arriving: int  # RB1's item, on its way to CLASS's corner
    returning: int  # OLD-A1's item, coming back from CLASS's corner
    owing: list[chase.ClearanceRow]  # the classmate and the book they still owe


async def school(db: Database) -> tuple[RoleWorld, Corners]:
    """The role world with grades, corner books (OLD-A1, OLD-A2 in CLASS's, OLD-B1 in
    OTHER_CLASS's), a batch sent to CLASS (RB1 in, the corner's two books out), a draft for
    OTHER_CLASS, and the classmate's overdue book."""
    world = await role_world(db)
    async with db.transaction() as s:
        await s.execute(
            update(Reader).where(Reader.class_name.in_([CLASS, OTHER_CLASS])).values(grade=GRADE)
        )
        here, there = ClassCorner(class_name=CLASS), ClassCorner(class_name=OTHER_CLASS)
        s.add_all([here, there])
        await s.flush()
        for barcode, corner in (("OLD-A1", here), ("OLD-A2", here), ("OLD-B1", there)):
            s.add(
                Copy(
                    barcode=barcode,
                    record_pk=world.record_pks["红岩"],
                    status=CopyStatus.IN_CORNER.value,
                    corner_id=corner.id,
                )
            )
        await s.execute(
            update(Copy).where(Copy.barcode == "RB4").values(status=CopyStatus.ON_LOAN.value)
        )
        s.add(
            Loan(
                copy_id=world.copy_ids["RB4"],
                reader_id=world.reader_ids[CLASSMATE],
                lent_at=NOW - timedelta(days=40),
                due_at=NOW - timedelta(days=10),
            )
        )
    system = Actor.system()
    async with db.transaction() as s:
        sent = await corners.open_draft(s, system, class_name=CLASS, now=NOW)
        await corners.add_barcodes(s, system, swap_id=sent.swap_id, barcodes=[(1, "RB1")], now=NOW)
        await corners.send_batch(s, system, swap_id=sent.swap_id, now=NOW)
        draft = await corners.open_draft(s, system, class_name=OTHER_CLASS, now=NOW)
        await corners.add_barcodes(s, system, swap_id=draft.swap_id, barcodes=[(1, "RB2")], now=NOW)
        found = Corners(
            draft.swap_id,
            await _item(s, "RB1", SwapDirection.IN),
            await _item(s, "OLD-A1", SwapDirection.OUT),
            await chase.clearance(s, system, card_no=CLASSMATE, now=NOW, tz=TZ),
        )
    return world, found


async def _item(s: AsyncSession, barcode: str, direction: SwapDirection) -> int:
    found = await s.scalar(
        select(CornerSwapItem.id)
        .join(Copy, Copy.id == CornerSwapItem.copy_id)
        .where(Copy.barcode == barcode, CornerSwapItem.direction == direction.value)
    )
    assert found is not None
    return int(found)


def cases(c: Corners) -> dict[str, tuple[Call, set[Who]]]:  # noqa: C901 - one small call each
    async def appoint(s: AsyncSession, a: Actor | None) -> bool:
        done = await corners.appoint_monitor(s, a, card_no=CLASSMATE, class_name=CLASS, now=NOW)
        return done.class_name == CLASS

    async def remove(s: AsyncSession, a: Actor | None) -> bool:
        card = CARDS[Who.OTHER_MONITOR]
        return await corners.remove_monitor(s, a, card_no=card, now=NOW) == [OTHER_CLASS]

    async def monitors(s: AsyncSession, a: Actor | None) -> bool:
        return len(await corners.list_monitors(s, a)) == 2

    async def open_draft(s: AsyncSession, a: Actor | None) -> bool:
        view = await corners.open_draft(s, a, class_name=CLASS, now=NOW)
        return view.status == SwapStatus.DRAFT

    async def add(s: AsyncSession, a: Actor | None) -> bool:
        done = await corners.add_barcodes(s, a, swap_id=c.draft, barcodes=[(1, "RB3")], now=NOW)
        return done.added == ["RB3"]

    async def propose(s: AsyncSession, a: Actor | None) -> bool:
        done = await corners.propose(s, a, class_name=OTHER_CLASS, size=2, now=NOW)
        return done.view.class_name == OTHER_CLASS

    async def send(s: AsyncSession, a: Actor | None) -> bool:
        view = await corners.send_batch(s, a, swap_id=c.draft, now=NOW)
        return view.status == SwapStatus.PROPOSED

    async def cancel(s: AsyncSession, a: Actor | None) -> bool:
        view = await corners.cancel_draft(s, a, swap_id=c.draft, now=NOW)
        return view.status == SwapStatus.CANCELLED

    async def arrived(s: AsyncSession, a: Actor | None) -> bool:
        done = await corners.confirm_item(
            s, a, item_id=c.arriving, outcome=SwapOutcome.RECEIVED, policy=POLICY, now=NOW
        )
        return done.copy_status == CopyStatus.IN_CORNER

    async def returned(s: AsyncSession, a: Actor | None) -> bool:
        done = await corners.confirm_item(
            s, a, item_id=c.returning, outcome=SwapOutcome.RECEIVED, policy=POLICY, now=NOW
        )
        return done.copy_status == CopyStatus.ON_SHELF

    async def scan(s: AsyncSession, a: Actor | None) -> bool:
        # Each barcode is answered in the scanner's own direction: a monitor confirms arrivals
        # in their corner, the desk returns (or a corner copy brought to it).
        barcodes = [(1, "RB1"), (2, "OLD-A2")]
        done = await corners.confirm_barcodes(s, a, barcodes=barcodes, policy=POLICY, now=NOW)
        answered = len(done.confirmed) + len(done.brought_back) + len(done.problems)
        return answered == len(barcodes)

    async def brought_back(s: AsyncSession, a: Actor | None) -> bool:
        found = await corners.receive_from_corner(s, a, barcode="OLD-B1", policy=POLICY, now=NOW)
        return found == OTHER_CLASS

    async def holder(s: AsyncSession, a: Actor | None) -> bool:
        _, name = await corners.record_holder(s, a, barcode="OLD-A1", card_no=CLASSMATE, now=NOW)
        return name == "学生乙"

    async def contents(s: AsyncSession, a: Actor | None) -> bool:
        name, books = await corners.corner_contents(s, a, CLASS)
        return name == CLASS and len(books) == 2

    async def own_contents(s: AsyncSession, a: Actor | None) -> bool:
        name, _ = await corners.corner_contents(s, a)
        return name in (CLASS, OTHER_CLASS)

    async def batch(s: AsyncSession, a: Actor | None) -> bool:
        view = await corners.batch_for(s, a, CLASS)
        return view is not None and view.class_name == CLASS

    async def cuishu(s: AsyncSession, a: Actor | None) -> bool:
        name, lines = await chase.overdue_for(s, a, class_name=CLASS, now=NOW, tz=TZ)
        return name == CLASS and [line.card_no for line in lines] == [CLASSMATE]

    async def own_cuishu(s: AsyncSession, a: Actor | None) -> bool:
        name, _ = await chase.overdue_for(s, a, now=NOW, tz=TZ)
        return name in (CLASS, OTHER_CLASS)

    async def overdue(s: AsyncSession, a: Actor | None) -> bool:
        return len(await chase.class_overdue(s, a, CLASS, now=NOW, tz=TZ)) == 1

    async def weekly(s: AsyncSession, a: Actor | None) -> bool:
        run = await chase.weekly_chase(s, a, now=NOW, tz=TZ)
        return (run.lists, run.reminders) == (1, 1)

    async def clearance(s: AsyncSession, a: Actor | None) -> bool:
        rows = await chase.clearance(s, a, grade=GRADE, now=NOW, tz=TZ)
        return [row.card_no for row in rows] == [CLASSMATE]

    async def clearance_card(s: AsyncSession, a: Actor | None) -> bool:
        rows = await chase.clearance(s, a, card_no=CLASSMATE, now=NOW, tz=TZ)
        return len(rows) == 1

    async def remind(s: AsyncSession, a: Actor | None) -> bool:
        sent = await chase.remind_owing(s, a, c.owing, now=NOW, tz=TZ)
        return sent.sent + len(sent.unreachable) == 1

    return {
        "appoint a monitor": (appoint, LIBRARIAN),
        "remove a monitor": (remove, LIBRARIAN),
        "list the monitors": (monitors, LIBRARIAN),
        "open a draft batch": (open_draft, LIBRARIAN),
        "add barcodes to a draft": (add, LIBRARIAN),
        "let Shuxiang propose a batch": (propose, LIBRARIAN),
        "send a batch": (send, LIBRARIAN),
        "cancel a draft": (cancel, LIBRARIAN),
        "confirm an arriving copy": (arrived, MONITOR),
        "confirm a returning copy at the desk": (returned, LIBRARIAN),
        "scan barcodes (arrivals or returns)": (scan, {*MONITORS, *LIBRARIAN}),
        "receive a corner copy brought to the desk": (brought_back, LIBRARIAN),
        "record who has a corner book": (holder, MONITOR),
        "see CLASS's corner": (contents, CLASS_KEEPERS),
        "see one's own corner": (own_contents, MONITORS),
        "see CLASS's open batch": (batch, CLASS_KEEPERS),
        "CLASS's 催书单 (/cuishu)": (cuishu, CLASS_KEEPERS),
        "one's own class's 催书单": (own_cuishu, MONITORS),
        "CLASS's overdue readers": (overdue, CLASS_KEEPERS),
        "the weekly chase to every monitor": (weekly, LIBRARIAN),
        "graduation clearance of a grade": (clearance, LIBRARIAN),
        "clearance of one reader": (clearance_card, LIBRARIAN),
        "remind those who owe books": (remind, LIBRARIAN),
    }


@pytest.mark.parametrize("who", list(Who))
async def test_who_may_run_the_corners(db: Database, who: Who) -> None:
    world, found = await school(db)
    actor = world.actor(who)
    table = cases(found)
    outcomes = {name: await attempt(db, actor, call) for name, (call, _) in table.items()}
    assert outcomes == {name: who in allowed for name, (_, allowed) in table.items()}


async def test_the_audit_names_the_job(db: Database) -> None:
    """The weekly chase is audited under its job's name, the CLI's clearance as ``cli``."""
    await school(db)
    async with db.transaction() as s:
        await chase.weekly_chase(s, Actor.system("job:weekly-chase"), now=NOW, tz=TZ)
        await chase.clearance(s, Actor.system(), grade=GRADE, now=NOW, tz=TZ)
    async with db.transaction(read_only=True) as s:
        rows = await s.execute(select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id))
        audit = {action: actor for action, actor in rows}
    assert audit["chase_weekly"] == "job:weekly-chase"
    assert audit["clearance"] == "cli"
