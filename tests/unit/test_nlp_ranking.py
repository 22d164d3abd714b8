"""Query analysis and ranking order on small fixed catalogues (SQLite)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nlp.index import Indexer, terms_of
from nlp.search import SearchEngine, SearchResult, Unit, query_units
from nlp.segment import Segmenter
from storage.db import Database
from storage.models import Record
from tests.conftest import JIEBA_CACHE


@dataclass
class Lite:
    db: Database
    engine: SearchEngine


@pytest.fixture
async def lite(
    sqlite_template: Path, tmp_path: Path, search_engine: SearchEngine
) -> AsyncIterator[Lite]:
    target = tmp_path / "rank.sqlite3"
    shutil.copyfile(sqlite_template, target)
    database = Database(f"sqlite+aiosqlite:///{target}")
    yield Lite(database, search_engine)
    await database.dispose()


async def add(lib: Lite, *books: tuple[str, str | None, int]) -> list[int]:
    """(title, authors, loan_count) each; returns pks in order."""
    pks = []
    async with lib.db.transaction() as session:
        for n, (title, authors, loans) in enumerate(books):
            record = Record(record_id=f"r:{n}", title=title, authors=authors, loan_count=loans)
            session.add(record)
            await session.flush()
            pks.append(record.id)
        await lib.engine.index_records(session, pks)
    return pks


async def find(lib: Lite, query: str, **kwargs: int) -> SearchResult:
    async with lib.db.transaction(read_only=True) as session:
        return await lib.engine.search(session, query, **kwargs)


def titles(result: SearchResult) -> list[str]:
    return [hit.title for hit in result.hits]


async def test_exact_before_prefix_before_contains_before_partial(lite: Lite) -> None:
    await add(
        lite,
        ("说红楼梦", None, 900),  # contains the query
        ("红楼梦人物论", None, 500),  # starts with it
        ("红楼", None, 999),  # matches part of it
        ("红楼梦", None, 0),  # the exact title, never borrowed
        ("梦红楼", None, 999),  # all bigrams? no: 红楼 and 楼梦 vs 梦红, 红楼
    )
    result = await find(lite, "红楼梦")
    assert titles(result)[:3] == ["红楼梦", "红楼梦人物论", "说红楼梦"]
    assert result.hits[0].score > result.hits[1].score > result.hits[2].score


async def test_popularity_breaks_ties_then_record_pk(lite: Lite) -> None:
    pks = await add(lite, ("围城", None, 5), ("围城", None, 20), ("围城", None, 5))
    result = await find(lite, "围城")
    assert [hit.record_pk for hit in result.hits] == [pks[1], pks[0], pks[2]]


async def test_order_is_deterministic_and_pages_agree(lite: Lite) -> None:
    await add(lite, *[(f"中国故事{n}", "佚名", n % 3) for n in range(30)])
    first = await find(lite, "中国故事", limit=30)
    again = await find(lite, "中国故事", limit=30)
    assert [h.record_pk for h in first.hits] == [h.record_pk for h in again.hits]
    paged = []
    for offset in range(0, 30, 7):
        paged += [h.record_pk for h in (await find(lite, "中国故事", limit=7, offset=offset)).hits]
    assert paged == [h.record_pk for h in first.hits]


async def test_author_match_outranks_a_title_word(lite: Lite) -> None:
    await add(lite, ("余华传", "张三", 100), ("活着", "余华", 0), ("兄弟", "余华", 1))
    assert titles(await find(lite, "余华"))[:2] == ["兄弟", "活着"]


@pytest.mark.parametrize(
    ("query", "required", "optional"),
    [
        ("危险 北京", {"危险", "北京"}, set()),
        ("生活 读", {"生活"}, {"读"}),  # a lone character among words is optional
        ("红与黑", {"红与", "与黑"}, set()),  # single-character words pair up
        ("雪", {"雪"}, set()),
        ("the kite runner", {"the", "kite", "runner"}, set()),
        ("危险 北京出版社", {"危险", "北京"}, set()),  # publisher suffixes dropped
    ],
)
def test_query_units(
    query: str, required: set[str], optional: set[str], search_engine: SearchEngine
) -> None:
    units = query_units(query, search_engine.segmenter)
    assert {u.term for u in units if u.required} == required
    assert {u.term for u in units if not u.required} == optional


def test_library_words_make_a_title_one_word(tmp_path: Path) -> None:
    segmenter = Segmenter(JIEBA_CACHE)
    segmenter.load()
    title = "枫桥夜泊记事簿"
    before = {u.term for u in query_units(title, segmenter) if u.required}
    segmenter.add_library_words([title])
    after = {u.term for u in query_units(title, segmenter) if u.required}
    assert before < after == {"枫桥", "桥夜", "夜泊", "泊记", "记事", "事簿"}


def test_bigrams_across_jieba_words_are_optional(search_engine: SearchEngine) -> None:
    units = {u.term: u for u in query_units("东野圭吾解忧", search_engine.segmenter)}
    assert units["解忧"].required
    assert not units["吾解"].required
    assert isinstance(units["解忧"], Unit)


def test_index_terms_and_keys() -> None:
    assert list(terms_of("解忧杂货店")) == ["解忧", "忧杂", "杂货", "货店"]
    assert list(terms_of("雪 the")) == ["雪", "the"]
    row = Record(
        id=7,
        title="解忧杂货店",
        subtitle=None,
        authors="[日] 东野圭吾",
        translators="李盈春",
        publisher="南海出版公司",
        series="新经典文库·东野圭吾作品",
        original_title="ナミヤ雑貨店の奇蹟",
        isbn="9787544270878",
        clc="I247.5",
        call_number="i247.5/s77",
        tags="推理;日本",
        summary="一家杂货店，收到的烦恼信都会得到回答，奇迹就此发生。",
    )
    [(pk, terms, keys)] = Indexer().documents([row])
    assert pk == 7
    assert terms["解忧"] & 1 and terms["东野"] & 4 and terms["南海"] & 64
    assert ("t", "解忧杂货店") in keys
    assert ("p", "jieyouzahuodian") in keys
    assert ("i", "jyzhd") in keys
    assert ("a", "东野圭吾") in keys
    assert ("s", "新经典文库东野圭吾作品") in keys
    assert ("b", "9787544270878") in keys
    assert ("n", "I247.5/S77") in keys
    assert ("c", "I247.5") in keys
    # Subjects: tags first, then the class names from the most specific class up.
    assert ("g", "推理#0") in keys and ("g", "日本#1") in keys
    assert ("g", "新体长篇#2") not in keys  # the project's own table stops at I247
    assert ("g", "当代作品#2") in keys and ("g", "文学#5") in keys
    assert ("q", "dongyeguiwu") in keys and ("j", "dygw") in keys
    assert ("f", "jieyouzahuodial") in keys
    assert ("x", "".join(sorted("解忧杂货店"))) in keys
    assert terms["dongye"] & 4 and terms["dongyeguiwu"] & 4 and terms["dygw"] & 4
    assert terms["guiwu"] == 512  # a given name alone counts less than a surname
    assert terms["推理"] & 128 and terms["奇迹"] & 256 and not terms["奇迹"] & 1
