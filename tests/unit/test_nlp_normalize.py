"""Normalisation shared by the index and the queries."""

from __future__ import annotations

import pytest

from nlp.normalize import (
    MAX_QUERY_CHARS,
    author_names,
    compact,
    name_parts,
    normalize,
    normalize_many,
    normalize_query,
    publisher_core,
    publisher_suffixes,
    script_runs,
    strip_nationality,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("解忧杂货店", "解忧杂货店"),
        ("《解忧杂货店》", "解忧杂货店"),
        ("解憂雜貨店", "解忧杂货店"),  # traditional → simplified
        ("ＡＢＣ谋杀案", "abc谋杀案"),  # full-width letters
        ("哈利·波特１", "哈利 波特1"),  # full-width digit, middle dot splits
        ("  解忧，杂货店！ ", "解忧 杂货店"),
        ("The Kite Runner", "the kite runner"),
        ("The Memory Keeper&#39;s Daughter", "the memory keepers daughter"),  # HTML entity
        ("Keeper’s", "keepers"),
        ("a_b%c*d", "a b c d"),
        ("\x00\x01abc\u200b\x1b", "abc"),
        ("😀🔥", ""),
        ("", ""),
        (None, ""),
        ("Ⅲ", "iii"),
    ],
)
def test_normalize(text: str | None, expected: str) -> None:
    assert normalize(text) == expected


def test_compact_drops_spaces() -> None:
    assert compact("解忧 杂货店") == compact("解忧杂货店") == "解忧杂货店"
    assert compact("The Kite Runner") == "thekiterunner"


def test_normalize_many_matches_normalize() -> None:
    texts = ["解憂雜貨店", None, "ABC", "x\ny", "丝", "", "後來的我們"]
    assert normalize_many(texts) == [normalize(t) for t in texts]


def test_query_is_capped() -> None:
    assert len(normalize_query("长" * 10_000)) == MAX_QUERY_CHARS
    assert normalize_query("[日] 东野圭吾") == "东野圭吾"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[日] 东野圭吾", "东野圭吾"),
        ("（美）罗宾丝婷", "罗宾丝婷"),
        ("威尔.杜兰(美)", "威尔.杜兰"),
        ("<<百年孤独>>", "<<百年孤独>>"),  # not a nationality note
        ("红楼梦", "红楼梦"),
    ],
)
def test_strip_nationality(text: str, expected: str) -> None:
    assert strip_nationality(text).strip() == expected


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        ("[美] 卡勒德·胡赛尼", ["卡勒德·胡赛尼"]),
        ("[美] 马库斯·白金汉 / 唐纳德·克利夫顿", ["马库斯·白金汉", "唐纳德·克利夫顿"]),
        ("张悦然 主编", ["张悦然"]),
        ("余华著", ["余华"]),
        ("李文", ["李文"]),  # "文" is part of the name here
        ("几米 文/图", ["几米"]),
        ("[清] 曹雪芹 著 / 高鹗", ["曹雪芹", "高鹗"]),
        (
            "海蒂•格兰特•霍尔沃森 (Heidi Grant Halvorson)",
            ["海蒂•格兰特•霍尔沃森", "Heidi Grant Halvorson"],
        ),
        ("冷杉，杨立新", ["冷杉", "杨立新"]),
        (None, []),
    ],
)
def test_author_names(statement: str | None, names: list[str]) -> None:
    assert author_names(statement) == names


def test_name_parts() -> None:
    assert name_parts("卡勒德·胡赛尼") == ["卡勒德", "胡赛尼"]
    assert name_parts("余华") == ["余华"]


@pytest.mark.parametrize(
    ("publisher", "core"),
    [
        ("北京联合出版有限责任公司", "北京联合"),
        ("北京联合出版公司", "北京联合"),
        ("人民文学出版社", "人民文学"),
        ("中华书局", "中华"),
        ("Free Press", "free press"),
        ("出版社", "出版社"),  # nothing left: keep the name
        (None, ""),
    ],
)
def test_publisher_core(publisher: str | None, core: str) -> None:
    assert publisher_core(publisher) == core


def test_publisher_suffixes_in_queries() -> None:
    assert publisher_suffixes("危险 北京联合出版公司") == "危险 北京联合"


def test_script_runs() -> None:
    runs = list(script_runs(normalize("Java设计模式 3 茅山后裔4")))
    assert runs == [
        (False, "java"),
        (True, "设计模式"),
        (False, "3"),
        (True, "茅山后裔"),
        (False, "4"),
    ]
