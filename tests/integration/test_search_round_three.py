"""Search, round three (issue 21) and series in order (issue 19 item 11) — on SQLite and
PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import pytest

from nlp.search import SearchEngine
from storage.db import Database
from tests.integration.test_search import Book, Library, find, ids, load_catalogue

LIU = "刘慈欣"
SERIES = [
    # Loans deliberately against volume order: popularity alone would list 三体Ⅱ first.
    Book("v:1", "三体Ⅱ", LIU, "重庆出版社", loans=90),
    Book("v:2", "三体", LIU, "重庆出版社", loans=40),
    Book("v:3", "三体Ⅲ", LIU, "重庆出版社", loans=60),
    Book("v:4", "球状闪电", LIU, "四川科学技术出版社", loans=50),
    Book("v:5", "人世间", "梁晓声", "中国青年出版社", subtitle="下部", loans=9),
    Book("v:6", "人世间", "梁晓声", "中国青年出版社", subtitle="上部", loans=3),
    Book("v:7", "人世间", "梁晓声", "中国青年出版社", subtitle="中部", loans=5),
    Book("v:8", "平凡的世界", "路遥", "人民文学出版社", subtitle="第二部", loans=8),
    Book("v:9", "平凡的世界", "路遥", "人民文学出版社", subtitle="第三部", loans=7),
    Book("v:10", "平凡的世界", "路遥", "人民文学出版社", subtitle="第一部", loans=1),
]


@pytest.fixture
async def volumes(db: Database, search_engine: SearchEngine) -> Library:
    lib = Library(db, search_engine)
    await load_catalogue(lib, SERIES)
    return lib


async def test_volumes_of_one_work_list_in_volume_order_where_relevance_ties(
    volumes: Library,
) -> None:
    # An author's books tie: 三体's volumes in order, in the places they had; 球状闪电 keeps its.
    assert ids(await find(volumes, LIU)) == ["v:2", "v:1", "v:4", "v:3"]
    # Volumes told apart by the subtitle only.
    assert ids(await find(volumes, "人世间")) == ["v:6", "v:7", "v:5"]
    assert ids(await find(volumes, "平凡的世界")) == ["v:10", "v:8", "v:9"]
    assert ids(await find(volumes, "梁晓声")) == ["v:6", "v:7", "v:5"]
    # A volume asked for still comes first.
    assert ids(await find(volumes, "人世间下部"))[0] == "v:5"
    assert ids(await find(volumes, "三体3"))[0] == "v:3"
