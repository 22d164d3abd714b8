"""Class corners and the overdue chase at the service level, on SQLite and PostgreSQL: who may do
what (the role matrix), what a confirmation does to a copy, proposals, the chase, clearance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services import circulation
from services.actor import Actor, actor_of
from services.corners import chase
from services.corners import swaps as corners
from services.errors import ServiceError
from services.notifications.render import render
from services.policy import LoanPolicy
from storage.db import Database
from storage.models import (
    AuditEntry,
    ClassCorner,
    ClassMonitor,
    Copy,
    CopyStatus,
    CornerSwap,
    CornerSwapItem,
    Hold,
    HoldStatus,
    Notification,
    Reader,
    Record,
    SwapDirection,
    SwapOutcome,
    SwapStatus,
)
from tests.factories import telegram_endpoint
from tests.roles import as_reader

TZ = ZoneInfo("Asia/Shanghai")
POLICY = LoanPolicy()
A, B = "高一(3)班", "高一(4)班"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in Shanghai

# card -> (name, role, grade, class)
READERS = {
    "MA": ("甲班长", "student", "高一", A),
    "MA2": ("甲班员", "student", "高一", A),
    "SA": ("甲同学", "student", "高一", A),
    "MB": ("乙班长", "student", "高一", B),
    "SB": ("乙同学", "student", "高一", B),
    "T1": ("陈老师", "teacher", None, None),
    "L1": ("周馆员", "librarian", None, None),
    "G1": ("高三学生", "student", "高三", "高三(1)班"),
    "G2": ("高三学生二", "student", "高三", "高三(1)班"),
}
# record id -> (title, clc, barcodes)
RECORDS = {
    "r1": ("红楼梦", "I242.4", ["IN1", "IN2"]),
    "r2": ("西游记", "I242.4", ["IN3"]),
    "r3": ("史记", "K204", ["IN4"]),
    "r4": ("时间简史", "P1", ["IN5"]),
    "r5": ("论语", "B222", ["OLD1"]),
    "r6": ("三体", "I247.5", ["OLD2"]),
    "r7": ("平凡的世界", "I247.5", ["BC1"]),
    "r8": ("活着", "I247.5", ["GL1", "GL2"]),
    "r9": ("围城", "I246", ["SH1", "SH2"]),
}


async def build(db: Database) -> dict[str, int]:
    """Readers, copies, monitors MA (A) and MB (B); OLD1/OLD2 in A's corner, BC1 in B's."""
    ids: dict[str, int] = {}
    async with db.transaction() as s:
        for card, (name, role, grade, klass) in READERS.items():
            reader = Reader(card_no=card, name=name, role=role, grade=grade, class_name=klass)
            s.add(reader)
            await s.flush()
            ids[card] = reader.id
        corner_a, corner_b = ClassCorner(class_name=A), ClassCorner(class_name=B)
        s.add_all([corner_a, corner_b])
        await s.flush()
        for record_id, (title, clc, barcodes) in RECORDS.items():
            record = Record(record_id=record_id, title=title, clc=clc)
            s.add(record)
            await s.flush()
            ids[record_id] = record.id
            for barcode in barcodes:
                copy = Copy(barcode=barcode, record_pk=record.id)
                if barcode.startswith("OLD"):
                    copy.status, copy.corner_id = CopyStatus.IN_CORNER.value, corner_a.id
                elif barcode.startswith("BC"):
                    copy.status, copy.corner_id = CopyStatus.IN_CORNER.value, corner_b.id
                s.add(copy)
                await s.flush()
                ids[barcode] = copy.id
        s.add(ClassMonitor(class_name=A, reader_id=ids["MA"]))
        s.add(ClassMonitor(class_name=B, reader_id=ids["MB"]))
    return ids


async def send(db: Database, class_name: str, barcodes: list[str]) -> int:
    async with db.transaction() as s:
        draft = await corners.open_draft(s, Actor.cli(), class_name=class_name, now=NOW)
        added = await corners.add_barcodes(
            s, Actor.cli(), swap_id=draft.swap_id, barcodes=list(enumerate(barcodes, 1)), now=NOW
        )
        assert added.problems == []
        await corners.send_batch(s, Actor.cli(), swap_id=draft.swap_id, now=NOW)
    return draft.swap_id


async def item_id(db: Database, barcode: str, direction: SwapDirection) -> int:
    async with db.transaction(read_only=True) as s:
        found = await s.scalar(
            select(CornerSwapItem.id)
            .join(Copy, Copy.id == CornerSwapItem.copy_id)
            .where(Copy.barcode == barcode, CornerSwapItem.direction == direction.value)
            .where(CornerSwapItem.outcome.is_(None))
        )
    assert found is not None
    return int(found)


async def status_of(db: Database, barcode: str) -> tuple[str, str | None]:
    async with db.transaction(read_only=True) as s:
        row = (
            await s.execute(
                select(Copy.status, ClassCorner.class_name)
                .outerjoin(ClassCorner, ClassCorner.id == Copy.corner_id)
                .where(Copy.barcode == barcode)
            )
        ).one()
    return row[0], row[1]


# --- the role matrix ------------------------------------------------------------------------

ROLES = ("unbound", "student", "monitor_here", "monitor_other", "teacher", "librarian")
ROLE_CARDS = {
    "student": "SA",
    "monitor_here": "MA",
    "monitor_other": "MB",
    "teacher": "T1",
    "librarian": "L1",
}


@dataclass
class Ctx:
    ids: dict[str, int]
    draft_b: int


Action = Callable[[AsyncSession, Actor | None, Ctx], Awaitable[bool]]


async def _appoint(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    await corners.appoint_monitor(s, a, card_no="MA2", class_name=A, now=NOW)
    return True


async def _remove(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    return bool(await corners.remove_monitor(s, a, card_no="MB", now=NOW))


async def _list(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    return len(await corners.list_monitors(s, a)) == 2


async def _draft(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    return (await corners.open_draft(s, a, class_name=A, now=NOW)).status == SwapStatus.DRAFT


async def _add(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    done = await corners.add_barcodes(s, a, swap_id=c.draft_b, barcodes=[(1, "IN5")], now=NOW)
    return done.added == ["IN5"]


async def _propose(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    return bool((await corners.propose(s, a, class_name=B, size=1, now=NOW)).added)


async def _send(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    view = await corners.send_batch(s, a, swap_id=c.draft_b, now=NOW)
    return view.status == SwapStatus.PROPOSED


async def _cancel(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    view = await corners.cancel_draft(s, a, swap_id=c.draft_b, now=NOW)
    return view.status == SwapStatus.CANCELLED


async def _confirm_in(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    item = await _item(s, "IN1", SwapDirection.IN)
    done = await corners.confirm_item(
        s, a, item_id=item, outcome=SwapOutcome.RECEIVED, policy=POLICY, now=NOW
    )
    return done.copy_status == CopyStatus.IN_CORNER


async def _confirm_out(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    item = await _item(s, "OLD1", SwapDirection.OUT)
    done = await corners.confirm_item(
        s, a, item_id=item, outcome=SwapOutcome.DAMAGED, policy=POLICY, now=NOW
    )
    return done.copy_status == CopyStatus.DAMAGED


async def _scan_in(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    done = await corners.confirm_barcodes(s, a, barcodes=[(1, "IN2")], policy=POLICY, now=NOW)
    return len(done.confirmed) == 1


async def _scan_out(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    done = await corners.confirm_barcodes(s, a, barcodes=[(1, "OLD2")], policy=POLICY, now=NOW)
    return len(done.confirmed) == 1


async def _bring_back(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    return await corners.receive_from_corner(s, a, barcode="BC1", policy=POLICY, now=NOW) == B


async def _holder(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    # OLD1 is in A's corner (its return is still pending).
    _, name = await corners.record_holder(s, a, barcode="OLD1", card_no="SA", now=NOW)
    return name == "甲同学"


async def _contents(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    name, books = await corners.corner_contents(s, a, A)
    return name == A and len(books) == 2


async def _batch(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    view = await corners.batch_for(s, a, A)
    return view is not None and view.class_name == A


async def _cuishu(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    name, _ = await chase.overdue_for(s, a, class_name=A, now=NOW, tz=TZ)
    return name == A


async def _clearance(s: AsyncSession, a: Actor | None, c: Ctx) -> bool:
    rows = await chase.clearance(s, a, grade="高三", now=NOW, tz=TZ)
    return isinstance(rows, list)


async def _item(s: AsyncSession, barcode: str, direction: SwapDirection) -> int:
    found = await s.scalar(
        select(CornerSwapItem.id)
        .join(Copy, Copy.id == CornerSwapItem.copy_id)
        .where(Copy.barcode == barcode, CornerSwapItem.direction == direction.value)
    )
    assert found is not None
    return int(found)


LIBRARIAN = {"librarian"}
MONITOR = {"monitor_here"}
EITHER = {"monitor_here", "librarian"}
MATRIX: dict[str, tuple[Action, set[str]]] = {
    "appoint monitor": (_appoint, LIBRARIAN),
    "remove monitor": (_remove, LIBRARIAN),
    "list monitors": (_list, LIBRARIAN),
    "open a draft batch": (_draft, LIBRARIAN),
    "add barcodes to a batch": (_add, LIBRARIAN),
    "let Shuxiang propose a batch": (_propose, LIBRARIAN),
    "send a batch": (_send, LIBRARIAN),
    "cancel a draft": (_cancel, LIBRARIAN),
    "confirm an arriving copy": (_confirm_in, MONITOR),
    "confirm a returning copy at the desk": (_confirm_out, LIBRARIAN),
    "send barcodes of arriving copies": (_scan_in, MONITOR),
    "scan returning copies at the desk": (_scan_out, LIBRARIAN),
    "receive a copy brought back for a hold": (_bring_back, LIBRARIAN),
    "record who has a corner book": (_holder, MONITOR),
    "see the corner's books": (_contents, EITHER),
    "see the open batch": (_batch, EITHER),
    "the class's overdue list (/cuishu)": (_cuishu, EITHER),
    "graduation clearance": (_clearance, LIBRARIAN),
}


class _Undo(Exception):
    pass


async def test_role_matrix(db: Database) -> None:
    """Every action by every role, each attempt on the same state (rolled back afterwards):
    only the right roles succeed; everyone else is refused with a message, and nothing changes."""
    ids = await build(db)
    await send(db, A, ["IN1", "IN2"])  # A's open batch: IN1, IN2 in; OLD1, OLD2 out
    async with db.transaction() as s:
        draft = await corners.open_draft(s, Actor.cli(), class_name=B, now=NOW)
        await corners.add_barcodes(s, Actor.cli(), swap_id=draft.swap_id, barcodes=[(1, "IN4")])
    async with db.transaction() as s:  # the drafts a librarian scans into are their own
        await s.execute(
            update(CornerSwap).where(CornerSwap.id == draft.swap_id).values(created_by=ids["L1"])
        )
    ctx = Ctx(ids, draft.swap_id)
    outcomes: dict[str, set[str]] = {}
    for name, (action, _) in MATRIX.items():
        allowed = set()
        for role in ROLES:
            try:
                async with db.transaction() as s:
                    card = ROLE_CARDS.get(role)
                    actor = await actor_of(s, ids[card] if card else None)
                    if await action(s, actor, ctx):
                        allowed.add(role)
                    raise _Undo
            except _Undo:
                pass
            except ServiceError as refused:
                assert refused.render() != refused.key  # a real message, not a bare key
        outcomes[name] = allowed
    assert outcomes == {name: expected for name, (_, expected) in MATRIX.items()}
    # Nothing of all those attempts stayed (IN1 is on its way to A's corner since the send).
    assert await status_of(db, "IN1") == (CopyStatus.IN_TRANSIT, A)
    assert await status_of(db, "OLD1") == (CopyStatus.IN_CORNER, A)


async def test_monitor_rules(db: Database) -> None:
    ids = await build(db)
    cli = Actor.cli()
    async with db.transaction() as s:
        with pytest.raises(ServiceError) as err:  # not a student of that class
            await corners.appoint_monitor(s, cli, card_no="SB", class_name=A)
        assert err.value.key == "corners.monitor_not_in_class"
        with pytest.raises(ServiceError) as err:
            await corners.appoint_monitor(s, cli, card_no="T1", class_name=A)
        assert err.value.key == "corners.monitor_not_in_class"
        await corners.appoint_monitor(s, cli, card_no="MA2", class_name=A, limit=2)
    async with db.transaction() as s:
        with pytest.raises(ServiceError) as err:
            await corners.appoint_monitor(s, cli, card_no="SA", class_name=A, limit=2)
        assert err.value.key == "corners.monitor_limit"
        await corners.appoint_monitor(s, cli, card_no="SA", class_name=A, limit=3)
    async with db.transaction() as s:
        assert await corners.remove_monitor(s, cli, card_no="MA2") == [A]
        names = [m.card_no for m in await corners.list_monitors(s, cli, A)]
        assert names == ["MA", "SA"]
        # A monitor who moved to another class no longer acts for the old one.
        moved = await s.get_one(Reader, ids["MA"])
        moved.class_name = B
        await s.flush()
        actor = await actor_of(s, ids["MA"])
        assert actor is not None and not actor.monitors(A)
    async with db.transaction(read_only=True) as s:
        actions = list(await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions.count("corner_monitor_add") == 2 and "corner_monitor_remove" in actions


async def test_corner_scans_match_in_any_case_width_or_spacing(db: Database) -> None:
    """The corners find copies the way the desk does (services/codes.py): a monitor's phone
    keyboard types ``in1``, an IME full-width ``ＩＮ３``, a spreadsheet `` IN4 ``."""
    ids = await build(db)
    await send(db, A, ["in1 ", "ＩＮ３", " IN4"])
    monitor = Actor(ids["MA"], "student", A, frozenset({A}))
    async with db.transaction() as s:
        done = await corners.confirm_barcodes(
            s, monitor, barcodes=[(1, " in1"), (2, "ｉｎ３"), (3, "in4")], policy=POLICY, now=NOW
        )
        assert [c.item.barcode for c in done.confirmed] == ["IN1", "IN3", "IN4"]
        assert done.problems == []
    assert await status_of(db, "IN1") == (CopyStatus.IN_CORNER, A)


async def test_confirmations_set_exactly_the_confirmed_status(db: Database) -> None:
    ids = await build(db)
    swap = await send(db, A, ["IN1", "IN3", "IN4"])
    # Off the shelf once sent (on its way to A); in the corner only once confirmed.
    assert await status_of(db, "IN1") == (CopyStatus.IN_TRANSIT, A)
    assert await status_of(db, "OLD1") == (CopyStatus.IN_CORNER, A)
    monitor = Actor(ids["MA"], "student", A, frozenset({A}))
    async with db.transaction() as s:
        done = await corners.confirm_barcodes(
            s, monitor, barcodes=[(1, "IN1"), (2, "NOPE")], policy=POLICY, now=NOW
        )
        assert [c.item.barcode for c in done.confirmed] == ["IN1"]
        assert [(p.line, p.barcode) for p in done.problems] == [(2, "NOPE")]
    for barcode, outcome in (("IN3", SwapOutcome.MISSING), ("IN4", SwapOutcome.DAMAGED)):
        iid = await item_id(db, barcode, SwapDirection.IN)
        async with db.transaction() as s:
            await corners.confirm_item(
                s, monitor, item_id=iid, outcome=outcome, policy=POLICY, now=NOW
            )
    async with db.transaction() as s:
        with pytest.raises(ServiceError) as err:  # a second answer for the same copy
            await corners.confirm_item(
                s, monitor, item_id=iid, outcome=SwapOutcome.RECEIVED, policy=POLICY
            )
        assert err.value.key == "corners.already_confirmed"
    # Someone waits for 论语 (OLD1): when it comes back it goes to the hold shelf.
    async with db.transaction() as s:
        s.add(Hold(record_pk=ids["r5"], reader_id=ids["SB"], placed_at=NOW))
    async with db.transaction() as s:
        done = await corners.confirm_barcodes(
            s, Actor.cli(), barcodes=[(1, "OLD1")], policy=POLICY, now=NOW
        )
        assert done.confirmed[0].copy_status == CopyStatus.ON_HOLD_SHELF
    iid = await item_id(db, "OLD2", SwapDirection.OUT)
    async with db.transaction() as s:
        last = await corners.confirm_item(
            s, Actor.cli(), item_id=iid, outcome=SwapOutcome.MISSING, policy=POLICY, now=NOW
        )
        assert last.swap_done
    assert await status_of(db, "IN1") == (CopyStatus.IN_CORNER, A)
    assert await status_of(db, "IN3") == (CopyStatus.LOST, None)
    assert await status_of(db, "IN4") == (CopyStatus.DAMAGED, A)
    assert await status_of(db, "OLD1") == (CopyStatus.ON_HOLD_SHELF, None)
    assert await status_of(db, "OLD2") == (CopyStatus.LOST, None)
    async with db.transaction(read_only=True) as s:
        assert (await s.get_one(CornerSwap, swap)).status == SwapStatus.CONFIRMED
        alerts = list(
            await s.execute(
                select(Notification.reader_id, Notification.payload).where(
                    Notification.kind == corners.DISCREPANCY
                )
            )
        )
        hold = await s.scalar(select(Hold))
        assert hold is not None and hold.status == HoldStatus.READY
        audit = await s.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "corner_confirm")
        )
    # Each discrepancy (IN3 missing, IN4 damaged, OLD2 missing) reached the librarian.
    assert sorted(p["barcode"] for r, p in alerts if r == ids["L1"]) == ["IN3", "IN4", "OLD2"]
    assert audit == 5


async def test_batch_rules(db: Database) -> None:
    await build(db)
    cli = Actor.cli()
    async with db.transaction() as s:
        draft = await corners.open_draft(s, cli, class_name=A)
        result = await corners.add_barcodes(
            s,
            cli,
            swap_id=draft.swap_id,
            barcodes=[(1, "IN1"), (2, "IN1"), (3, "OLD1"), (4, "ZZZ9")],
        )
        assert result.added == ["IN1"]
        assert [(p.line, p.key) for p in result.problems] == [
            (2, "corners.problem_duplicate"),
            (3, "corners.problem_not_on_shelf"),
            (4, "corners.problem_unknown"),
        ]
        await corners.send_batch(s, cli, swap_id=draft.swap_id)
    async with db.transaction() as s:
        other = await corners.open_draft(s, cli, class_name=B)
        busy = await corners.add_barcodes(s, cli, swap_id=other.swap_id, barcodes=[(1, "IN1")])
        assert busy.problems[0].key == "corners.problem_in_other_batch"
        again = await corners.open_draft(s, cli, class_name=A)
        await corners.add_barcodes(s, cli, swap_id=again.swap_id, barcodes=[(1, "IN2")])
        with pytest.raises(ServiceError) as err:
            await corners.send_batch(s, cli, swap_id=again.swap_id)
        assert err.value.key == "corners.previous_open"
    async with db.transaction() as s:
        with pytest.raises(ServiceError) as err:
            await corners.open_draft(s, cli, class_name="不存在(9)班")
        # Refused by the shared resolver, which names the classes the school has.
        assert err.value.key == "scopes.unknown_class"
        assert "现有班级" in err.value.render() and A in err.value.render()


async def test_proposal_mix_history_and_holds(db: Database) -> None:
    ids = await build(db)
    # 西游记 was in A's corner ten months ago; 史记 has a waiting hold.
    async with db.transaction() as s:
        corner = await s.scalar(select(ClassCorner).where(ClassCorner.class_name == A))
        assert corner is not None
        old = CornerSwap(
            corner_id=corner.id,
            status=SwapStatus.CONFIRMED.value,
            created_at=NOW - timedelta(days=300),
        )
        s.add(old)
        await s.flush()
        s.add(
            CornerSwapItem(swap_id=old.id, copy_id=ids["IN3"], direction="in", outcome="received")
        )
        s.add(Hold(record_pk=ids["r3"], reader_id=ids["SB"], placed_at=NOW))
    async with db.transaction() as s:
        proposed = await corners.propose(s, Actor.cli(), class_name=A, size=10, now=NOW)
    chosen = set(proposed.added)
    assert "IN3" not in chosen and "IN4" not in chosen
    assert not chosen & {"OLD1", "OLD2", "BC1"}  # only what is on the shelf
    # One copy per title.
    assert len({b[:2] for b in chosen if b.startswith(("IN1", "IN2"))}) <= 1
    # Exactly: on the shelf, not had, not waited for, one copy per title (the lowest barcode)
    # are 红楼梦 IN1 (I), 时间简史 IN5 (P), 活着 GL1 (I), 围城 SH1 (I), in record order (no loans
    # yet). A senior form's mix fills literature's share first (3 of 10: IN1, GL1, SH1), has no
    # K/B/D/O/Q/T candidates, and tops up with what is left (IN5): four, not ten.
    assert proposed.added == ["IN1", "GL1", "SH1", "IN5"]
    assert proposed.problems == []
    # The mix: literature first for a senior form, then history, ideas, science.
    picked = corners.pick_mix(
        [("i1", "I1"), ("i2", "I2"), ("i3", "I3"), ("k1", "K1"), ("b1", "B1"), ("t1", "TP3")],
        corners.SENIOR_MIX,
        4,
    )
    assert picked[:1] == ["i1"] and "k1" in picked and len(picked) == 4


async def test_bring_back_when_a_corner_copy_is_reserved(db: Database) -> None:
    ids = await build(db)
    async with db.transaction() as s:
        placed = await circulation.place_hold(
            s,
            actor=await as_reader(s, ids["SB"]),
            reader_id=ids["SB"],
            record_pk=ids["r6"],
            policy=POLICY,
            now=NOW,
        )
    async with db.transaction(read_only=True) as s:
        asks = list(
            await s.execute(
                select(Notification.reader_id, Notification.payload).where(
                    Notification.kind == "corner_bring_back"
                )
            )
        )
    assert [(r, p["barcode"], p["class_name"]) for r, p in asks] == [(ids["MA"], "OLD2", A)]
    async with db.transaction() as s:
        await corners.confirm_barcodes(s, Actor.cli(), barcodes=[(1, "OLD2")], policy=POLICY)
    async with db.transaction(read_only=True) as s:
        hold = await s.get_one(Hold, placed.hold_id)
    assert hold.status == HoldStatus.READY
    assert await status_of(db, "OLD2") == (CopyStatus.ON_HOLD_SHELF, None)


async def test_book_card_names_the_corner(db: Database) -> None:
    ids = await build(db)
    from services.catalogue.card import book_card

    async with db.transaction(read_only=True) as s:
        card = await book_card(s, ids["r6"], reader_id=ids["SB"], shelf_map={})
    assert card.corner_names == (A,) and card.can_reserve


async def _overdue_world(db: Database, ids: dict[str, int]) -> None:
    long_ago = NOW - timedelta(days=45)
    async with db.transaction() as s:
        for card, barcode in (("SA", "IN1"), ("SA", "IN3"), ("SB", "IN5"), ("G1", "GL1")):
            await circulation.checkout(
                s, actor=Actor.cli(), card_no=card, barcode=barcode, policy=POLICY, now=long_ago
            )
        # Not overdue: borrowed yesterday.
        await circulation.checkout(
            s,
            actor=Actor.cli(),
            card_no="MA",
            barcode="SH1",
            policy=POLICY,
            now=NOW - timedelta(days=1),
        )


async def test_weekly_chase_once_per_monitor_per_week(db: Database) -> None:
    ids = await build(db)
    await _overdue_world(db, ids)
    for moment in (NOW, NOW + timedelta(hours=3), NOW + timedelta(days=2)):
        async with db.transaction() as s:
            await chase.weekly_chase(s, Actor.system(), now=moment, tz=TZ)
    async with db.transaction(read_only=True) as s:
        rows = list(
            await s.execute(select(Notification.kind, Notification.reader_id, Notification.payload))
        )
    lists = [(r, p) for k, r, p in rows if k == chase.MONITOR_LIST]
    assert sorted(r for r, _ in lists) == sorted([ids["MA"], ids["MB"]])
    by_reader = {r: p for r, p in lists}
    # The list arrives pre-rendered, one line a loan: SA's two books to MA, SB's one to MB.
    ma_lines = by_reader[ids["MA"]]["lines"].splitlines()
    assert len(ma_lines) == 2 and all("（SA）" in line for line in ma_lines)
    (mb_line,) = by_reader[ids["MB"]]["lines"].splitlines()
    assert "（SB）" in mb_line
    shown = render(chase.MONITOR_LIST, by_reader[ids["MA"]], TZ).text
    assert shown.startswith("📋 <b>") and ma_lines[0] in shown
    # Each student on a list got their own reminder; nobody else did (G1's class has no monitor).
    reminded = sorted(r for k, r, _ in rows if k == chase.STUDENT_REMINDER)
    # NOW+2 days is another day: one more reminder each, but no second list the same week.
    assert reminded == sorted([ids["SA"], ids["SA"], ids["SB"], ids["SB"]])
    async with db.transaction() as s:
        await chase.weekly_chase(s, Actor.system(), now=NOW + timedelta(days=7), tz=TZ)
        fresh = await s.scalar(
            select(func.count(Notification.id)).where(Notification.kind == chase.MONITOR_LIST)
        )
    assert fresh == 4  # the next week: one more each


async def test_clearance_lists_and_shrinks(db: Database) -> None:
    ids = await build(db)
    await _overdue_world(db, ids)
    async with db.transaction() as s:
        await circulation.checkout(
            s, actor=Actor.cli(), card_no="G2", barcode="GL2", policy=POLICY, now=NOW
        )
        lost = await s.scalar(select(Copy).where(Copy.barcode == "GL2"))
        assert lost is not None
        lost.status = CopyStatus.LOST.value
    async with db.transaction() as s:
        # G2 can be reached in the chat; G1 never bound Shuxiang.
        s.add(telegram_endpoint(ids["G2"], 99002))
        rows = await chase.clearance(s, Actor.cli(), grade="高三", now=NOW, tz=TZ)
        listed_only = await s.scalar(select(func.count(Notification.id)))
        sent = await chase.remind_owing(s, Actor.cli(), rows, now=NOW, tz=TZ)
        again = await chase.clearance(s, Actor.cli(), grade="高三年级", now=NOW, tz=TZ)
        resent = await chase.remind_owing(s, Actor.cli(), again, now=NOW, tz=TZ)
    assert [(r.card_no, [(b.barcode, b.lost) for b in r.books]) for r in rows] == [
        ("G1", [("GL1", False)]),
        ("G2", [("GL2", True)]),
    ]
    assert listed_only == 0  # listing messages nobody
    assert (sent.sent, sent.earlier, [r.card_no for r in sent.unreachable]) == (1, 0, ["G1"])
    assert (resent.sent, resent.earlier) == (0, 1)  # once a day each
    assert len(again) == 2
    async with db.transaction() as s:
        await circulation.return_copy(s, actor=Actor.cli(), barcode="GL1", policy=POLICY, now=NOW)
        after = await chase.clearance(s, Actor.cli(), grade="高三", now=NOW, tz=TZ)
        single = await chase.clearance(s, Actor.cli(), card_no="SA", now=NOW, tz=TZ)
        for grade, key in (("高四", "scopes.unknown_grade"), (A, "scopes.class_not_grade")):
            with pytest.raises(ServiceError) as err:
                await chase.clearance(s, Actor.cli(), grade=grade, now=NOW, tz=TZ)
            assert err.value.key.startswith(key), err.value.key
            assert "高三" in err.value.render()  # names the grades the school has
        with pytest.raises(ServiceError) as err:
            await chase.clearance(s, Actor.cli(), card_no="G11", now=NOW, tz=TZ)
        assert err.value.key == "scopes.unknown_card_near" and "G1" in err.value.render()
    assert [r.card_no for r in after] == ["G2"]
    assert [b.barcode for b in single[0].books] == ["IN1", "IN3"]
    async with db.transaction(read_only=True) as s:
        reminders = list(
            await s.scalars(
                select(Notification.reader_id).where(Notification.kind == chase.CLEARANCE_REMINDER)
            )
        )
    assert reminders == [ids["G2"]]


async def test_a_copy_lent_while_packed_and_a_damaged_one_coming_back(db: Database) -> None:
    ids = await build(db)
    await send(db, A, ["IN1", "IN5"])
    monitor = Actor(ids["MA"], "student", A, frozenset({A}))
    async with db.transaction() as s:  # still at the desk: lent only when the librarian insists
        with pytest.raises(ServiceError) as err:
            await circulation.checkout(
                s, actor=Actor.cli(), card_no="SB", barcode="IN1", policy=POLICY, now=NOW
            )
        assert err.value.key == "copy.corner_to" and err.value.params["class_name"] == A
        await circulation.checkout(
            s,
            actor=Actor.cli(),
            card_no="SB",
            barcode="IN1",
            policy=POLICY,
            now=NOW,
            from_corner=True,
        )
    async with db.transaction() as s:  # it left the batch: the monitor has nothing to confirm
        done = await corners.confirm_barcodes(s, monitor, barcodes=[(1, "IN1")], policy=POLICY)
        assert [p.key for p in done.problems] == ["corners.problem_not_in_batch"]
    for barcode, outcome in (("IN5", SwapOutcome.DAMAGED),):
        iid = await item_id(db, barcode, SwapDirection.IN)
        async with db.transaction() as s:
            await corners.confirm_item(
                s, monitor, item_id=iid, outcome=outcome, policy=POLICY, now=NOW
            )
    assert await status_of(db, "IN1") == (CopyStatus.ON_LOAN, None)  # with a reader, not lost
    assert await status_of(db, "IN5") == (CopyStatus.DAMAGED, A)
    async with db.transaction() as s:
        await corners.confirm_barcodes(
            s, Actor.cli(), barcodes=[(1, "OLD1"), (2, "OLD2")], policy=POLICY, now=NOW
        )
    await send(db, A, [])  # the next batch takes the damaged copy back
    async with db.transaction() as s:
        back = await corners.confirm_barcodes(
            s, Actor.cli(), barcodes=[(1, "IN5")], policy=POLICY, now=NOW
        )
    assert back.confirmed[0].swap_done
    assert await status_of(db, "IN5") == (CopyStatus.DAMAGED, None)  # back, for repair
