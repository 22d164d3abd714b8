"""Search on both databases: every query kind, availability, hostile input, paging, re-indexing,
and the same answers from SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from nlp.search import MAX_TOTAL, SearchEngine, SearchResult
from storage.db import Database
from storage.models import Copy, CopyStatus, Record

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Book:
    record_id: str
    title: str
    authors: str | None = None
    publisher: str | None = None
    isbn: str | None = None
    clc: str | None = None
    call_number: str | None = None
    series: str | None = None
    original_title: str | None = None
    translators: str | None = None
    tags: str | None = None
    summary: str | None = None
    loans: int = 0
    copies: list[str] = field(default_factory=lambda: ["on_shelf"])
    subtitle: str | None = None
    pub_date: str = "2014-5"


HIGASHINO_SERIES = "新经典文库·东野圭吾作品"
CATALOGUE = [
    Book(
        "s:1",
        "解忧杂货店",
        "[日] 东野圭吾",
        "南海出版公司",
        isbn="9787544270878",
        series=HIGASHINO_SERIES,
        original_title="ナミヤ雑貨店の奇蹟",
        translators="李盈春",
        loans=30,
        copies=["on_shelf", "on_loan", "withdrawn", "lost"],
    ),
    Book("s:2", "白夜行", "[日] 东野圭吾", "南海出版公司", series=HIGASHINO_SERIES, loans=50),
    Book("s:3", "嫌疑人X的献身", "[日] 东野圭吾", "南海出版公司", series=HIGASHINO_SERIES),
    Book("s:4", "危险的维纳斯", "[日] 东野圭吾", "北京联合出版公司"),
    Book(
        "s:5",
        "追风筝的人",
        "[美] 卡勒德·胡赛尼",
        "上海人民出版社",
        isbn="9787208061644",
        clc="I712.45",
        call_number="I712.45/H52",
        original_title="The Kite Runner",
        loans=40,
        copies=["on_loan", "on_hold_shelf"],
    ),
    Book(
        "s:6",
        "活着",
        "余华",
        "作家出版社",
        isbn="9787506365437",
        clc="I247.57",
        call_number="I247.57/Y75(2)",
    ),
    Book("s:7", "许三观卖血记", "余华", "南海出版公司", clc="I247.5", call_number="I247.5/Y75-6"),
    Book(
        "s:8",
        "红楼梦",
        "[清] 曹雪芹 著 / 高鹗",
        "人民文学出版社",
        clc="I242.4",
        call_number="I242.4/532",
        loans=100,
    ),
    Book("s:9", "红楼梦", "曹雪芹", "岳麓书社", loans=10),
    Book("s:10", "红楼梦人物论", "王昆仑", "生活·读书·新知三联书店"),
    Book("s:11", "说红楼梦", "刘心武", "东方出版社"),
    Book(
        "s:12",
        "鸟哥的Linux私房菜",
        "鸟哥",
        "人民邮电出版社",
        clc="TP316.89",
        call_number="TP316.89/N38(2)",
    ),
    Book("s:13", "C程序设计语言", "Brian W. Kernighan", "机械工业出版社", clc="TP312C"),
    Book(
        "s:14",
        "小王子",
        "[法] 安东尼·德·圣-埃克苏佩里",
        "人民文学出版社",
        original_title="Le Petit Prince",
        isbn="9787544270052",  # ISBN-10 754427005X
    ),
    Book("s:15", "三国演义", "罗贯中", "人民文学出版社"),
    Book("s:16", "西游记", "吴承恩", "人民文学出版社"),
    Book("s:17", "围城", "钱锺书", "人民文学出版社", loans=5),
    Book("s:18", "围城", "钱锺书", "人民文学出版社", loans=20),
    Book("s:19", "中国历史通论", "王家范", "华东师范大学出版社"),
    Book("s:20", "The Art of Learning", "Josh Waitzkin", "Free Press", copies=[]),
]
RECORD_IDS = {book.title: book.record_id for book in CATALOGUE}


@dataclass
class Library:
    db: Database
    engine: SearchEngine


async def load_catalogue(lib: Library, books: list[Book] = CATALOGUE) -> dict[str, int]:
    """Insert the records and copies, then index them the way the importer does."""
    pks: dict[str, int] = {}
    async with lib.db.transaction() as session:
        for n, book in enumerate(books):
            record = Record(
                record_id=book.record_id,
                title=book.title,
                authors=book.authors,
                publisher=book.publisher,
                isbn=book.isbn,
                clc=book.clc,
                call_number=book.call_number,
                series=book.series,
                original_title=book.original_title,
                translators=book.translators,
                tags=book.tags,
                summary=book.summary,
                loan_count=book.loans,
                pub_date=book.pub_date,
                subtitle=book.subtitle,
            )
            session.add(record)
            await session.flush()
            pks[book.record_id] = record.id
            for c, status in enumerate(book.copies):
                session.add(Copy(barcode=f"B{n}-{c}", record_pk=record.id, status=status))
        await session.flush()
        await lib.engine.index_records(session, pks.values())
    return pks


async def find(lib: Library, query: str, *, limit: int = 10, offset: int = 0) -> SearchResult:
    async with lib.db.transaction(read_only=True) as session:
        return await lib.engine.search(session, query, limit=limit, offset=offset)


def ids(result: SearchResult) -> list[str]:
    return [hit.record_id for hit in result.hits]


@pytest.fixture
async def library(db: Database, search_engine: SearchEngine) -> Library:
    lib = Library(db, search_engine)
    await load_catalogue(lib)
    return lib


# (query, kind, record_ids of which one must be first)
FIRST_HIT = [
    ("解忧杂货店", "text", {"s:1"}),
    ("《解忧杂货店》", "text", {"s:1"}),
    ("杂货店", "text", {"s:1"}),
    ("解憂雜貨店", "text", {"s:1"}),
    ("　解忧，杂货店！ ", "text", {"s:1"}),
    ("ＪＩＥＹＯＵ ＺＡＨＵＯ ＤＩＡＮ", "text", {"s:1"}),
    ("jieyouzahuodian", "text", {"s:1"}),
    ("jie you za huo dian", "text", {"s:1"}),
    ("jyzhd", "text", {"s:1"}),
    ("hlm", "text", {"s:8"}),
    ("sgyy", "text", {"s:15"}),
    ("解优杂货店", "text", {"s:1"}),
    ("东野圭吾 解忧", "text", {"s:1"}),
    ("东野圭吾解忧", "text", {"s:1"}),
    ("危险 北京联合", "text", {"s:4"}),
    ("胡赛尼", "text", {"s:5"}),
    ("李盈春", "text", {"s:1"}),
    ("the kite runner", "text", {"s:5"}),
    ("THE KITE RUNNER", "text", {"s:5"}),
    ("Le Petit Prince", "text", {"s:14"}),
    ("9787544270878", "isbn", {"s:1"}),
    ("978-7-5442-7087-8", "isbn", {"s:1"}),
    ("7544270874", "isbn", {"s:1"}),
    ("７５４４２７００５Ｘ", "isbn", {"s:14"}),
    ("754427005x", "isbn", {"s:14"}),
    ("ISBN 978-7-208-06164-4", "isbn", {"s:5"}),
    ("I712.45/H52", "call_number", {"s:5"}),
    ("i712.45/h52", "call_number", {"s:5"}),
    ("I247.57/Y75", "call_number", {"s:6"}),
    ("art of learning", "text", {"s:20"}),
]


@pytest.mark.parametrize(("query", "kind", "expected"), FIRST_HIT)
async def test_first_hit(library: Library, query: str, kind: str, expected: set[str]) -> None:
    result = await find(library, query)
    assert result.kind == kind
    assert result.hits, query
    assert result.hits[0].record_id in expected, (query, ids(result))


async def test_author_finds_all_their_books_with_or_without_prefix(library: Library) -> None:
    for query in ("东野圭吾", "[日] 东野圭吾", "（日）东野圭吾"):
        result = await find(library, query)
        assert set(ids(result)[:4]) == {"s:1", "s:2", "s:3", "s:4"}, query
        assert ids(result)[0] == "s:2"  # same tier: the most borrowed first


async def test_series_lists_its_books(library: Library) -> None:
    result = await find(library, HIGASHINO_SERIES)
    assert set(ids(result)[:3]) == {"s:1", "s:2", "s:3"}


async def test_clc_class_lists_class_and_subclasses(library: Library) -> None:
    result = await find(library, "TP3")
    assert result.kind == "clc"
    assert set(ids(result)) == {"s:12", "s:13"}
    result = await find(library, "I247")
    assert result.kind == "clc"
    assert set(ids(result)) == {"s:6", "s:7"}
    result = await find(library, "I247.5")
    assert ids(result)[0] == "s:7"  # the class itself before its subclass I247.57


async def test_unknown_identifiers_find_nothing(library: Library) -> None:
    assert (await find(library, "I247.5/S77")).hits == []
    assert (await find(library, "I247.5/S77")).kind == "call_number"
    wrong_check_digit = await find(library, "9787544270879")
    assert (wrong_check_digit.kind, wrong_check_digit.total) == ("isbn", 0)
    # A class code nobody has falls back to text search.
    assert (await find(library, "Q1")).kind == "text"


async def test_ranking_exact_prefix_partial_and_popularity(library: Library) -> None:
    result = await find(library, "红楼梦")
    # Two exact titles (more borrowed first), then the prefix, then the title containing it.
    assert ids(result)[:4] == ["s:8", "s:9", "s:10", "s:11"]
    scores = [hit.score for hit in result.hits[:4]]
    assert scores[0] == scores[1] > scores[2] > scores[3]
    result = await find(library, "围城")
    assert ids(result)[:2] == ["s:18", "s:17"]  # equal titles: 20 loans before 5


async def test_availability_counts(library: Library) -> None:
    hit = (await find(library, "解忧杂货店")).hits[0]
    # on_shelf + on_loan held; withdrawn and lost no longer count.
    assert (hit.on_shelf, hit.copies) == (1, 2)
    kite = (await find(library, "追风筝的人")).hits[0]
    assert (kite.on_shelf, kite.copies) == (0, 2)
    art = (await find(library, "The Art of Learning")).hits[0]
    assert (art.on_shelf, art.copies) == (0, 0)
    assert hit.author == "[日] 东野圭吾"
    assert hit.publisher == "南海出版公司"
    assert hit.pub_date == "2014-5"


# Empty, 10,000 characters, only emoji, SQL and FTS syntax, control characters: shared with
# benchmarks/search.py, which measures how fast they come back.
HOSTILE = [
    json.loads(line)["query"]
    for line in (ROOT / "benchmarks" / "eval" / "hostile.jsonl").read_text("utf-8").splitlines()
]


async def test_hostile_input_is_harmless(library: Library) -> None:
    # How fast these come back is measured by benchmarks/search.py, not asserted here.
    for query in HOSTILE:
        result = await find(library, query)
        assert result.total <= MAX_TOTAL
        assert len(result.query) <= 100
    assert (await find(library, "😀😀😀")).kind == "empty"
    assert (await find(library, "")).kind == "empty"


async def test_paging_is_consistent(library: Library) -> None:
    whole = await find(library, "人民", limit=50)
    assert whole.total >= 5
    pages = []
    for offset in range(0, whole.total, 2):
        page = await find(library, "人民", limit=2, offset=offset)
        assert page.total == whole.total
        pages.extend(ids(page))
    assert pages == ids(whole)[: whole.total]
    assert (await find(library, "人民", offset=1000)).hits == []


async def test_title_change_is_reindexed(library: Library) -> None:
    pk = (await find(library, "白夜行")).hits[0].record_pk
    async with library.db.transaction() as session:
        await session.execute(update(Record).where(Record.id == pk).values(title="幻夜"))
        await library.engine.index_records(session, [pk])
    assert ids(await find(library, "幻夜"))[0] == "s:2"
    assert "s:2" not in ids(await find(library, "白夜行"))
    assert ids(await find(library, "huanye"))[0] == "s:2"


async def test_rebuild_gives_the_same_answers(library: Library) -> None:
    before = [ids(await find(library, q)) for q, _, _ in FIRST_HIT]
    async with library.db.transaction() as session:
        assert await library.engine.rebuild_index(session) == len(CATALOGUE)
    after = [ids(await find(library, q)) for q, _, _ in FIRST_HIT]
    assert before == after


async def test_deleted_record_disappears(library: Library) -> None:
    pk = (await find(library, "西游记")).hits[0].record_pk
    async with library.db.transaction() as session:
        await session.execute(delete(Copy).where(Copy.record_pk == pk))
        await session.execute(delete(Record).where(Record.id == pk))
    # Stale index rows are ignored until the record is re-indexed...
    assert "s:16" not in ids(await find(library, "西游记"))
    async with library.db.transaction() as session:
        assert await library.engine.index_records(session, [pk]) == 0  # ...which drops them.
    assert (await find(library, "xyj")).hits == []


COMPARED = [q for q, _, _ in FIRST_HIT] + ["东野圭吾", "红楼梦", "人民", "TP3", "中国", "围城"]


@pytest.mark.postgres
async def test_sqlite_and_postgresql_agree(
    sqlite_template: object, pg_database: str, tmp_path: object, search_engine: SearchEngine
) -> None:
    import shutil
    from pathlib import Path

    from tests.conftest import truncate_all

    assert isinstance(sqlite_template, Path) and isinstance(tmp_path, Path)
    target = tmp_path / "agree.sqlite3"
    shutil.copyfile(sqlite_template, target)
    lite = Library(Database(f"sqlite+aiosqlite:///{target}"), search_engine)
    pg = Library(Database(pg_database), search_engine)
    try:
        await truncate_all(pg.db)
        await load_catalogue(lite)
        await load_catalogue(pg)
        for query in COMPARED:
            a, b = await find(lite, query), await find(pg, query)
            assert (a.kind, a.total) == (b.kind, b.total), query
            assert [(h.record_id, h.score, h.on_shelf, h.copies) for h in a.hits] == [
                (h.record_id, h.score, h.on_shelf, h.copies) for h in b.hits
            ], query
    finally:
        await lite.db.dispose()
        await pg.db.dispose()


@pytest.mark.parametrize("status", [s.value for s in CopyStatus])
async def test_every_copy_status_is_counted_sensibly(
    db: Database, search_engine: SearchEngine, status: str
) -> None:
    lib = Library(db, search_engine)
    await load_catalogue(lib, [Book("c:1", "测试书", copies=[status, "on_shelf"])])
    hit = (await find(lib, "测试书")).hits[0]
    gone = status in (CopyStatus.WITHDRAWN.value, CopyStatus.LOST.value)
    assert hit.copies == (1 if gone else 2)
    assert hit.on_shelf == (2 if status == CopyStatus.ON_SHELF.value else 1)
