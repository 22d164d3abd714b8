"""The volume mark a subtitle starts with: catalogues often keep the bare work as the title and
the volume as the subtitle ("人世间" / "下部", "平凡的世界" / "第二部"). services.titles names a
book with it; nlp.search reads volumes at the end of titles and queries."""

from __future__ import annotations

import re

from nlp.normalize import compact
from nlp.search import parse_volume

__all__ = ["ends_in_volume", "subtitle_volume"]

_NUM = r"(?:\d{1,3}|[一二两三四五六七八九十百]{1,4})"
_UNIT = r"[册卷部集季辑本篇]"
# The whole subtitle or followed by a separator: 第二部, 下部, 上, 卷三, 3, Ⅱ, 第一卷 苦难, 续集.
# Latin numerals only as the whole subtitle ("I am a cat" is no volume).
_SUBTITLE_VOLUME = re.compile(
    rf"^(第{_NUM}{_UNIT}|{_NUM}{_UNIT}?|卷{_NUM}|[上中下]{_UNIT}?|[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ]{{1,4}}"
    rf"|[IVX]{{1,4}}(?=$)|(?:vol|Vol|VOL)\.?\s*\d{{1,3}}|续集|续编|外传)"
    r"(?=$|[\s:：,，·・.．、—\-_/（(])"
)


def subtitle_volume(subtitle: str | None) -> str | None:
    """The volume or part a subtitle holds at its start ("第一部 苦难" → "第一部"), else None."""
    if not subtitle:
        return None
    match = _SUBTITLE_VOLUME.match(subtitle.strip())
    return match.group(1) if match else None


# What a title ending in a volume ends with (nlp.search reads which volume; this only spares
# the normalisation of every other title).
_VOLUME_END = frozenset(
    "0123456789０１２３４５６７８９一二两三四五六七八九十上中下ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅰⅱⅲⅳⅴⅵⅶⅷⅸⅹ"
    "IVXivxＩＶＸｉｖｘ册卷部集季辑本"
)


def ends_in_volume(title: str) -> bool:
    """Whether a title ends in a volume ("三体Ⅱ", "盗墓笔记3", "长安十二时辰 上")."""
    return bool(title) and title[-1] in _VOLUME_END and parse_volume(compact(title)) is not None
