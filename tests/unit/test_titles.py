"""One way to name a book (services/titles.py): the volume in the name, and what tells two
records shown together apart."""

from __future__ import annotations

import pytest

from services.titles import NameParts, book_name, subtitle_volume, tell_apart


@pytest.mark.parametrize(
    ("title", "subtitle", "name"),
    [
        ("人世间", "下部", "人世间 下部"),
        ("平凡的世界", "第二部", "平凡的世界 第二部"),
        ("红楼梦", "卷三", "红楼梦 卷三"),
        ("长安十二时辰", "上", "长安十二时辰 上"),
        ("哈利·波特", "Ⅱ", "哈利·波特 Ⅱ"),
        ("毛泽东选集", "第一卷 新民主主义革命", "毛泽东选集 第一卷 新民主主义革命"),
        # A title that holds its volume keeps the volume's own name.
        ("三体Ⅱ", "黑暗森林", "三体Ⅱ 黑暗森林"),
        ("盗墓笔记3", "怒海潜沙", "盗墓笔记3 怒海潜沙"),
        ("三体Ⅱ", None, "三体Ⅱ"),
        # A subtitle that says no volume stays on the card only.
        ("活着", "一个人的一生", "活着"),
        ("上海往事", "上海的故事", "上海往事"),
        ("十万个为什么", "上海篇", "十万个为什么"),
        ("Animal Farm", "I am a pig", "Animal Farm"),
        ("  人世间 ", None, "人世间"),
        ("人世间 下部", "下部", "人世间 下部"),  # already in the title: not twice
    ],
)
def test_the_name_says_which_volume(title: str, subtitle: str | None, name: str) -> None:
    assert book_name(title, subtitle) == name


def test_volume_marks_of_a_subtitle() -> None:
    assert subtitle_volume("第一部 苦难") == "第一部"
    assert subtitle_volume("下") == "下"
    assert subtitle_volume("Vol. 2") == "Vol. 2"
    assert subtitle_volume("下雨天") is None
    assert subtitle_volume("一个人的战争") is None
    assert subtitle_volume(None) is None


def test_same_names_are_told_apart_by_as_little_as_does_it() -> None:
    names = tell_apart(
        [
            NameParts(1, "人世间", "下部", "中国青年出版社", "2017-12"),
            NameParts(2, "人世间", "下部", "作家出版社", "2017-12"),
            NameParts(3, "人世间", "上部", "中国青年出版社", "2017-12"),
            NameParts(4, "活着", None, "作家出版社", "2012-8"),
            NameParts(5, "活着", None, "作家出版社", "2017-6"),
            NameParts(6, "三体", None, "重庆出版社", "2008"),
        ]
    )
    assert names == {
        1: "人世间 下部（中国青年出版社）",  # publishers differ: the publisher is enough
        2: "人世间 下部（作家出版社）",
        3: "人世间 上部",  # no other 上部 here: nothing added
        4: "活着（2012年）",  # one publisher: the year tells them apart
        5: "活着（2017年）",
        6: "三体",
    }


def test_records_alike_in_everything_get_their_control_numbers() -> None:
    names = tell_apart(
        [
            NameParts(1, "活着", None, "作家出版社", "2012", "sx:1"),
            NameParts(2, "活着", None, "作家出版社", "2017", "sx:2"),
            NameParts(3, "活着", None, "作家出版社", "2017", "sx:3"),
            NameParts(4, "家", None, None, None, "sx:4"),
            NameParts(5, "家", None, None, None, "sx:5"),
        ]
    )
    assert names[1] == "活着（作家出版社，2012年）"
    assert names[2] == "活着（作家出版社，2017年，记录 sx:2）"
    assert names[3] == "活着（作家出版社，2017年，记录 sx:3）"
    assert (names[4], names[5]) == ("家（记录 sx:4）", "家（记录 sx:5）")


def test_a_record_alone_is_never_qualified() -> None:
    assert tell_apart([NameParts(1, "人世间", "下部", "中国青年出版社", "2017")]) == {
        1: "人世间 下部"
    }
