"""Recommendations on small fixed histories, through the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from services import circulation
from services.actor import Actor
from services.imports.catalogue import ImportRejected
from services.imports.loan_history import import_loans
from services.notifications import Action
from services.notifications.render import render
from services.readers.binding import bind_telegram, issue_codes
from services.reading_lists import add_to_list, create_list, schedule_send, send_due_lists
from services.recommend.model import (
    SHELF_LOOKAHEAD,
    context_for,
    fit,
    on_shelf_records,
    reader_by_card,
    recommend_for,
)
from services.recommend.reasons import reasons_text
from services.recommend.weekly import (
    WEEKLY_KIND,
    compose_weekly,
    enqueue_weekly,
    fewer_books,
    subscribe_topic,
    unsubscribe_weekly,
)
from storage.db import Database
from storage.models import Copy, CopyStatus, Notification, PastLoan, Reader, Record
from tests.factories import POLICY, give_back, lend

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=200)

# record_id -> (title, authors, clc, tags, copies' statuses, catalogued at)
BOOKS: dict[str, tuple[str, str, str, str, list[CopyStatus], datetime]] = {
    "sf1": ("三体", "刘慈欣", "I247.55", "科幻;小说", [CopyStatus.ON_SHELF], OLD),
    "sf2": ("球状闪电", "刘慈欣", "I247.55", "科幻;小说", [CopyStatus.ON_SHELF], OLD),
    "sf3": ("银河帝国：基地", "[美] 阿西莫夫", "I712.45", "科幻;经典", [CopyStatus.ON_SHELF], OLD),
    "cl1": ("红楼梦", "曹雪芹", "I242.47", "古典文学;名著", [CopyStatus.ON_SHELF], OLD),
    "cl2": ("水浒传", "施耐庵", "I242.4", "古典文学;名著", [CopyStatus.ON_SHELF], OLD),
    "ma1": ("数学分析习题集", "吉米多维奇", "O17", "数学", [CopyStatus.ON_SHELF], OLD),
    # This week's new books.
    "new_sf": ("流浪地球", "刘慈欣", "I247.55", "科幻;小说", [CopyStatus.IN_TRANSIT], NOW),
    "new_cl": ("西游记", "吴承恩", "I242.4", "古典文学;名著", [CopyStatus.IN_TRANSIT], NOW),
    "new_ma": ("高等数学", "同济大学数学系", "O13", "数学;教材", [CopyStatus.IN_TRANSIT], NOW),
    "new_gone": ("三体全集", "刘慈欣", "I247.55", "科幻;小说", [CopyStatus.WITHDRAWN], NOW),
}
READERS = {
    # card: (name, grade, class)
    "S1": ("科幻迷", "高一", "高一(3)班"),
    "S2": ("红迷", "高一", "高一(3)班"),
    "S3": ("同班", "高一", "高一(3)班"),
    "S4": ("新生", "高一", "高一(5)班"),
}


async def build_library(db: Database) -> dict[str, int]:
    pks: dict[str, int] = {}
    async with db.transaction() as s:
        for record_id, (title, authors, clc, tags, statuses, at) in BOOKS.items():
            rec = Record(
                record_id=record_id,
                title=title,
                authors=authors,
                clc=clc,
                tags=tags,
                catalogued_at=at,
            )
            s.add(rec)
            await s.flush()
            pks[record_id] = rec.id
            for n, status in enumerate(statuses):
                s.add(Copy(barcode=f"{record_id}-{n}", record_pk=rec.id, status=status.value))
        for card, (name, grade, klass) in READERS.items():
            s.add(Reader(card_no=card, name=name, role="student", grade=grade, class_name=klass))
    return pks


async def history(db: Database) -> None:
    """S1 reads 科幻, S2 reads 名著; S3 (S1's classmate) has 球状闪电 out this month."""
    await lend(db, "S1", "sf1-0", now=OLD)
    await give_back(db, "sf1-0", now=OLD + timedelta(days=10))
    await lend(db, "S2", "cl1-0", now=OLD)
    await give_back(db, "cl1-0", now=OLD + timedelta(days=10))
    await lend(db, "S3", "sf2-0", now=NOW - timedelta(days=3))


async def bind_all(db: Database) -> None:
    async with db.transaction() as s:
        codes = await issue_codes(s, policy=POLICY, card_nos=list(READERS))
        for n, code in enumerate(codes):
            await bind_telegram(s, code=code.code, telegram_user_id=7000 + n, chat_id=7000 + n)


async def test_weekly_ranking_rules(db: Database) -> None:
    pks = await build_library(db)
    await history(db)
    await bind_all(db)
    async with db.transaction() as s:
        model = await fit(s)
        messages = {m.reader.card_no: m for m in await compose_weekly(s, model, now=NOW)}
    titles = {card: [b.title for b in m.books] for card, m in messages.items()}
    # A reader of 科幻 gets the new 科幻 book first; a reader of 名著 the new 名著.
    assert titles["S1"][0] == "流浪地球"
    assert titles["S2"][0] == "西游记"
    # Withdrawn books are never offered, and the list holds only this week's books.
    for books in titles.values():
        assert "三体全集" not in books
        assert set(books) <= {"流浪地球", "西游记", "高等数学"}
    # The reason is shown in words.
    first = messages["S1"].books[0]
    assert first.record_pk == pks["new_sf"]
    assert "因为你借过《三体》" in reasons_text(first.reasons)
    # A reader with no loans gets the grade's favourites among the new books.
    assert titles["S4"][0] in {"流浪地球", "西游记"}
    assert "同年级同学喜欢的新书" in reasons_text(messages["S4"].books[0].reasons)


async def test_recommend_never_borrowed_never_off_shelf_and_class_reason(db: Database) -> None:
    await build_library(db)
    await history(db)
    async with db.transaction() as s:
        model = await fit(s)
        s1 = await reader_by_card(s, "S1")
        assert s1 is not None
        ranked = await recommend_for(s, model, s1, n=10, now=NOW)
        titles = [model.items[r.pk].title for r in ranked]
    assert "三体" not in titles  # borrowed before
    # On the shelf now only: 球状闪电 is out with S3, new books are not shelved yet.
    assert "球状闪电" not in titles and "流浪地球" not in titles
    assert titles[0] == "银河帝国：基地"

    # Once 球状闪电 is back it comes first, with the classmate as a reason.
    await give_back(db, "sf2-0", now=NOW - timedelta(days=1))
    async with db.transaction() as s:
        s1 = await reader_by_card(s, "S1")
        assert s1 is not None
        ranked = await recommend_for(s, model, s1, n=3, now=NOW)
    assert model.items[ranked[0].pk].title == "球状闪电"
    words = reasons_text([r.as_dict() for r in ranked[0].reasons])
    assert "高一(3)班 1 位同学在读" in words

    # A loan made after the model was fitted is still never recommended.
    await lend(db, "S1", "sf3-0", now=NOW)
    async with db.transaction() as s:
        s1 = await reader_by_card(s, "S1")
        assert s1 is not None
        ranked = await recommend_for(s, model, s1, n=10, now=NOW)
    assert "银河帝国：基地" not in [model.items[r.pk].title for r in ranked]


async def test_recommend_looks_past_a_head_that_is_all_off_the_shelf(db: Database) -> None:
    await build_library(db)
    await history(db)
    async with db.transaction() as s:
        model = await fit(s)
        s1 = await reader_by_card(s, "S1")
        assert s1 is not None
        ctx = await context_for(s, model, s1, now=NOW)
        ranking = model.ranking(ctx, reader=s1.reader_id, n=1)
        everything = ranking.head(len(ranking))
        assert len(everything) > SHELF_LOOKAHEAD
        # The first books the bot looks at (SHELF_LOOKAHEAD for the one asked) are all out.
        out = everything[:SHELF_LOOKAHEAD]
        await s.execute(
            update(Copy).where(Copy.record_pk.in_(out)).values(status=CopyStatus.ON_LOAN.value)
        )
    async with db.transaction(read_only=True) as s:
        shelf = await on_shelf_records(s)
        expected = [pk for pk in everything if pk in shelf][:1]
        assert expected
        # The bot's path (shelf looked up for the head) and the CLI's (whole shelf) agree.
        bot = await recommend_for(s, model, s1, n=1, now=NOW)
        cli = await recommend_for(s, model, s1, n=1, now=NOW, shelf=shelf)
    assert [r.pk for r in bot] == [r.pk for r in cli] == expected


async def test_subscription_lifts_a_followed_subject(db: Database) -> None:
    await build_library(db)
    await history(db)
    await bind_all(db)
    async with db.transaction() as s:
        s2 = await reader_by_card(s, "S2")
        assert s2 is not None
        assert await subscribe_topic(s, s2.reader_id, "数学")
        assert not await subscribe_topic(s, s2.reader_id, " 数学 ")
        model = await fit(s)
        messages = {m.reader.card_no: m for m in await compose_weekly(s, model, now=NOW)}
    first = messages["S2"].books[0]
    assert first.title == "高等数学"
    assert "你关注了「数学」" in reasons_text(first.reasons)


async def test_weekly_queued_once_per_week_and_preferences(db: Database) -> None:
    await build_library(db)
    await history(db)
    await bind_all(db)
    async with db.transaction() as s:
        model = await fit(s)
        assert await enqueue_weekly(s, Actor.system(), model, now=NOW) == 4
        assert await enqueue_weekly(s, Actor.system(), model, now=NOW + timedelta(hours=2)) == 0
        s1 = await reader_by_card(s, "S1")
        s2 = await reader_by_card(s, "S2")
        assert s1 is not None and s2 is not None
        await unsubscribe_weekly(s, s1.reader_id)
        assert await fewer_books(s, s2.reader_id) == 2
    next_week = NOW + timedelta(days=7)
    async with db.transaction() as s:
        await s.execute(update(Record).values(catalogued_at=next_week))
        model = await fit(s)
        assert await enqueue_weekly(s, Actor.system(), model, now=next_week) == 3
        rows = (
            await s.execute(
                select(Notification.reader_id, Notification.payload).where(
                    Notification.kind == WEEKLY_KIND, Notification.dedupe_key.like("%W49")
                )
            )
        ).all()
    by_reader = {reader_id: payload for reader_id, payload in rows}
    assert s1.reader_id not in by_reader
    assert len(by_reader[s2.reader_id]["books"]) == 2


async def test_librarian_picks_go_first_and_lists_reach_their_audience(db: Database) -> None:
    await build_library(db)
    await history(db)
    await bind_all(db)
    async with db.transaction() as s:
        await create_list(s, Actor.system(), "我爱名著")
        _, record, added = await add_to_list(
            s, Actor.system(), "我爱名著", "new_ma-0", blurb="期末复习必备"
        )
        assert added and record.title == "高等数学"
        await add_to_list(s, Actor.system(), "我爱名著", "cl2-0", blurb="梁山好汉")
        model = await fit(s)
        messages = {m.reader.card_no: m for m in await compose_weekly(s, model, now=NOW)}
    first = messages["S1"].books[0]
    assert first.title == "高等数学"
    assert "馆员推荐：期末复习必备" in reasons_text(first.reasons)

    async with db.transaction() as s:
        await schedule_send(
            s, Actor.system(), "我爱名著", grades=[], classes=["高一（5）班"], at=NOW
        )
        await schedule_send(
            s, Actor.system(), "我爱名著", grades=["高一"], classes=[], at=NOW + timedelta(days=3)
        )
        assert (
            await send_due_lists(s, Actor.system(), now=NOW) == 1
        )  # S4 only; the other send is not due
        assert await send_due_lists(s, Actor.system(), now=NOW) == 0
        assert await send_due_lists(s, Actor.system(), now=NOW + timedelta(days=3)) == 4
        count = await s.scalar(
            select(func.count(Notification.id)).where(Notification.kind == "reading_list")
        )
    assert count == 5


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_import_loans_matches_titles_and_is_idempotent(db: Database, tmp_path: Path) -> None:
    await build_library(db)
    async with db.transaction() as s:
        s.add(Record(record_id="dup1", title="红楼梦", authors="曹雪芹"))  # a second 红楼梦
    good = write(
        tmp_path / "loans.csv",
        "card_no,title,isbn,barcode,record_id,lent_at,returned_at\n"
        "S1,三体 / 刘慈欣著,,,,2024-09-01,2024-09-20\n"
        'S1,"球状闪电 : 长篇科幻小说",,,,2024/10/01,\n'
        "S2,,,cl2-0,,2024-09-03,\n"
        "S2,,,,ma1,,\n",
    )
    bad = write(
        tmp_path / "bad.csv",
        "card_no,title,lent_at\nS1,三体,2024-09-01\nS1,红楼梦,2024-09-02\nS9,三体,\nS2,不存在的书,\n"
        "S2,水浒传,yesterday\n",
    )
    with pytest.raises(ImportRejected) as rejected:
        async with db.transaction() as s:
            await import_loans(s, bad)
    problems = {p.line: p.reason for p in rejected.value.problems}
    assert set(problems) == {3, 4, 5, 6}
    assert "对应 2 条记录" in problems[3]
    assert "S9" in problems[4] and "不存在的书" in problems[5] and "yesterday" in problems[6]
    async with db.transaction() as s:
        assert await s.scalar(select(func.count(PastLoan.id))) == 0

    async with db.transaction() as s:
        report = await import_loans(s, good)
    assert (report.rows, report.added, report.unchanged) == (4, 4, 0)
    async with db.transaction() as s:
        report = await import_loans(s, good)
    assert (report.added, report.unchanged) == (0, 4)
    async with db.transaction() as s:
        report = await import_loans(s, bad, skip_bad=True)
    assert report.added == 0 and report.unchanged == 1 and len(report.skipped) == 4

    # Imported history feeds recommendations: S1 read 三体 and 球状闪电 before.
    async with db.transaction() as s:
        model = await fit(s)
        s1 = await reader_by_card(s, "S1")
        assert s1 is not None
        ranked = await recommend_for(s, model, s1, n=3, now=NOW)
    titles = [model.items[r.pk].title for r in ranked]
    assert titles[0] == "银河帝国：基地" and "三体" not in titles and "球状闪电" not in titles


async def test_weekly_list_offers_reserve_only_where_place_hold_would_take_it(
    db: Database,
) -> None:
    """Issue 19 item 4: a new book on the shelf gets no 预约 N (place_hold would say 直接去借)
    but a line saying so; a new book not on the shelf yet keeps its 预约 N."""
    await build_library(db)
    await history(db)
    await bind_all(db)
    async with db.transaction() as s:
        model = await fit(s)
        messages = await compose_weekly(s, model, now=NOW)
        shelved = messages[0].books[0].record_pk  # this one is on the shelf already
        await s.execute(
            update(Copy).where(Copy.record_pk == shelved).values(status=CopyStatus.ON_SHELF.value)
        )
        assert await enqueue_weekly(s, Actor.system(), model, now=NOW) == len(messages)
        payloads = list(
            await s.scalars(select(Notification.payload).where(Notification.kind == WEEKLY_KIND))
        )
        refusals = {}
        for payload in payloads:
            for book in payload["books"]:
                refused = await circulation.title_hold_refusal(
                    s, await s.get_one(Record, book["record_pk"])
                )
                refusals[book["record_pk"]] = refused.key if refused else None
    assert refusals[shelved] == "hold.on_shelf" and None in refusals.values()
    for payload in payloads:
        shown = render(WEEKLY_KIND, payload, ZoneInfo("UTC"))
        reserve = {b.ref for row in shown.item_rows for b in row if b.action == Action.RESERVE}
        for book in payload["books"]:
            pk = book["record_pk"]
            assert (pk in reserve) == (refusals[pk] is None), book["title"]
            assert (book["no_reserve"] == "on_shelf") == (refusals[pk] == "hold.on_shelf")
        on_shelf = sum(1 for book in payload["books"] if book["no_reserve"] == "on_shelf")
        assert shown.text.count("书架上有，直接去借") == on_shelf
