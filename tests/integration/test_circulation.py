"""Circulation rules on migrated SQLite and PostgreSQL, including concurrent races."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from services import circulation as circ
from services.actor import Actor
from services.catalogue.card import book_card
from services.errors import ServiceError
from services.policy import LoanPolicy, RolePolicy
from storage.db import Database
from storage.models import Copy, Hold, Loan, Notification, Reader, utcnow
from tests.conftest import BACKENDS
from tests.factories import POLICY, give_back, lend, make_world
from tests.roles import as_reader

READERS = {f"S{i}": (f"学生{i}", "student") for i in range(1, 23)} | {
    "T1": ("王老师", "teacher"),
}


async def reserve(db: Database, reader_id: int, record_pk: int, **kw: object) -> circ.HoldPlaced:
    async with db.transaction() as s:
        return await circ.place_hold(
            s,
            actor=await as_reader(s, reader_id),
            reader_id=reader_id,
            record_pk=record_pk,
            policy=POLICY,
            **kw,  # type: ignore[arg-type]
        )


async def test_checkout_and_return(db: Database) -> None:
    await make_world(db, readers=READERS)
    result = await lend(db, "S1", "B1")
    assert result.title == "追风筝的人"
    assert (result.due_at - utcnow()).days in (29, 30)
    with pytest.raises(ServiceError) as err:
        await lend(db, "S2", "B1")
    assert err.value.key == "copy.on_loan"
    back = await give_back(db, "B1")
    assert back.card_no == "S1" and back.held_for_name is None and back.returned_at < back.due_at
    with pytest.raises(ServiceError) as err:
        await give_back(db, "B1")
    assert err.value.key == "copy.not_on_loan"
    async with db.transaction(read_only=True) as s:
        copy = await s.scalar(select(Copy).where(Copy.barcode == "B1"))
        assert copy is not None and copy.status == "on_shelf"


async def test_student_limit_and_overdue_block(db: Database) -> None:
    records = {f"r{i}": (f"书{i}", [f"B{i}"]) for i in range(1, 6)}
    await make_world(db, records=records, readers=READERS)
    for i in range(1, 4):
        await lend(db, "S1", f"B{i}")
    with pytest.raises(ServiceError) as err:
        await lend(db, "S1", "B4")
    assert err.value.key == "loan.limit_reached" and err.value.params["limit"] == 3
    # Teachers have their own, larger limit.
    for i in range(4, 6):
        await lend(db, "T1", f"B{i}")
    # A reader with an overdue book cannot borrow more.
    past = utcnow() - timedelta(days=40)
    await give_back(db, "B1")
    await lend(db, "S2", "B1", now=past)
    await give_back(db, "B2")
    with pytest.raises(ServiceError) as err:
        await lend(db, "S2", "B2")
    assert err.value.key == "loan.has_overdue"


async def test_renewal_rules(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    loan = await lend(db, "S1", "B1")
    s1 = world.reader_ids["S1"]
    async with db.transaction() as s:
        renewed = await circ.renew(
            s, actor=await as_reader(s, s1), loan_id=loan.loan_id, policy=POLICY
        )
    assert renewed.due_at - loan.due_at == timedelta(days=15)
    assert renewed.renewals_left == 0
    with pytest.raises(ServiceError) as err:
        async with db.transaction() as s:
            await circ.renew(s, actor=await as_reader(s, s1), loan_id=loan.loan_id, policy=POLICY)
    assert err.value.key == "renew.limit"
    # Nobody renews another reader's loan: it looks like a missing one.
    with pytest.raises(ServiceError) as err:
        async with db.transaction() as s:
            await circ.renew(
                s,
                actor=await as_reader(s, world.reader_ids["S2"]),
                loan_id=loan.loan_id,
                policy=POLICY,
            )
    assert err.value.key == "renew.not_found"


async def test_no_renewal_when_overdue_or_someone_waits(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    s1, s2 = world.reader_ids["S1"], world.reader_ids["S2"]
    loan = await lend(db, "S1", "B1", now=utcnow() - timedelta(days=31))
    with pytest.raises(ServiceError) as err:
        async with db.transaction() as s:
            await circ.renew(s, actor=await as_reader(s, s1), loan_id=loan.loan_id, policy=POLICY)
    assert err.value.key == "renew.overdue"
    await give_back(db, "B1")
    loan = await lend(db, "S1", "B1")
    await reserve(db, s2, world.record_pks["r1"])
    with pytest.raises(ServiceError) as err:
        async with db.transaction() as s:
            await circ.renew(s, actor=await as_reader(s, s1), loan_id=loan.loan_id, policy=POLICY)
    assert err.value.key == "renew.others_waiting" and err.value.params["waiting"] == 1


async def test_hold_queue_ready_and_hold_shelf(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    rec = world.record_pks["r1"]
    with pytest.raises(ServiceError) as err:
        await reserve(db, world.reader_ids["S2"], rec)
    assert err.value.key == "hold.on_shelf"
    await lend(db, "S1", "B1")
    with pytest.raises(ServiceError) as err:
        await reserve(db, world.reader_ids["S1"], rec)
    assert err.value.key == "hold.already_borrowed"
    first = await reserve(db, world.reader_ids["S2"], rec)
    second = await reserve(db, world.reader_ids["S3"], rec)
    assert (first.position, second.position) == (1, 2)
    with pytest.raises(ServiceError) as err:
        await reserve(db, world.reader_ids["S2"], rec)
    assert err.value.key == "hold.already"

    back = await give_back(db, "B1")
    assert back.held_for_card == "S2"
    async with db.transaction(read_only=True) as s:
        holds = await circ.holds_of(
            s, world.reader_ids["S2"], actor=await as_reader(s, world.reader_ids["S2"])
        )
        assert holds[0].status == "ready" and holds[0].ready_until is not None
        assert (
            await circ.holds_of(
                s, world.reader_ids["S3"], actor=await as_reader(s, world.reader_ids["S3"])
            )
        )[0].position == 1
        # One hold by id, the same view as in the list; never another reader's.
        assert (
            await circ.hold_of(
                s,
                world.reader_ids["S2"],
                holds[0].hold_id,
                actor=await as_reader(s, world.reader_ids["S2"]),
            )
            == holds[0]
        )
        assert (
            await circ.hold_of(
                s,
                world.reader_ids["S3"],
                holds[0].hold_id,
                actor=await as_reader(s, world.reader_ids["S3"]),
            )
            is None
        )
        notes = list(await s.scalars(select(Notification).order_by(Notification.id)))
        # The borrower was told once (two holds, one note), then the first in line.
        assert [(n.kind, n.reader_id) for n in notes] == [
            ("reserved_note", world.reader_ids["S1"]),
            ("hold_ready", world.reader_ids["S2"]),
        ]
        assert notes[1].payload["title"] == "追风筝的人"
    # The copy on the hold shelf goes to S2 only.
    with pytest.raises(ServiceError) as err:
        await lend(db, "S3", "B1")
    assert err.value.key == "copy.held_for_other"
    out = await lend(db, "S2", "B1")
    assert out.collected_hold
    async with db.transaction(read_only=True) as s:
        assert (
            await circ.holds_of(
                s, world.reader_ids["S2"], actor=await as_reader(s, world.reader_ids["S2"])
            )
            == []
        )


async def test_cancelling_a_ready_hold_passes_the_copy_on(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    rec = world.record_pks["r1"]
    await lend(db, "S1", "B1")
    h2 = await reserve(db, world.reader_ids["S2"], rec)
    await reserve(db, world.reader_ids["S3"], rec)
    await give_back(db, "B1")
    async with db.transaction() as s:
        title = await circ.cancel_hold(
            s, actor=await as_reader(s, world.reader_ids["S2"]), hold_id=h2.hold_id, policy=POLICY
        )
    assert title == "追风筝的人"
    async with db.transaction(read_only=True) as s:
        assert (
            await circ.holds_of(
                s, world.reader_ids["S3"], actor=await as_reader(s, world.reader_ids["S3"])
            )
        )[0].status == "ready"
    # Someone else's hold id is refused like a missing one.
    with pytest.raises(ServiceError) as err:
        async with db.transaction() as s:
            await circ.cancel_hold(
                s,
                actor=await as_reader(s, world.reader_ids["S1"]),
                hold_id=h2.hold_id,
                policy=POLICY,
            )
    assert err.value.key == "hold.not_found"


async def test_expired_ready_hold_goes_to_next_then_shelf(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    rec = world.record_pks["r1"]
    await lend(db, "S1", "B1")
    await reserve(db, world.reader_ids["S2"], rec)
    await give_back(db, "B1")
    later = utcnow() + timedelta(days=POLICY.hold_pickup_days + 1)
    async with db.transaction() as s:
        assert await circ.expire_ready_holds(s, actor=Actor.cli(), policy=POLICY, now=later) == 1
    async with db.transaction(read_only=True) as s:
        copy = await s.scalar(select(Copy).where(Copy.barcode == "B1"))
        assert copy is not None and copy.status == "on_shelf"
        statuses = list(await s.scalars(select(Hold.status)))
        assert statuses == ["expired"]


async def test_office_delivery_is_for_teachers(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    await lend(db, "S1", "B1")
    with pytest.raises(ServiceError) as err:
        await reserve(db, world.reader_ids["S2"], world.record_pks["r1"], deliver_to_office=True)
    assert err.value.key == "hold.delivery_teachers_only"
    placed = await reserve(
        db, world.reader_ids["T1"], world.record_pks["r1"], deliver_to_office=True
    )
    assert placed.deliver_to_office
    back = await give_back(db, "B1")
    assert back.deliver_to_office and back.held_for_card == "T1"


async def test_twenty_readers_reserving_the_last_copy(db: Database) -> None:
    """20 concurrent reservations while the only copy comes back: one queue, one winner."""
    world = await make_world(db, readers=READERS)
    rec = world.record_pks["r1"]
    await lend(db, "S21", "B1")
    ids = [world.reader_ids[f"S{i}"] for i in range(1, 21)]

    async def attempt(reader_id: int) -> str:
        try:
            await reserve(db, reader_id, rec)
            return "held"
        except ServiceError as exc:
            return exc.key

    outcomes = await asyncio.gather(
        *(attempt(r) for r in ids[:10]), give_back(db, "B1"), *(attempt(r) for r in ids[10:])
    )
    reservations = [o for o in outcomes if isinstance(o, str)]
    assert set(reservations) <= {"held", "hold.on_shelf"}
    async with db.transaction(read_only=True) as s:
        holds = list(await s.scalars(select(Hold).order_by(Hold.placed_at, Hold.id)))
        copy = await s.scalar(select(Copy).where(Copy.barcode == "B1"))
        assert copy is not None
        assert len(holds) == reservations.count("held")
        if holds:
            # The returned copy went to the first in the queue and nobody else.
            assert copy.status == "on_hold_shelf"
            assert [h.status for h in holds].count("ready") == 1
            assert holds[0].status == "ready" and holds[0].copy_id == copy.id
            waiting = [h for h in holds if h.status == "waiting"]
            positions = [await circ.queue_position(s, h) for h in waiting]
            assert positions == list(range(1, len(waiting) + 1))
        else:
            assert copy.status == "on_shelf"


# PostgreSQL only: SQLite serialises writers, with no row locks to order.
@pytest.mark.parametrize("backend", BACKENDS[1:], indirect=True)
async def test_two_readers_reserving_each_others_books_at_once(db: Database) -> None:
    """S2 reserves S1's book while S1 reserves S2's. Each locks their own reader row and queues a
    note to the other borrower, whose row the note's foreign key must lock in share mode: with the
    reader locked FOR UPDATE the two waited on each other (PostgreSQL's deadlock under the cluster
    benchmark). The reader lock is FOR NO KEY UPDATE now: the second reservation goes through while
    the first is still open, and both notes are queued."""
    books = {"r1": ("追风筝的人", ["B1"]), "r2": ("解忧杂货店", ["B2"])}
    world = await make_world(db, records=books, readers=READERS)
    s1, s2 = world.reader_ids["S1"], world.reader_ids["S2"]
    await lend(db, "S1", "B1")
    await lend(db, "S2", "B2")
    async with db.transaction() as first:
        await circ.place_hold(
            first,
            actor=await as_reader(first, s2),
            reader_id=s2,
            record_pk=world.record_pks["r1"],
            policy=POLICY,
        )
        async with db.transaction() as second:
            # Fails the test instead of hanging it, should the second wait on the first.
            await second.execute(text("SET LOCAL lock_timeout = '10s'"))
            await circ.place_hold(
                second,
                actor=await as_reader(second, s1),
                reader_id=s1,
                record_pk=world.record_pks["r2"],
                policy=POLICY,
            )
    async with db.transaction(read_only=True) as s:
        notes = list(await s.scalars(select(Notification.reader_id).order_by(Notification.id)))
        holds = set((await s.execute(select(Hold.reader_id, Hold.record_pk))).tuples().all())
    assert sorted(notes) == sorted([s1, s2])
    assert holds == {(s2, world.record_pks["r1"]), (s1, world.record_pks["r2"])}


async def test_return_racing_a_renewal(db: Database) -> None:
    world = await make_world(db, readers=READERS)
    s1 = world.reader_ids["S1"]
    for _ in range(5):
        loan = await lend(db, "S1", "B1")

        async def renewal(loan_id: int = loan.loan_id) -> str:
            try:
                async with db.transaction() as s:
                    await circ.renew(
                        s, actor=await as_reader(s, s1), loan_id=loan_id, policy=POLICY
                    )
                return "renewed"
            except ServiceError as exc:
                return exc.key

        renewed, returned = await asyncio.gather(renewal(), give_back(db, "B1"))
        assert renewed in ("renewed", "renew.not_found")
        assert returned.card_no == "S1"
        async with db.transaction(read_only=True) as s:
            open_loans = await s.scalar(
                select(func.count(Loan.id)).where(Loan.returned_at.is_(None))
            )
            copy = await s.scalar(select(Copy).where(Copy.barcode == "B1"))
            assert open_loans == 0 and copy is not None and copy.status == "on_shelf"


async def test_concurrent_checkouts_of_one_copy(db: Database) -> None:
    await make_world(db, readers=READERS)

    async def attempt(card: str) -> str:
        try:
            await lend(db, card, "B1")
            return "ok"
        except ServiceError as exc:
            return exc.key

    outcomes = await asyncio.gather(*(attempt(f"S{i}") for i in range(1, 11)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "copy.on_loan"}


async def test_taking_another_copy_releases_the_one_kept_on_the_hold_shelf(db: Database) -> None:
    world = await make_world(db, records={"r1": ("三体", ["B1", "B2"])}, readers=READERS)
    rec = world.record_pks["r1"]
    await lend(db, "S1", "B1")
    await lend(db, "S2", "B2")
    await reserve(db, world.reader_ids["S3"], rec)
    await reserve(db, world.reader_ids["S4"], rec)
    await give_back(db, "B1")  # kept for S3
    await give_back(db, "B2")  # kept for S4
    async with db.transaction() as s:  # S4 cancels: B2 goes back to the shelf
        (hold,) = await circ.holds_of(
            s, world.reader_ids["S4"], actor=await as_reader(s, world.reader_ids["S4"])
        )
        await circ.cancel_hold(
            s, actor=await as_reader(s, world.reader_ids["S4"]), hold_id=hold.hold_id, policy=POLICY
        )
    out = await lend(db, "S3", "B2")  # S3 takes the shelf copy instead of the one kept
    assert out.collected_hold
    async with db.transaction(read_only=True) as s:
        b1 = await s.scalar(select(Copy).where(Copy.barcode == "B1"))
        assert b1 is not None and b1.status == "on_shelf"
        assert (
            await circ.holds_of(
                s, world.reader_ids["S3"], actor=await as_reader(s, world.reader_ids["S3"])
            )
            == []
        )


async def test_refused_checkout_writes_nothing(db: Database) -> None:
    world = await make_world(
        db, records={f"r{i}": (f"书{i}", [f"B{i}"]) for i in range(1, 5)}, readers=READERS
    )
    for i in (1, 2, 3):
        await lend(db, "S1", f"B{i}")
    await lend(db, "S2", "B4")
    await reserve(db, world.reader_ids["S1"], world.record_pks["r4"])
    await give_back(db, "B4")  # ready for S1, who is at the limit
    with pytest.raises(ServiceError) as err:
        async with db.transaction() as s:
            try:
                await circ.checkout(s, actor=Actor.cli(), card_no="S1", barcode="B4", policy=POLICY)
            except ServiceError:
                await s.commit()  # even a caller that commits anyway finds nothing written
                raise
    assert err.value.key == "loan.limit_reached"
    async with db.transaction(read_only=True) as s:
        (hold,) = await circ.holds_of(
            s, world.reader_ids["S1"], actor=await as_reader(s, world.reader_ids["S1"])
        )
        assert hold.status == "ready"


async def test_one_reader_borrowing_two_titles_at_once_respects_the_limit(db: Database) -> None:
    await make_world(
        db, records={f"r{i}": (f"书{i}", [f"B{i}"]) for i in range(1, 7)}, readers=READERS
    )
    one_book = LoanPolicy(roles={"student": RolePolicy(1, 30, 1, 15, 1)})

    async def attempt(barcode: str) -> str:
        try:
            async with db.transaction() as s:
                await circ.checkout(
                    s, actor=Actor.cli(), card_no="S1", barcode=barcode, policy=one_book
                )
            return "ok"
        except ServiceError as exc:
            return exc.key

    outcomes = await asyncio.gather(*(attempt(f"B{i}") for i in range(1, 7)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "loan.limit_reached"}


async def test_the_cards_reserve_button_follows_place_holds_rule(db: Database) -> None:
    """Issue 19 item 4: hold_refusal is what place_hold refuses and what hides the card's 预约:
    at the hold limit (and with a stopped card) the card has no 预约 and says why."""
    records = {f"r{i}": (f"书{i}", [f"B{i}"]) for i in range(1, 6)}
    world = await make_world(db, records=records, readers=READERS)
    for i in range(1, 6):
        await lend(db, "S2" if i <= 3 else "S3", f"B{i}")  # every copy is out
    limit = POLICY.for_role("student").max_holds
    for i in range(1, limit + 1):
        await reserve(db, world.reader_ids["S1"], world.record_pks[f"r{i}"])
    last = world.record_pks[f"r{limit + 1}"]
    async with db.transaction(read_only=True) as s:
        card = await book_card(
            s, last, reader_id=world.reader_ids["S1"], shelf_map={}, policy=POLICY
        )
        free = await book_card(
            s, last, reader_id=world.reader_ids["S4"], shelf_map={}, policy=POLICY
        )
    assert not card.can_reserve and card.reserve_refusal is not None
    assert card.reserve_refusal.key == "hold.limit"
    assert free.can_reserve and free.reserve_refusal is None
    with pytest.raises(ServiceError) as refused:
        await reserve(db, world.reader_ids["S1"], last)
    assert refused.value.key == "hold.limit"
    # A stopped card: the same predicate, the same word.
    async with db.transaction() as s:
        await s.execute(update(Reader).where(Reader.card_no == "S4").values(active=False))
    async with db.transaction(read_only=True) as s:
        stopped = await book_card(
            s, last, reader_id=world.reader_ids["S4"], shelf_map={}, policy=POLICY
        )
    assert not stopped.can_reserve and stopped.reserve_refusal is not None
    assert stopped.reserve_refusal.key == "reader.inactive"
    with pytest.raises(ServiceError) as refused:
        await reserve(db, world.reader_ids["S4"], last)
    assert refused.value.key == "reader.inactive"
