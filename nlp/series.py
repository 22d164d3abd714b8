"""The volumes of a series: which records come before and after one in the same series.

Catalogues keep the series name (丛书, CNMARC 225$a) but rarely a volume number of its own: the
volume is in the title or subtitle ("三体Ⅱ 黑暗森林", "平凡的世界 第二部", "盗墓笔记3",
"长安十二时辰 上"). Two records of one series are volumes of one work when their compact titles
share a stem of at least two characters and each holds a volume after it (the stem alone counts
as the first volume: "三体" before "三体Ⅱ"). Titles that only share a stem ("哈利·波特与魔法石",
"哈利·波特与密室") have no volume after it and get no neighbours: better none than wrong ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nlp.search import title_volume

__all__ = ["Neighbours", "series_neighbours"]

# A common prefix may end inside a volume mark ("盗墓笔记13"/"盗墓笔记14" share "盗墓笔记1").
_VOLUME_CHARS = frozenset("0123456789一二两三四五六七八九十第之上中下")
_ROMAN_CHARS = frozenset("ivx")
MIN_STEM = 2


@dataclass(frozen=True, slots=True)
class Neighbours:
    previous: int | None  # the key of the volume before, None at the start
    next: int | None


def _stem(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    stem = a[:n]
    while stem and stem[-1] in _VOLUME_CHARS:
        stem = stem[:-1]
    # Roman numerals only after a non-Latin letter: "三体ii" → "三体", "harry" stays.
    bare = stem.rstrip("ivx")
    if bare != stem and bare and not bare[-1].isascii():
        stem = bare
    return stem


def _order(volume: int) -> int:
    """上/中/下 are -1/-2/-3 in nlp.search: as positions they are 1, 2, 3."""
    return -volume if volume < 0 else volume


def _volume_pair(current: str, other: str) -> tuple[int, int] | None:
    stem = _stem(current, other)
    if len(stem) < MIN_STEM:
        return None
    mine, theirs = title_volume(current, stem), title_volume(other, stem)
    if mine is None or theirs is None or mine == theirs:
        return None
    return _order(mine), _order(theirs)


def series_neighbours(current: str, others: Sequence[tuple[int, str]]) -> Neighbours:
    """``current`` and ``others`` are compact normalised titles (title + subtitle, nlp.normalize
    .compact) of records in the same series; ``others`` carry a key (the record id). The nearest
    volume on each side wins; equal volumes (two editions) go to the smaller key."""
    before: tuple[int, int] | None = None  # (volume, key)
    after: tuple[int, int] | None = None
    for key, title in others:
        pair = _volume_pair(current, title)
        if pair is None:
            continue
        mine, theirs = pair
        if theirs < mine and (before is None or (-theirs, key) < (-before[0], before[1])):
            before = (theirs, key)
        elif theirs > mine and (after is None or (theirs, key) < after):
            after = (theirs, key)
    return Neighbours(before[1] if before else None, after[1] if after else None)
