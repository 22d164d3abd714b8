"""Series volumes from titles (nlp.series) and titles cut to fit a phone button."""

from __future__ import annotations

import pytest

from handlers.render import short_title
from nlp.normalize import compact
from nlp.series import Neighbours, series_neighbours


def neighbours(current: str, *others: str) -> tuple[str | None, str | None]:
    found = series_neighbours(compact(current), [(n, compact(t)) for n, t in enumerate(others)])
    return (
        others[found.previous] if found.previous is not None else None,
        others[found.next] if found.next is not None else None,
    )


@pytest.mark.parametrize(
    ("current", "others", "expected"),
    [
        ("三体", ["三体Ⅱ 黑暗森林", "三体Ⅲ 死神永生", "球状闪电"], (None, "三体Ⅱ 黑暗森林")),
        ("三体Ⅱ 黑暗森林", ["三体Ⅲ 死神永生", "三体"], ("三体", "三体Ⅲ 死神永生")),
        (
            "平凡的世界 第二部",
            ["平凡的世界 第三部", "平凡的世界 第一部"],
            ("平凡的世界 第一部", "平凡的世界 第三部"),
        ),
        # A common prefix that ends inside the number: 13 and 14 share "盗墓笔记1".
        ("盗墓笔记13", ["盗墓笔记14", "盗墓笔记12", "盗墓笔记2"], ("盗墓笔记12", "盗墓笔记14")),
        ("长安十二时辰 下", ["长安十二时辰 上"], ("长安十二时辰 上", None)),
        ("激荡三十年（上）", ["激荡三十年（下）"], (None, "激荡三十年（下）")),
        # Same stem, no volume after it: not volumes of one work.
        ("哈利·波特与魔法石", ["哈利·波特与密室", "哈利·波特与火焰杯"], (None, None)),
        ("十万个为什么 数学", ["十万个为什么 物理"], (None, None)),
        # Two editions of one volume are not each other's neighbours; a one-character stem is
        # too little to go on.
        ("三体", ["三体", "三国演义"], (None, None)),
        ("家", ["春", "秋"], (None, None)),
    ],
)
def test_series_neighbours(
    current: str, others: list[str], expected: tuple[str | None, str | None]
) -> None:
    assert neighbours(current, *others) == expected


def test_equal_volumes_go_to_the_smaller_key() -> None:
    titles = [(7, compact("三体Ⅱ")), (3, compact("三体Ⅱ")), (9, compact("三体Ⅲ"))]
    assert series_neighbours(compact("三体"), titles) == Neighbours(None, 3)


def test_short_title_fits_a_button() -> None:
    assert short_title("三体") == "三体"
    assert short_title("一个特别特别长的书名用来看看按钮放不放得下") == "一个特别特别长的书名…"
    assert short_title("Harry Potter and the Philosopher's Stone") == "Harry Potter and the…"
    assert short_title("  三体Ⅱ\n黑暗森林 ") == "三体Ⅱ 黑暗森林"
