"""Query shapes of round two: wrappers, volumes, ISBN neighbours, class names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.index import deletions
from nlp.isbn import one_digit_away
from nlp.search import one_edit, parse_volume, strip_wrappers, title_volume
from nlp.subjects import ClassNames, split_tags


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("有没有三体", "三体"),
        ("我想借活着这本书", "活着"),
        ("帮我找一下科幻", "科幻"),
        ("关于旅行的书", "旅行"),
        ("有没有摄影的书", "摄影"),
        ("请问有没有关于宇宙的书", "宇宙"),
        ("三体", "三体"),
        ("有", "有"),  # nothing would be left
        ("我想借", "我想借"),
    ],
)
def test_wrappers_are_stripped(query: str, wanted: str) -> None:
    assert strip_wrappers(query) == wanted


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        ("盗墓笔记第三册", ("盗墓笔记", 3)),
        ("亚人3", ("亚人", 3)),
        ("失乐园下册", ("失乐园", -3)),
        ("三体iii", ("三体", 3)),
        ("盗墓笔记十二", ("盗墓笔记", 12)),
        ("java8", ("java", 8)),
        ("三体", None),
        ("活着", None),
        ("alpha", None),  # Latin text does not end in a Roman numeral
    ],
)
def test_volumes(query: str, parsed: tuple[str, int] | None) -> None:
    assert parse_volume(query) == parsed


def test_title_volume() -> None:
    assert title_volume("盗墓笔记3", "盗墓笔记") == 3
    assert title_volume("失乐园iii秘密花开了", "失乐园") == 3
    assert title_volume("盗墓笔记8大结局下", "盗墓笔记") == 8
    assert title_volume("失乐园下", "失乐园") == -3
    assert title_volume("盗墓笔记", "盗墓笔记") == 0
    assert title_volume("活着", "盗墓笔记") is None


def test_isbn_neighbours_are_valid_and_one_slip_away() -> None:
    typo = "9787536692936"  # 9787536692930 with its check digit mistyped
    near = one_digit_away(typo)
    assert "9787536692930" in near
    assert all(len(code) == 13 for code in near)
    assert one_digit_away("7536692937") and "9787536692930" in one_digit_away("7536692937")
    assert "9787536692930" in one_digit_away("9787536962930")  # two digits swapped
    assert one_digit_away("三体") == []


def test_class_names_from_the_project_table_and_a_file(tmp_path: Path) -> None:
    own = ClassNames()
    assert own.path("I242.4") == ["章回小说", "古代至近代作品", "小说", "中国文学", "文学"]
    tree = tmp_path / "tree.json"
    tree.write_text(
        json.dumps([{"code": "I", "name": "文学", "children": [{"code": "I2", "name": "中文"}]}]),
        encoding="utf-8",
    )
    assert ClassNames(tree).path("I21") == ["中文", "文学"]
    missing = ClassNames(tmp_path / "missing.json")
    assert missing.path("TP3") == ["计算技术", "计算机技术", "工业技术"]
    assert split_tags("科幻; 小说;科幻；") == ["科幻", "小说"]


@pytest.mark.parametrize(
    ("query", "title", "edit"),
    [
        ("平凡世界", "平凡的世界", "missing"),
        ("平凡的的世界", "平凡的世界", "added"),
        ("决为策王", "决策为王", "swapped"),
        ("三国演绎", "三国演义", "wrong"),
        ("球状闪电x", "球状闪电", "added"),
        ("平凡的世界", "平凡的世界", None),  # the same title is not a near miss
        ("平凡世", "平凡的世界", None),  # two away
        ("决为王策", "决策为王", None),  # not neighbours
    ],
)
def test_one_edit(query: str, title: str, edit: str | None) -> None:
    assert one_edit(query, title) == edit


def test_deletion_keys_meet_one_edit_away() -> None:
    title, typed = "现代世界之谜", "现代世界知谜"
    assert "现代世界谜" in deletions(title)  # a missing character: the query is a key
    assert deletions(title) & deletions(typed)  # a wrong one: they share a key
    assert deletions("决策为王") & deletions("决为策王")  # swapped neighbours too
