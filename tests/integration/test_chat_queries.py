"""The chat's read models on SQLite and PostgreSQL: 我的借阅 with renewal refusals, 借阅历史 pages,
the book card's series neighbours and earliest due date."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from nlp.search import SearchEngine
from services import circulation as circ
from services.catalogue.card import book_card
from services.policy import LoanPolicy
from storage.db import Database
from storage.models import Record, utcnow
from tests.factories import make_world

POLICY = LoanPolicy()
READERS = {"S1": ("学生一", "student"), "S2": ("学生二", "student"), "T1": ("王老师", "teacher")}


async def lend(db: Database, card: str, barcode: str, **kw: object) -> circ.CheckoutResult:
    async with db.transaction() as s:
        return await circ.checkout(s, card_no=card, barcode=barcode, policy=POLICY, **kw)  # type: ignore[arg-type]


async def give_back(db: Database, barcode: str, **kw: object) -> None:
    async with db.transaction() as s:
        await circ.return_copy(s, barcode=barcode, policy=POLICY, **kw)  # type: ignore[arg-type]


async def test_loans_say_why_renewal_is_refused_and_keep_a_stable_order(db: Database) -> None:
    world = await make_world(
        db,
        records={
            "a": ("趣味数学第2讲", ["A1"]),
            "b": ("趣味数学第1讲", ["B1"]),
            "c": ("追风筝的人", ["C1"]),
            "d": ("三体", ["D1", "D2"]),
        },
        readers=READERS,
    )
    now = utcnow()
    lent = now - timedelta(days=2)
    # Two loans due the same day: by title; then an overdue one first.
    await lend(db, "T1", "A1", now=lent)
    await lend(db, "T1", "B1", now=lent)
    await lend(db, "T1", "D1", now=lent - timedelta(days=1))
    await lend(db, "T1", "C1", now=now - timedelta(days=70))  # last: overdue blocks lending
    await lend(db, "S2", "D2")
    async with db.transaction() as s:
        await circ.place_hold(
            s, reader_id=world.reader_ids["S1"], record_pk=world.record_pks["d"], policy=POLICY
        )
    async with db.transaction() as s:
        loans = await circ.loans_of(s, world.reader_ids["T1"], policy=POLICY)
        plain = await circ.loans_of(s, world.reader_ids["T1"])
    assert [v.title for v in loans] == ["追风筝的人", "三体", "趣味数学第1讲", "趣味数学第2讲"]
    reasons = {v.title: v.refusal.reason if v.refusal else None for v in loans}
    assert reasons == {
        "追风筝的人": "overdue",
        "三体": "others_waiting",
        "趣味数学第1讲": None,
        "趣味数学第2讲": None,
    }
    waiting = next(v for v in loans if v.title == "三体").refusal
    assert waiting is not None and waiting.params == {"waiting": 1}
    assert all(v.refusal is None for v in plain)  # no policy: nothing judged
    # Renewed up to the limit (two for teachers): the list says so, with the limit.
    first = next(v for v in loans if v.title == "趣味数学第1讲")
    for _ in range(2):
        async with db.transaction() as s:
            await circ.renew(
                s, reader_id=world.reader_ids["T1"], loan_id=first.loan_id, policy=POLICY
            )
    async with db.transaction() as s:
        after = await circ.loans_of(s, world.reader_ids["T1"], policy=POLICY)
    limited = next(v for v in after if v.loan_id == first.loan_id)
    assert limited.refusal is not None and limited.refusal.key == "renew.limit"
    assert limited.refusal.params == {"limit": 2}
    assert [v.title for v in after][-1] == "趣味数学第1讲"  # a fresh list goes by the new date


async def test_history_pages_newest_first_without_open_loans(db: Database) -> None:
    world = await make_world(
        db, records={"a": ("三体", ["A1"]), "b": ("活着", ["B1"])}, readers=READERS
    )
    start = utcnow() - timedelta(days=60)
    for i in range(5):
        await lend(db, "S1", "A1", now=start + timedelta(days=10 * i))
        await give_back(db, "A1", now=start + timedelta(days=10 * i + 3))
    await lend(db, "S1", "B1")  # still out: not history
    await lend(db, "S2", "A1")  # someone else's
    reader = world.reader_ids["S1"]
    async with db.transaction(read_only=True) as s:
        first = await circ.loan_history(s, reader, 0, page_size=2)
        last = await circ.loan_history(s, reader, 2, page_size=2)
        beyond = await circ.loan_history(s, reader, 99, page_size=2)
        nobody = await circ.loan_history(s, world.reader_ids["T1"], 0, page_size=2)
    assert (first.total, first.pages, first.page, first.first_number) == (5, 3, 0, 1)
    assert [v.title for v in first.loans] == ["三体", "三体"]
    assert first.loans[0].returned_at > first.loans[1].returned_at
    assert (first.loans[0].returned_at - first.loans[0].lent_at).days == 3
    assert len(last.loans) == 1 and last.first_number == 5
    assert last.loans[0].lent_at.date() == start.date()
    assert beyond.page == 2 and beyond.loans == last.loans  # past the end: the last page
    assert (nobody.total, nobody.pages, nobody.loans) == (0, 1, [])


SERIES = {
    "s1": ("三体", None, "中国科幻基石丛书"),
    "s2": ("三体Ⅱ", "黑暗森林", "中国科幻基石丛书"),
    "s3": ("三体Ⅲ", "死神永生", "中国科幻基石丛书"),
    "s4": ("球状闪电", None, "中国科幻基石丛书"),
    "p1": ("平凡的世界", "第一部", "茅盾文学奖获奖作品全集"),
    "p2": ("平凡的世界", "第二部", "茅盾文学奖获奖作品全集"),
    "p3": ("平凡的世界", "第三部", "茅盾文学奖获奖作品全集"),
    "h1": ("哈利·波特与魔法石", None, "哈利·波特"),
    "h2": ("哈利·波特与密室", None, "哈利·波特"),
    "x2": ("三体Ⅱ", "黑暗森林", "另一套书"),  # same title, another series: not a neighbour
}


async def test_series_neighbours_and_earliest_due(
    db: Database, search_engine: SearchEngine
) -> None:
    world = await make_world(
        db,
        records={key: (title, [key.upper()]) for key, (title, _, _) in SERIES.items()},
        readers=READERS,
    )
    async with db.transaction() as s:
        for key, (_, subtitle, series) in SERIES.items():
            await s.execute(
                update(Record)
                .where(Record.id == world.record_pks[key])
                .values(subtitle=subtitle, series=series)
            )
        await search_engine.rebuild_index(s)

    async def links(key: str) -> tuple[str | None, str | None]:
        async with db.transaction(read_only=True) as s:
            card = await book_card(s, world.record_pks[key], reader_id=None, shelf_map={})
        pks = {pk: k for k, pk in world.record_pks.items()}
        return (
            pks[card.series_previous.record_pk] if card.series_previous else None,
            pks[card.series_next.record_pk] if card.series_next else None,
        )

    assert await links("s1") == (None, "s2")
    assert await links("s2") == ("s1", "s3")
    assert await links("s3") == ("s2", None)
    assert await links("s4") == (None, None)
    assert await links("p2") == ("p1", "p3")
    assert await links("h1") == (None, None)
    assert await links("x2") == (None, None)

    # Every copy out: the card names the soonest due date; one back on the shelf: none.
    first = await lend(db, "S1", "S2", now=utcnow() - timedelta(days=20))
    await lend(db, "S2", "X2")
    async with db.transaction(read_only=True) as s:
        card = await book_card(s, world.record_pks["s2"], reader_id=None, shelf_map={})
        assert card.on_shelf == 0 and card.earliest_due == first.due_at
        assert card.series_previous is not None and card.series_previous.title == "三体"
        assert card.series_next is not None and card.series_next.title == "三体Ⅲ 死神永生"
    await give_back(db, "S2")
    async with db.transaction(read_only=True) as s:
        card = await book_card(s, world.record_pks["s2"], reader_id=None, shelf_map={})
        assert card.on_shelf == 1 and card.earliest_due is None
