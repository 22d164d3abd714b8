"""Search, round two: subjects, summaries, forgiving pinyin, near misses, volumes and
"did you mean" — on SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import pytest

from nlp.search import SearchEngine
from storage.db import Database
from tests.integration.test_search import Book, Library, find, ids, load_catalogue

LIU = "刘慈欣"
SANTI_ISBN = "9787536692930"
CATALOGUE = [
    Book(
        "t:1",
        "三体",
        LIU,
        "重庆出版社",
        isbn=SANTI_ISBN,
        tags="科幻;小说",
        summary="文化大革命如火如荼进行的同时，军方探寻外星文明的绝秘计划红岸工程取得了突破性进展。",
        loans=40,
    ),
    Book("t:2", "球状闪电", LIU, "四川科学技术出版社", tags="科幻", loans=10),
    Book("t:3", "流浪地球", LIU, "长江文艺出版社", tags="小说;科幻", loans=5),
    Book("t:4", "海底两万里", "[法] 儒勒·凡尔纳", "译林出版社", tags="科幻;冒险", loans=8),
    Book("t:5", "在路上", "[美] 杰克·凯鲁亚克", "上海译文出版社", tags="旅行;文学", loans=3),
    Book("t:6", "背包十年", "小鹏", "中国青年出版社", tags="旅行", loans=6),
    Book("t:7", "旅行的艺术", "[英] 阿兰·德波顿", "上海译文出版社", tags="哲学", loans=30),
    Book("t:8", "纽约摄影学院摄影教材", "美国纽约摄影学院", "中国摄影出版社", tags="摄影"),
    Book("t:9", "盗墓笔记", "南派三叔", "中国友谊出版公司", series="盗墓笔记", loans=20),
    Book("t:10", "盗墓笔记3", "南派三叔", "中国友谊出版公司", series="盗墓笔记", loans=1),
    Book("t:11", "盗墓笔记2", "南派三叔", "中国友谊出版公司", series="盗墓笔记", loans=9),
    Book("t:12", "失乐园（上）", "渡边淳一", "青岛出版社", loans=4),
    Book("t:13", "失乐园（下）", "渡边淳一", "青岛出版社", loans=2),
    Book("t:14", "决策为王", "李开复", "中信出版社"),
    Book("t:15", "红楼梦", "曹雪芹", "人民文学出版社", clc="I242.4", loans=50),
    Book("t:16", "西游记", "吴承恩", "人民文学出版社", clc="I242.4", loans=30),
    Book("t:17", "呐喊", "鲁迅", "人民文学出版社", clc="I246.7", loans=12),
    Book("t:18", "生存智慧", "王林", "中国华侨出版社"),
    Book("t:19", "绿野仙踪", "[美] 弗兰克·鲍姆", "人民文学出版社"),
]


@pytest.fixture
async def shelf(db: Database, search_engine: SearchEngine) -> Library:
    lib = Library(db, search_engine)
    await load_catalogue(lib, CATALOGUE)
    return lib


@pytest.mark.parametrize(
    "query", ["科幻", "有没有科幻的书", "我想借科幻小说", "帮我找一下科幻", "关于科幻的书"]
)
async def test_a_subject_lists_its_books_central_and_popular_first(
    shelf: Library, query: str
) -> None:
    result = await find(shelf, query)
    # Tagged first as the main subject, by popularity; then books where it is a later tag.
    assert ids(result)[:4] == ["t:1", "t:2", "t:4", "t:3"], query


async def test_subject_wrappers_and_other_words_for_a_tag(shelf: Library) -> None:
    assert ids(await find(shelf, "关于旅行的书"))[:2] == ["t:6", "t:5"]
    assert ids(await find(shelf, "有没有摄影的书"))[0] == "t:8"
    assert ids(await find(shelf, "旅游"))[:2] == ["t:6", "t:5"]
    # A title that merely looks wrapped is still found by its whole title.
    assert ids(await find(shelf, "在路上这本书"))[0] == "t:5"


async def test_class_names_and_work_lists(shelf: Library) -> None:
    assert set(ids(await find(shelf, "四大名著"))[:2]) == {"t:15", "t:16"}
    assert ids(await find(shelf, "中国古典小说"))[:2] == ["t:15", "t:16"]
    assert "t:17" not in ids(await find(shelf, "中国古典小说"))


async def test_summary_words_count_below_titles(shelf: Library) -> None:
    assert ids(await find(shelf, "红岸工程"))[0] == "t:1"
    # "文化" in a summary must not outrank nothing better: no title has it, so 三体 comes.
    assert ids(await find(shelf, "外星文明"))[0] == "t:1"


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("hong2lou2meng4", "t:15"),
        ("hong2 lou2 meng4", "t:15"),
        ("hóng lóu mèng", "t:15"),
        ("sengcunzhihui", "t:18"),  # sh → s, eng → en
        ("lvyexianzong", "t:19"),
        ("luyexianzong", "t:19"),  # ü typed as u
        ("nvyexianzong", "t:19"),  # n/l
    ],
)
async def test_pinyin_forgives_tones_and_slips(shelf: Library, query: str, first: str) -> None:
    assert ids(await find(shelf, query))[0] == first, query


@pytest.mark.parametrize("query", ["liucixin", "liu cixin", "lcx", "LiuCiXin"])
async def test_an_author_in_pinyin(shelf: Library, query: str) -> None:
    assert set(ids(await find(shelf, query))[:3]) == {"t:1", "t:2", "t:3"}, query


@pytest.mark.parametrize(
    ("query", "first"),
    [("liucixin 球状", "t:2"), ("lcx 流浪", "t:3"), ("liu 流浪", "t:3"), ("liu cixin 球状", "t:2")],
)
async def test_author_pinyin_with_a_title_word(shelf: Library, query: str, first: str) -> None:
    assert ids(await find(shelf, query))[0] == first, query


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("决为策王", "t:14"),  # two characters swapped
        ("球状闪", "t:2"),  # one missing
        ("海底两万万里", "t:4"),  # one added
    ],
)
async def test_near_misses(shelf: Library, query: str, first: str) -> None:
    assert ids(await find(shelf, query))[0] == first, query


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("盗墓笔记3", "t:10"),
        ("盗墓笔记第三册", "t:10"),
        ("盗墓笔记三", "t:10"),
        ("盗墓笔记 III", "t:10"),
        ("盗墓笔记第2卷", "t:11"),
        ("失乐园下册", "t:13"),
        ("失乐园上", "t:12"),
    ],
)
async def test_a_volume_of_a_series_comes_first(shelf: Library, query: str, first: str) -> None:
    assert ids(await find(shelf, query))[0] == first, query


async def test_a_series_lists_in_volume_order(shelf: Library) -> None:
    # The exact title first, then the volumes in order (not by popularity: 2 has more loans).
    assert ids(await find(shelf, "盗墓笔记"))[:3] == ["t:9", "t:11", "t:10"]


async def test_a_mistyped_isbn_gets_did_you_mean(shelf: Library) -> None:
    typo = SANTI_ISBN[:5] + "9" + SANTI_ISBN[6:]
    result = await find(shelf, typo)
    assert (result.kind, result.hits) == ("isbn", [])
    assert [s.record_id for s in result.suggestions] == ["t:1"]
    assert result.suggestions[0].isbn == SANTI_ISBN
    assert (await find(shelf, "9780000000002")).suggestions == []  # valid, just not ours


async def test_nothing_found_offers_the_closest_titles(shelf: Library) -> None:
    result = await find(shelf, "球壮闪亮")  # no term of it is in the catalogue
    assert result.hits == []
    assert [s.title for s in result.suggestions] == ["球状闪电"]
    spoken = await find(shelf, "qiuzhuangshanliang")
    assert (spoken.hits, [s.title for s in spoken.suggestions]) == ([], ["球状闪电"])
    found = await find(shelf, "三体")
    assert found.hits and found.suggestions == []  # only when nothing matched
    assert (await find(shelf, "完全无关的东西")).suggestions == []


# Near misses among common characters: every term of the queries below is in hundreds of
# other titles (more than search fetches whole), and the titles come last in record order,
# so neither a rare term nor the first records of an intersection lead to them.
FILLERS = 160  # above nlp.search.RARE_DF postings per term
COMMON_SHELF = [
    *(Book(f"f:{n}", f"现代世界文学丛书第{n}卷", publisher="文学出版社") for n in range(FILLERS)),
    *(Book(f"g:{n}", f"中国的历史故事{n}", publisher="少儿出版社") for n in range(FILLERS)),
    Book("w:1", "现代世界之谜", "王明", "科学出版社"),
    Book("w:2", "乡土中国的变迁", "费孝通", "北京大学出版社"),
]


@pytest.fixture
async def common_shelf(db: Database, search_engine: SearchEngine) -> Library:
    lib = Library(db, search_engine)
    await load_catalogue(lib, COMMON_SHELF)
    return lib


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("现代世界谜", "w:1"),  # 之 missing; 现代 and 世界 are in every filler
        ("现代世之谜", "w:1"),  # 界 missing
        ("现代世界的之谜", "w:1"),  # 的 added
        ("现世代界之谜", "w:1"),  # two swapped
        ("现代世界知谜", "w:1"),  # one wrong
        ("乡土中国变迁", "w:2"),  # 的 missing; 中国 and 国的 are in every filler
    ],
)
async def test_near_misses_among_common_characters(
    common_shelf: Library, query: str, first: str
) -> None:
    assert ids(await find(common_shelf, query))[0] == first, query


async def test_two_wrong_characters_keep_the_rare_part_of_the_title(common_shelf: Library) -> None:
    # 土中 is the only rare term left: its record must survive the pruning of candidates,
    # however many records share the common terms around it.
    assert "w:2" in ids(await find(common_shelf, "不土中国的这迁"))[:5]


async def test_one_edit_does_not_outrank_the_exact_title(common_shelf: Library) -> None:
    assert ids(await find(common_shelf, "现代世界文学丛书第1卷"))[0] == "f:1"
    assert ids(await find(common_shelf, "现代世界之谜"))[0] == "w:1"
