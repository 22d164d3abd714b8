"""Pinyin keys for titles: full pinyin ("jieyouzahuodian") and initials ("jyzhd").

pypinyin converts about 10k titles a second, too slow for an 81k-title rebuild. Almost all of
that time goes to per-syllable styling, not to the phrase segmentation, so we segment with
pypinyin's own phrase segmenter and cache the pinyin of each segment: the catalogue reuses a few
tens of thousands of segments. Readings stay phrase-aware (重庆 → chongqing, 银行 → yinhang).

Heteronyms: a title gets at most two readings, the phrase-aware one and the character-by-
character default, so a student who reads a character the "dictionary" way still matches,
without the combinatorial explosion of every listed reading.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from nlp.normalize import is_cjk

__all__ = ["initials_of", "pinyin_keys", "syllables"]

MAX_READINGS = 2
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _load() -> dict[str, Any]:
    if not _state:
        with _lock:
            if not _state:
                from pypinyin import Style, lazy_pinyin
                from pypinyin.seg.mmseg import seg

                _state["lazy_pinyin"] = lazy_pinyin
                _state["style"] = Style.NORMAL
                _state["seg"] = seg
    return _state


def _keep(chars: str) -> list[str]:
    return [chars]


@lru_cache(maxsize=200_000)
def _segment_pinyin(segment: str) -> tuple[str, ...]:
    state = _load()
    return tuple(state["lazy_pinyin"](segment, style=state["style"], errors=_keep, strict=False))


@lru_cache(maxsize=20_000)
def _char_pinyin(ch: str) -> str:
    state = _load()
    result = state["lazy_pinyin"](ch, style=state["style"], errors=_keep, strict=False)
    return "".join(result)


_HAN_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _han_runs(text: str) -> list[tuple[bool, str]]:
    return [(_is_han(run[0]), run) for run in _HAN_RUNS.findall(text)]


def syllables(normalised: str, *, phrases: bool = True) -> list[str]:
    """Pinyin syllables of normalised text; non-Han words pass through whole.

    Spaces separate words and are dropped. With ``phrases=False`` every character gets its
    default reading.
    """
    out: list[str] = []
    seg = _load()["seg"]
    for word in normalised.split():
        for han, run in _han_runs(word):
            if not han:
                out.append(run)
            elif phrases:
                for segment in seg.cut(run):
                    out.extend(_segment_pinyin(segment))
            else:
                out.extend(_char_pinyin(ch) for ch in run)
    return out


def initials_of(parts: list[str]) -> str:
    """First letters of the syllables; digit runs are kept whole ("茅山后裔4" → "mshy4")."""
    return "".join(p if p.isdigit() else p[:1] for p in parts if p)


def has_han(text: str) -> bool:
    return any(_is_han(ch) for ch in text)


def pinyin_keys(normalised: str) -> tuple[list[str], list[str]]:
    """(full pinyin keys, initials keys) for a normalised title; empty when it has no Han."""
    if not has_han(normalised):
        return [], []
    readings = [syllables(normalised)]
    plain = syllables(normalised, phrases=False)
    if plain != readings[0]:
        readings.append(plain)
    readings = readings[:MAX_READINGS]
    full: list[str] = []
    initials: list[str] = []
    for parts in readings:
        key = "".join(parts)
        if key not in full:
            full.append(key)
        abbrev = initials_of(parts)
        if abbrev not in initials:
            initials.append(abbrev)
    return full, initials


def query_pinyin(normalised: str) -> str:
    """The full pinyin of a CJK query (homophone lookup), compact."""
    return "".join(syllables(normalised))


def is_cjk_text(text: str) -> bool:
    return bool(text) and all(is_cjk(ch) for ch in text)
