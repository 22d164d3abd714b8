"""The desk's services on migrated SQLite and PostgreSQL: codes in any case or width, a scanned
copy's state, finding readers by card, name or name + class, the hold shelf, refusals that say
who has the book or what a reader at the limit has out, and the hold-ready notice at the limit."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from services import circulation as circ
from services.codes import clean_code, may_be_code
from services.errors import ServiceError
from services.imports.rows import CatalogueRow, ReaderRow
from services.notifications.render import render
from services.policy import LoanPolicy
from storage.db import Database
from storage.models import Copy, Loan, Notification, Reader, Record, utcnow
from tests.factories import make_world

POLICY = LoanPolicy()
TZ = ZoneInfo(POLICY.timezone)
READERS = {
    "S1": ("王小明", "student"),
    "S2": ("王小明", "student"),
    "S3": ("李华", "student"),
    "S4": ("王小红", "student"),
    "T1": ("陈老师", "teacher"),
}
RECORDS = {
    "r1": ("追风筝的人", ["B1"]),
    "r2": ("三体", ["B2"]),
    "r3": ("解忧杂货店", ["B3"]),
    "r4": ("活着", ["B4"]),
    "r5": ("围城", ["B5"]),
}


async def world(db: Database) -> dict[str, int]:
    made = await make_world(db, records=RECORDS, readers=READERS)
    async with db.transaction() as s:
        # Two students called 王小明, in different classes; 李华 with a lower-case stored card.
        await s.execute(update(Reader).where(Reader.card_no == "S2").values(class_name="初二(3)班"))
        await s.execute(update(Reader).where(Reader.card_no == "S3").values(card_no="s3x"))
        await s.execute(update(Copy).where(Copy.barcode == "B5").values(barcode="b5 "))
        await s.execute(update(Record).where(Record.title == "三体").values(call_number="I247.5/1"))
    return made.reader_ids


async def lend(db: Database, card: str, barcode: str) -> circ.CheckoutResult:
    async with db.transaction() as s:
        return await circ.checkout(s, card_no=card, barcode=barcode, policy=POLICY)


def test_clean_code() -> None:
    assert clean_code(" b0012\n") == "B0012"
    assert clean_code("Ｂ００１２\u3000") == "B0012"  # full width from a Chinese IME
    assert clean_code("s-1") == "S-1"
    # Only code-like text is worth the slow fallback look-up.
    assert may_be_code("B0012") and may_be_code("2024-001")
    assert not may_be_code("SANTI") and not may_be_code("王小明") and not may_be_code("")


async def test_codes_match_whatever_the_case_width_or_spaces(db: Database) -> None:
    await world(db)
    done = await lend(db, " ｓ１ ", "ｂ１\u3000")
    assert (done.card_no, done.barcode) == ("S1", "B1")
    # Stored before imports cleaned codes: still found.
    done = await lend(db, "S3X", "B5")
    assert (done.card_no, done.barcode) == ("s3x", "b5 ")
    async with db.transaction() as s:
        back = await circ.return_copy(s, barcode="b1", policy=POLICY)
    assert back.barcode == "B1"
    with pytest.raises(ServiceError) as err:
        await lend(db, "S9", "B2")
    assert err.value.key == "reader.not_found"


def test_imports_store_clean_codes() -> None:
    row = CatalogueRow.model_validate(
        {"record_id": "x1", "title": "书", "barcodes": "ｂ０１; b02 "}
    )
    assert row.barcodes == ("B01", "B02")
    reader = ReaderRow.model_validate({"card_no": " s０１ ", "name": "张三"})
    assert reader.card_no == "S01"


async def test_copy_state_on_shelf_lent_and_on_the_hold_shelf(db: Database) -> None:
    ids = await world(db)
    async with db.transaction(read_only=True) as s:
        state = await circ.copy_state(s, POLICY, barcode="b2")
        assert state is not None and state.status == "on_shelf"
        assert (state.title, state.call_number, state.borrower) == ("三体", "I247.5/1", None)
        assert await circ.copy_state(s, POLICY, barcode="NOPE") is None
    await lend(db, "S1", "B2")
    async with db.transaction(read_only=True) as s:
        state = await circ.copy_state(s, POLICY, barcode="B2")
    assert state is not None and state.borrower is not None
    assert state.borrower.card_no == "S1" and state.due_at is not None and not state.overdue

    async with db.transaction() as s:
        await circ.place_hold(s, reader_id=ids["S4"], record_pk=state.record_pk, policy=POLICY)
        await circ.return_copy(s, barcode="B2", policy=POLICY)
    async with db.transaction(read_only=True) as s:
        kept = await circ.copy_state(s, POLICY, copy_id=state.copy_id)
    assert kept is not None and kept.held_for is not None and kept.held_for.card_no == "S4"
    assert kept.ready_until is not None and not kept.held_for_at_limit


async def test_on_loan_refusal_says_to_whom_and_until_when(db: Database) -> None:
    await world(db)
    done = await lend(db, "S2", "B1")
    with pytest.raises(ServiceError) as err:
        await lend(db, "S1", "B1")
    assert err.value.key == "copy.on_loan"
    text = err.value.render()
    due = done.due_at.astimezone(TZ).strftime("%Y-%m-%d")
    assert "王小明（初二(3)班，证号 S2）" in text and due in text, text


async def test_find_readers_by_card_name_and_class(db: Database) -> None:
    await world(db)
    async with db.transaction(read_only=True) as s:

        async def cards(query: str) -> list[str]:
            return [p.card_no for p in await circ.find_readers(s, query)]

        assert await cards("s1") == ["S1"]
        assert await cards("Ｓ１") == ["S1"]
        assert sorted(await cards("王小明")) == ["S1", "S2"]
        assert await cards("王小明 初二(3)班") == ["S2"]
        assert await cards("初二3班 王小明") == ["S2"]
        assert await cards("王小明 初二（3）班") == ["S2"]
        assert await cards("王小明 高一(1)班") == ["S1"]
        assert await cards("王小明 初三(1)班") == []
        # Typed as one word: a class the school has, at either end.
        assert await cards("王小明初二(3)班") == ["S2"]
        assert await cards("王小明初二3班") == ["S2"]
        assert await cards("初二（3）班王小明") == ["S2"]
        assert await cards("王小明高一(1)班") == ["S1"]
        assert await cards("王小明初三(1)班") == []  # no such class: nothing, not a guess
        assert await cards("李") == ["s3x"]  # part of a name, when no name matches exactly
        assert await cards("nobody") == []


async def test_limit_refusal_lists_what_is_out(db: Database) -> None:
    await world(db)
    for barcode in ("B1", "B2", "B3"):
        await lend(db, "S1", barcode)
    with pytest.raises(ServiceError) as err:
        await lend(db, "S1", "B4")
    assert err.value.key == "loan.limit_reached" and err.value.params["limit"] == 3
    text = err.value.render()
    assert "借满 3 本" in text and "《三体》" in text and "《追风筝的人》" in text
    assert "请先还一本" in text


async def test_hold_ready_for_a_reader_at_the_limit_says_return_one_first(db: Database) -> None:
    ids = await world(db)
    await lend(db, "S4", "B1")
    for barcode in ("B2", "B3", "B4"):
        await lend(db, "S1", barcode)
    async with db.transaction() as s:
        record_pk = await s.scalar(select(Record.id).where(Record.title == "追风筝的人"))
        assert record_pk is not None
        await circ.place_hold(s, reader_id=ids["S1"], record_pk=record_pk, policy=POLICY)
        await circ.return_copy(s, barcode="B1", policy=POLICY)
    async with db.transaction(read_only=True) as s:
        note = await s.scalar(select(Notification).where(Notification.kind == "hold_ready"))
        assert note is not None and note.payload["at_limit"] is True
        state = await circ.copy_state(s, POLICY, barcode="B1")
    assert state is not None and state.held_for_at_limit
    text = render("hold_ready", note.payload, TZ).text
    assert "取书前请先还一本" in text and "已借满 3 本" in text
    # Not at the limit: the usual notice.
    plain = dict(note.payload, at_limit=False)
    assert "取书前请先还一本" not in render("hold_ready", plain, TZ).text


async def test_hold_shelf_oldest_first_and_paged(db: Database) -> None:
    records = {f"h{i:02d}": (f"书{i:02d}", [f"H{i:02d}"]) for i in range(12)}
    readers = {f"P{i:02d}": (f"读者{i:02d}", "student") for i in range(12)}
    made = await make_world(db, records=records, readers=readers)
    async with db.transaction() as s:
        for i in range(12):
            copy = await s.scalar(select(Copy).where(Copy.barcode == f"H{i:02d}"))
            assert copy is not None
            await s.execute(update(Copy).where(Copy.id == copy.id).values(status="on_loan"))
            await circ.place_hold(
                s,
                reader_id=made.reader_ids[f"P{i:02d}"],
                record_pk=copy.record_pk,
                policy=POLICY,
            )
    # Copies come back one by one: the first back is the first to run out.
    start = utcnow()
    for i in range(12):
        async with db.transaction() as s:
            copy = await s.scalar(select(Copy).where(Copy.barcode == f"H{i:02d}"))
            assert copy is not None
            record = await s.get_one(Record, copy.record_pk)
            await circ.pass_copy_on(s, copy, record, POLICY, start + timedelta(days=i))
    async with db.transaction(read_only=True) as s:
        first = await circ.hold_shelf(s, 0)
        second = await circ.hold_shelf(s, 1)
    assert (first.total, first.pages, len(first.items), len(second.items)) == (12, 2, 10, 2)
    titles = [i.title for i in first.items + second.items]
    assert titles == [f"书{i:02d}" for i in range(12)]
    assert [i.reader.card_no for i in first.items][:2] == ["P00", "P01"]


async def test_lend_refusal_is_what_checkout_refuses_and_what_the_desk_offers(
    db: Database,
) -> None:
    """Issue 19 item 4: one predicate (lend_refusal) for checkout and the desk's 借出 buttons:
    a stopped card, an overdue book, the limit; and the second copy of a title the desk asks
    about (title_already_out_to)."""
    ids = await world(db)
    for barcode in ("B1", "B2", "B3"):
        await lend(db, "S1", barcode)
    await lend(db, "S4", "B4")
    async with db.transaction() as s:
        await s.execute(update(Reader).where(Reader.card_no == "T1").values(active=False))
        overdue = await circ.reader_by_card(s, "S4")
        await s.execute(
            update(Loan)
            .where(Loan.reader_id == overdue.id)
            .values(due_at=utcnow() - timedelta(days=2))
        )
    expected = {
        "S1": "loan.limit_reached",
        "S4": "loan.has_overdue",
        "T1": "reader.inactive",
        "S2": None,
    }
    for card, key in expected.items():
        async with db.transaction(read_only=True) as s:
            reader = await circ.reader_by_card(s, card)
            refusal = await circ.lend_refusal(s, reader, POLICY)
            view = await circ.reader_desk(s, ids[card], POLICY)
        assert (refusal.key if refusal else None) == key, card
        assert (view.cannot_lend.key if view.cannot_lend else None) == key, card
        if key is None:
            continue
        async with db.transaction() as s:
            with pytest.raises(ServiceError) as refused:
                await circ.checkout(s, card_no=card, barcode="b5", policy=POLICY)
        assert refused.value.key == key, card
    # What a reader has of a title: the desk asks before lending them another copy.
    async with db.transaction(read_only=True) as s:
        record_pk = await s.scalar(select(Record.id).where(Record.title == "三体"))
        assert record_pk is not None
        assert await circ.title_already_out_to(s, ids["S1"], record_pk) == ["B2"]
        assert await circ.title_already_out_to(s, ids["S2"], record_pk) == []
