"""Round three (issue 21): one normaliser for numbers, years, publishers' short names and role
words, and the query read field by field."""

from __future__ import annotations

import pytest

from nlp.normalize import (
    chinese_number,
    mark_short_names,
    numbers_canonical,
    publisher_aliases,
    publisher_core,
    split_year,
    strip_role,
)
from nlp.search import SearchEngine, in_volume_order, query_units


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("三十六", 36),
        ("十二", 12),
        ("十", 10),
        ("一百零五", 105),
        ("两万", 20000),
        ("五十万", 500000),
        ("二〇一九", 2019),
        ("一九八四", 1984),
        ("十十", None),
        ("万", None),
    ],
)
def test_chinese_numbers(written: str, value: int | None) -> None:
    assert chinese_number(written) == value


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("三十六计", "36计"),
        ("三体ii", "三体2"),
        ("一九八四", "1984"),
        ("爱人02", "爱人二"),
        ("平凡的世界第二部", "平凡的世界第2部"),
        ("一千零一夜", "1001夜"),
        ("十万个为什么", "100000个为什么"),
    ],
)
def test_any_notation_of_a_number_reads_the_same(one: str, other: str) -> None:
    assert numbers_canonical(one) == numbers_canonical(other)


def test_words_that_only_look_like_numbers_stay_apart() -> None:
    assert numbers_canonical("三体") != numbers_canonical("三体2")
    assert numbers_canonical("2001太空漫游") == "2001太空漫游"


@pytest.mark.parametrize(
    ("query", "split"),
    [
        ("活着 2012", ("活着", 2012, 2012)),
        ("活着2012年", ("活着", 2012, 2012)),
        ("2012年版活着", ("活着", 2012, 2012)),
        ("二〇一二年 活着", ("活着", 2012, 2012)),
        ("三体 2008版", ("三体", 2008, 2008)),
        ("红楼梦 80年代", ("红楼梦", 1980, 1989)),
        ("九十年代的围城", ("围城", 1990, 1999)),
        ("2000年代 活着", ("活着", 2000, 2009)),
        ("1984", None),
        ("活着", None),
        ("活着 12年", None),
    ],
)
def test_a_year_or_decade_at_either_end_is_split_off(
    query: str, split: tuple[str, int, int] | None
) -> None:
    found = split_year(query)
    if split is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0], found[1][0], found[1][-1]) == split


def test_publisher_short_names() -> None:
    assert "人文" in publisher_aliases(publisher_core("人民文学出版社"))
    assert "三联" in publisher_aliases(publisher_core("生活·读书·新知三联书店"))
    assert "外研社" in publisher_aliases(publisher_core("外语教学与研究出版社"))
    assert publisher_aliases(publisher_core("重庆出版社")) == ()
    assert mark_short_names("三联版乡土中国").split() == ["三联", "乡土中国"]
    assert mark_short_names("活着 人文社的").split() == ["活着", "人文"]
    assert mark_short_names("社会版图") == "社会版图"


def test_role_words_after_a_name() -> None:
    assert strip_role("余华著") == "余华"
    assert strip_role("张悦然主编") == "张悦然"
    assert strip_role("黛比珀尔译") == "黛比珀尔"
    assert strip_role("编") == "编"


def test_role_words_are_optional_terms(search_engine: SearchEngine) -> None:
    segmenter = search_engine.segmenter
    units = {u.term: u.required for u in query_units("黛比 珀尔译", segmenter)}
    assert units["珀尔"] is True
    assert units.get("尔译", False) is False
    assert "主编" not in {u.term for u in query_units("爱 摩福斯特 主编", segmenter)}


def test_volumes_in_order_only_among_equals() -> None:
    titles = {1: "三体ii", 2: "球状闪电", 3: "三体", 4: "三体iii", 5: "三体全集"}
    ranked = [(1, 88.0), (2, 88.0), (4, 88.0), (3, 88.0), (5, 88.0)]
    assert [pk for pk, _ in in_volume_order(ranked, titles)] == [3, 2, 1, 4, 5]
    # A better-scored volume keeps its place.
    ranked = [(4, 99.0), (1, 88.0), (3, 88.0)]
    assert [pk for pk, _ in in_volume_order(ranked, titles)] == [4, 3, 1]
