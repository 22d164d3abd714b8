"""Pinyin keys for titles and names: full pinyin ("jieyouzahuodian"), initials ("jyzhd") and a
forgiving form that folds the usual slips of southern and northern speech.

pypinyin converts about 10k titles a second, too slow for an 81k-title rebuild. Almost all of
that time goes to per-syllable styling, not to the phrase segmentation, so we segment with
pypinyin's own phrase segmenter and cache the pinyin of each segment (per ``Pinyin`` object,
owned by the search engine): the catalogue reuses a few tens of thousands of segments. Readings
stay phrase-aware (重庆 → chongqing, 银行 → yinhang).

Heteronyms: a title gets at most two readings, the phrase-aware one and the character-by-
character default, so a student who reads a character the "dictionary" way still matches,
without the combinatorial explosion of every listed reading.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

__all__ = ["Pinyin", "fuzzy_pinyin", "has_han", "initials_of", "strip_tones"]

MAX_READINGS = 2
SEGMENT_CACHE = 200_000
CHAR_CACHE = 20_000

_HAN_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")
# Typed pinyin with tone digits ("hong2lou2meng4", "lv4"): a digit 1-5 after a final.
_TONED = re.compile(r"(?:[a-zü]+[1-5]?)+")
_TONE_DIGIT = re.compile(r"(?<=[aeiouvgnr])[1-5]")
# Confusions students make (z/zh, c/ch, s/sh, n/l, f/h, r/l, an/ang, en/eng, in/ing), folded to
# one form on both sides: the index keeps the folded title pinyin as its own key kind.
_RETROFLEX = re.compile(r"([zcs])h")
_FOLD = str.maketrans({"n": "l", "r": "l", "f": "h", "v": "u", "ü": "u"})


def _keep(chars: str) -> list[str]:
    return [chars]


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _han_runs(text: str) -> list[tuple[bool, str]]:
    return [(_is_han(run[0]), run) for run in _HAN_RUNS.findall(text)]


def initials_of(parts: list[str]) -> str:
    """First letters of the syllables; digit runs are kept whole ("茅山后裔4" → "mshy4")."""
    return "".join(p if p.isdigit() else p[:1] for p in parts if p)


def has_han(text: str) -> bool:
    return any(_is_han(ch) for ch in text)


def strip_tones(text: str) -> str:
    """Typed pinyin without tones: "hong2lou2meng4" → "hongloumeng", "hóng" → "hong".

    Text that is not pinyin-shaped (a title with a volume number) is returned unchanged.
    """
    if text.isascii():
        if not any(ch.isdigit() for ch in text) or not _TONED.fullmatch(text):
            return text
        return _TONE_DIGIT.sub("", text)
    decomposed = unicodedata.normalize("NFD", text).replace("u\u0308", "v")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain if plain.isascii() else text


def fuzzy_pinyin(compact_pinyin: str) -> str:
    """The folded form of compact pinyin: zh/ch/sh → z/c/s, -ng → -n, n/r → l, f → h, ü/v → u."""
    text = _RETROFLEX.sub(r"\1", compact_pinyin).replace("ng", "n")
    return text.translate(_FOLD)


class Pinyin:
    """pypinyin behind per-object caches (loaded on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._segments: dict[str, tuple[str, ...]] = {}
        self._chars: dict[str, str] = {}

    def _load(self) -> dict[str, Any]:
        if not self._state:
            with self._lock:
                if not self._state:
                    from pypinyin import Style, lazy_pinyin
                    from pypinyin.seg.mmseg import seg

                    self._state.update(lazy_pinyin=lazy_pinyin, style=Style.NORMAL, seg=seg)
        return self._state

    def _segment(self, segment: str) -> tuple[str, ...]:
        found = self._segments.get(segment)
        if found is None:
            state = self._load()
            found = tuple(
                state["lazy_pinyin"](segment, style=state["style"], errors=_keep, strict=False)
            )
            if len(self._segments) < SEGMENT_CACHE:
                self._segments[segment] = found
        return found

    def _char(self, ch: str) -> str:
        found = self._chars.get(ch)
        if found is None:
            state = self._load()
            found = "".join(
                state["lazy_pinyin"](ch, style=state["style"], errors=_keep, strict=False)
            )
            if len(self._chars) < CHAR_CACHE:
                self._chars[ch] = found
        return found

    def syllables(self, normalised: str, *, phrases: bool = True) -> list[str]:
        """Pinyin syllables of normalised text; non-Han words pass through whole.

        Spaces separate words and are dropped. With ``phrases=False`` every character gets its
        default reading.
        """
        out: list[str] = []
        seg = self._load()["seg"]
        for word in normalised.split():
            for han, run in _han_runs(word):
                if not han:
                    out.append(run)
                elif phrases:
                    for segment in seg.cut(run):
                        out.extend(self._segment(segment))
                else:
                    out.extend(self._char(ch) for ch in run)
        return out

    def keys(self, normalised: str) -> tuple[list[str], list[str]]:
        """(full pinyin keys, initials keys) for normalised text; empty when it has no Han."""
        if not has_han(normalised):
            return [], []
        readings = [self.syllables(normalised)]
        plain = self.syllables(normalised, phrases=False)
        if plain != readings[0]:
            readings.append(plain)
        full: list[str] = []
        initials: list[str] = []
        for parts in readings[:MAX_READINGS]:
            key = "".join(parts)
            if key not in full:
                full.append(key)
            abbrev = initials_of(parts)
            if abbrev not in initials:
                initials.append(abbrev)
        return full, initials

    def compact(self, normalised: str) -> str:
        """The full pinyin of text, compact (a Chinese query's homophone lookup)."""
        return "".join(self.syllables(normalised))
