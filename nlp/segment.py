"""jieba, loaded lazily once per process, with the library's own words added.

jieba is only used on the query side, to tell which character bigrams of a query belong to one
word (those must all match) and which straddle two words (optional). The index is built from
bigrams and does not depend on the dictionary, so processes whose dictionaries differ (one loaded
before an import added new titles) still search the same index the same way.

The cache file goes to a folder we own (default ``./var/cache``): jieba's default is the system
temp dir. Paddle mode is never enabled (it pip-installs at run time).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["add_library_words", "configure", "cut", "is_loaded", "load"]

DEFAULT_CACHE_DIR = Path(os.environ.get("SHUXIANG_DATA_DIR", "var")) / "cache"
# Frequency given to library words: enough to win over splitting them, like jieba's user dicts.
LIBRARY_WORD_FREQ = 2000
MAX_LIBRARY_WORD = 12

_lock = threading.Lock()
_cache_dir: Path = DEFAULT_CACHE_DIR
_tokenizer: Any = None


def configure(cache_dir: Path) -> None:
    """Where jieba keeps its dictionary cache; call before the first search in this process."""
    global _cache_dir
    _cache_dir = Path(cache_dir)


def is_loaded() -> bool:
    return _tokenizer is not None


def load() -> Any:
    """The process's jieba tokenizer, loading the dictionary on first use (~1.5 s)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                _cache_dir.mkdir(parents=True, exist_ok=True)
                tokenizer = jieba.dt
                tokenizer.tmp_dir = str(_cache_dir)
                tokenizer.cache_file = "jieba.cache"
                tokenizer.initialize()
                _tokenizer = tokenizer
    return _tokenizer


def _worth_adding(word: str) -> bool:
    return 2 <= len(word) <= MAX_LIBRARY_WORD and all("\u4e00" <= ch <= "\u9fff" for ch in word)


def add_library_words(words: Iterable[str]) -> int:
    """Teach jieba titles, names and series (normalised, compact); returns how many were new.

    Only adds when jieba is already loaded: the search process loads it and then adds the whole
    library from the index (nlp.search.warm_up); importers don't need to pay for jieba.
    """
    if _tokenizer is None:
        return 0
    added = 0
    freq = _tokenizer.FREQ
    with _lock:
        for word in words:
            # Words jieba already knows keep their own (usually higher) frequency.
            if freq.get(word) or not _worth_adding(word):
                continue
            _tokenizer.add_word(word, LIBRARY_WORD_FREQ)
            added += 1
    return added


def cut(text: str) -> list[str]:
    """Accurate-mode segmentation (HMM on for unknown names)."""
    return list(load().cut(text, HMM=True))
