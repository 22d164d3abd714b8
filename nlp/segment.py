"""jieba, loaded lazily once per search engine, with the library's own words added.

jieba is only used on the query side, to tell which character bigrams of a query belong to one
word (those must all match) and which straddle two words (optional). The index is built from
bigrams and does not depend on the dictionary, so processes whose dictionaries differ (one loaded
before an import added new titles) still search the same index the same way.

The cache file goes to a folder the caller owns (settings.data_dir / "cache"): jieba's default is
the system temp dir. Paddle mode is never enabled (it pip-installs at run time). Each Segmenter
has its own jieba Tokenizer, so nothing is shared through jieba's module-level default.
"""

from __future__ import annotations

import logging
import marshal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["LIBRARY_WORD_FREQ", "Segmenter"]

# Frequency given to library words: enough to win over splitting them, like jieba's user dicts.
LIBRARY_WORD_FREQ = 2000
MAX_LIBRARY_WORD = 12
CACHE_FILE = "jieba.cache"


def _worth_adding(word: str) -> bool:
    return 2 <= len(word) <= MAX_LIBRARY_WORD and all("\u4e00" <= ch <= "\u9fff" for ch in word)


class Segmenter:
    """A jieba tokenizer with its dictionary cache in ``cache_dir``."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)
        self._lock = threading.Lock()
        self._tokenizer: Any = None

    @property
    def loaded(self) -> bool:
        return self._tokenizer is not None

    def load(self) -> Any:
        """The tokenizer, loading the dictionary on first use (~1.5 s)."""
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    tokenizer = jieba.Tokenizer()
                    tokenizer.tmp_dir = str(self.cache_dir)
                    tokenizer.cache_file = CACHE_FILE
                    try:
                        # jieba reads its own cache with marshal.load on the open file, in
                        # small reads: 1.3 s, where marshal.loads of the whole file takes 0.3 s.
                        # The file is jieba's own format in our own cache folder, as before.
                        frequencies, total = marshal.loads(  # noqa: S302
                            (self.cache_dir / CACHE_FILE).read_bytes()
                        )
                    except (OSError, EOFError, ValueError, TypeError):
                        tokenizer.initialize()  # builds the dictionary and writes the cache
                    else:
                        tokenizer.FREQ, tokenizer.total = frequencies, total
                        tokenizer.initialized = True
                    self._tokenizer = tokenizer
        return self._tokenizer

    def add_library_words(self, words: Iterable[str]) -> int:
        """Teach jieba titles, names and series (normalised, compact); returns how many were new.

        Only adds when jieba is already loaded: the search process loads it and then adds the
        whole library from the index (SearchEngine.warm_up); importers don't pay for jieba.
        """
        tokenizer = self._tokenizer
        if tokenizer is None:
            return 0
        added = 0
        freq = tokenizer.FREQ
        with self._lock:
            for word in words:
                # Words jieba already knows keep their own (usually higher) frequency.
                if freq.get(word) or not _worth_adding(word):
                    continue
                tokenizer.add_word(word, LIBRARY_WORD_FREQ)
                added += 1
        return added

    def cut(self, text: str) -> list[str]:
        """Accurate-mode segmentation (HMM on for unknown names)."""
        return list(self.load().cut(text, HMM=True))
