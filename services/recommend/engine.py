"""The recommender: a content + item-kNN + peers + popularity hybrid, in plain Python.

Why a hybrid: on real school/university loans most titles have one reader, and about half the
titles a reader borrows next were never borrowed by anyone before, so collaborative filtering alone
cannot reach them. Content (jieba title words and character bigrams, CLC classes, tags, authors,
series) ranks unseen titles; item-kNN (readers who borrowed X also borrowed Y) ranks seen ones;
the reader's class and grade and the whole library's popularity break ties and serve readers with
no history. Every score keeps the evidence it came from, so each book carries a reason.

The model is built once from plain rows (``Item``, histories) and answers many readers; it holds
inverted postings, so answering costs the size of the reader's profile, not the catalogue.
"""

from __future__ import annotations

import heapq
import math
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlp.normalize import author_names, normalize, script_runs
from nlp.segment import Segmenter
from nlp.stopwords import TITLE_STOP_WORDS as _STOP_WORDS

# ISBD punctuation a title from another system may carry: 正题名 / 责任者 = 并列题名 : 副题名.
_ISBD_TAIL = re.compile(r"\s+(?:/|=|:)\s+.*$")
_CLC_SPLIT = re.compile(r"[./\-:]")
# Features of a reader's profile that are looked up (by weight); bounds the answer time.
MAX_PROFILE_FEATURES = 80


def clean_title(title: str) -> str:
    """A title without ISBD responsibility, parallel title and subtitle; volumes are kept."""
    return _ISBD_TAIL.sub("", title.strip()).strip()


def title_key(title: str) -> str:
    """The form titles are matched in across systems (loan import, benchmark)."""
    return normalize(clean_title(title)).replace(" ", "")


@dataclass(frozen=True, slots=True)
class Item:
    pk: int
    title: str
    authors: str | None = None
    clc: str | None = None
    tags: str | None = None
    series: str | None = None
    record_id: str = ""  # the catalogue's control number, for programs that read our answers


@dataclass(frozen=True, slots=True)
class Weights:
    """How the evidence adds up; tuned on a validation hold-out of real loans (benchmarks/)."""

    content: float = 1.0
    knn: float = 0.9
    class_peers: float = 0.35
    grade_peers: float = 0.2
    # An explicit "I follow this" outweighs what is inferred from loans.
    subscription: float = 1.2
    popularity: float = 0.08
    # Evidence from a reader's older loans counts less; 1.0 means every loan counts the same.
    max_df_share: float = 0.04


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a book is recommended: ``kind`` picks the message, the rest fills it."""

    # "borrowed", "class", "grade", "subscribed", "popular", "fresh", "pick", "grade_taste"
    kind: str
    title: str | None = None
    group: str | None = None
    count: int = 0
    topic: str | None = None
    blurb: str | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind}
        for key in ("title", "group", "topic", "blurb"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.count:
            data["count"] = self.count
        return data


@dataclass(frozen=True, slots=True)
class Scored:
    pk: int
    score: float
    reasons: tuple[Reason, ...]


@dataclass(slots=True)
class Context:
    """What is known about one reader besides their own loans."""

    history: Sequence[int] = ()  # record pks, oldest first
    class_name: str | None = None
    grade: str | None = None
    topics: Sequence[str] = ()
    # Recent loans of the reader's class and grade: record pk -> how many classmates.
    class_counts: Mapping[int, int] = field(default_factory=dict)
    grade_counts: Mapping[int, int] = field(default_factory=dict)


def _bigrams(run: str) -> Iterable[str]:
    if len(run) == 1:
        return (run,)
    return (run[i : i + 2] for i in range(len(run) - 1))


_SEGMENTER: list[Segmenter] = []


def _segmenter() -> Segmenter:
    """jieba for title words: one per process, its dictionary cache in the temp folder."""
    if not _SEGMENTER:
        _SEGMENTER.append(Segmenter(Path(tempfile.gettempdir()) / "shuxiang-jieba"))
    return _SEGMENTER[0]


def _title_features(feats: Counter[str], title: str) -> None:
    for is_cjk_run, run in script_runs(normalize(clean_title(title))):
        if is_cjk_run:
            for gram in _bigrams(run):
                feats["g:" + gram] += 1
            for word in _segmenter().cut(run):
                if len(word) >= 2 and word not in _STOP_WORDS:
                    feats["w:" + word] += 2
        elif len(run) >= 2 and not run.isdigit() and run not in _STOP_WORDS:
            feats["w:" + run] += 2


def _compact(text: str) -> str:
    return normalize(text).replace(" ", "")


def item_features(item: Item) -> Counter[str]:
    """Raw feature counts of one record: words, bigrams, CLC prefixes, tags, authors, series."""
    feats: Counter[str] = Counter()
    _title_features(feats, item.title)
    if item.clc:
        code = _CLC_SPLIT.split(item.clc.strip().upper())[0]
        for size in sorted({1, 2, 3, len(code)}):
            if 0 < size <= len(code):
                feats["c:" + code[:size]] += 1
    tags = [_compact(tag) for tag in (item.tags or "").replace("；", ";").split(";")]
    names = [_compact(name) for name in author_names(item.authors)]
    series = [_compact(item.series)] if item.series else []
    for prefix, values, weight in (("t:", tags, 2), ("a:", names, 3), ("s:", series, 3)):
        for value in values:
            if value:
                feats[prefix + value] += weight
    return feats


def topic_text(item: Item) -> str:
    """What a followed subject or author is looked for in: tags, authors, title, series."""
    haystack = " ".join(filter(None, (item.tags, item.authors, item.title, item.series)))
    return normalize(haystack).replace(" ", "")


def topic_matches(topic: str, item: Item, text: str | None = None) -> bool:
    """A followed subject or author: in the tags, the author statement, the title or CLC."""
    key = normalize(topic).replace(" ", "")
    if not key:
        return False
    if item.clc and key.isascii() and item.clc.upper().startswith(key.upper()):
        return True
    return key in (text if text is not None else topic_text(item))


class Recommender:
    """Built once from the catalogue and everyone's loans; answers readers one by one."""

    def __init__(
        self,
        items: Iterable[Item],
        histories: Mapping[int, Sequence[int]],
        *,
        weights: Weights | None = None,
    ) -> None:
        self.weights = weights or Weights()
        self.items: dict[int, Item] = {item.pk: item for item in items}
        self.vectors: dict[int, dict[str, float]] = {}
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._topic_text: dict[int, str] = {}
        self._build_content()
        self.readers_of: dict[int, list[int]] = defaultdict(list)
        self.items_of: dict[int, list[int]] = {}
        for reader, pks in histories.items():
            unique = list(dict.fromkeys(pk for pk in pks if pk in self.items))
            self.items_of[reader] = unique
            for pk in unique:
                self.readers_of[pk].append(reader)
        top = max((len(r) for r in self.readers_of.values()), default=0)
        scale = math.log1p(top) or 1.0
        self._popularity = {pk: math.log1p(len(r)) / scale for pk, r in self.readers_of.items()}
        self._by_popularity = sorted(
            self.readers_of, key=lambda pk: (-len(self.readers_of[pk]), pk)
        )

    def _build_content(self) -> None:
        raw = {pk: item_features(item) for pk, item in self.items.items()}
        df: Counter[str] = Counter()
        for feats in raw.values():
            df.update(feats.keys())
        n = max(1, len(raw))
        # Features in a large share of the catalogue say little and cost long postings.
        limit = max(50, int(n * self.weights.max_df_share))
        idf = {f: math.log(n / c) for f, c in df.items() if 1 < c <= limit}
        for pk, feats in raw.items():
            vec = {f: (1 + math.log(c)) * idf[f] for f, c in feats.items() if f in idf}
            norm = math.sqrt(sum(v * v for v in vec.values()))
            if norm:
                vec = {f: v / norm for f, v in vec.items()}
                for f, v in vec.items():
                    self.postings[f].append((pk, v))
            self.vectors[pk] = vec

    # -- scoring ---------------------------------------------------------------------------------

    def popularity(self, pk: int) -> float:
        return self._popularity.get(pk, 0.0)

    def _content_scores(self, history: Sequence[int]) -> dict[int, float]:
        profile: dict[str, float] = defaultdict(float)
        for pk in history:
            for f, v in self.vectors.get(pk, {}).items():
                profile[f] += v
        # The strongest features carry the ranking; the long tail costs time and adds noise.
        strongest = heapq.nlargest(MAX_PROFILE_FEATURES, profile.items(), key=lambda fv: fv[1])
        scores: dict[int, float] = defaultdict(float)
        for f, weight in strongest:
            for pk, v in self.postings.get(f, ()):
                scores[pk] += weight * v
        return scores

    def _knn_scores(self, reader: int | None, history: Sequence[int]) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for pk in history:
            others = self.readers_of.get(pk, ())
            if not others:
                continue
            base = 1.0 / math.sqrt(len(others))
            for other in others:
                if other == reader:
                    continue
                theirs = self.items_of[other]
                # A reader who borrowed everything says little about any one pair.
                share = base / math.log2(2 + len(theirs))
                for nb in theirs:
                    scores[nb] += share / math.sqrt(len(self.readers_of[nb]))
        return scores

    def rank(
        self,
        ctx: Context,
        *,
        n: int,
        reader: int | None = None,
        candidates: Collection[int] | None = None,
        allowed: Callable[[int], bool] | None = None,
    ) -> list[Scored]:
        """The ``n`` best books for a reader, best first, with their reasons.

        ``candidates`` limits the pool (this week's new books); ``allowed`` filters it (on the
        shelf now, not withdrawn). Books in the reader's history are never returned."""
        w = self.weights
        history = [pk for pk in dict.fromkeys(ctx.history) if pk in self.items]
        seen = set(history)
        content = _scaled(self._content_scores(history))
        knn = _scaled(self._knn_scores(reader, history))
        klass = _scaled({pk: float(c) for pk, c in ctx.class_counts.items()})
        grade = _scaled({pk: float(c) for pk, c in ctx.grade_counts.items()})
        pool: Iterable[int]
        if candidates is not None:
            pool = candidates
        else:
            pool = set(content) | set(knn) | set(klass) | set(grade)
            if len(pool) < n * 3:
                pool |= set(self._popular(n * 5))
        scored: list[tuple[float, int]] = []
        for pk in pool:
            if pk in seen or pk not in self.items or (allowed is not None and not allowed(pk)):
                continue
            score = (
                w.content * content.get(pk, 0.0)
                + w.knn * knn.get(pk, 0.0)
                + w.class_peers * klass.get(pk, 0.0)
                + w.grade_peers * grade.get(pk, 0.0)
                + w.popularity * self.popularity(pk)
            )
            if ctx.topics and self._follows(ctx.topics, pk):
                score += w.subscription
            scored.append((score, pk))
        best = heapq.nsmallest(n, scored, key=lambda pair: (-pair[0], pair[1]))
        return [
            Scored(pk, round(score, 6), self._reasons(pk, ctx, history, content, knn))
            for score, pk in best
        ]

    def _follows(self, topics: Sequence[str], pk: int) -> bool:
        text = self._topic_text.get(pk)
        if text is None:
            text = self._topic_text[pk] = topic_text(self.items[pk])
        return any(topic_matches(t, self.items[pk], text) for t in topics)

    def _popular(self, n: int) -> list[int]:
        return self._by_popularity[:n]

    # -- reasons -------------------------------------------------------------------------------

    def _reasons(
        self,
        pk: int,
        ctx: Context,
        history: Sequence[int],
        content: Mapping[int, float],
        knn: Mapping[int, float],
    ) -> tuple[Reason, ...]:
        reasons: list[Reason] = []
        topic = next((t for t in ctx.topics if self._follows((t,), pk)), None)
        if topic is not None:
            reasons.append(Reason("subscribed", topic=topic))
        if content.get(pk, 0.0) or knn.get(pk, 0.0):
            because = self._closest(pk, history)
            if because is not None:
                reasons.append(Reason("borrowed", title=self.items[because].title))
        class_count = ctx.class_counts.get(pk, 0)
        grade_count = ctx.grade_counts.get(pk, 0)
        if class_count and ctx.class_name:
            reasons.append(Reason("class", group=ctx.class_name, count=class_count))
        elif grade_count and ctx.grade:
            reasons.append(Reason("grade", group=ctx.grade, count=grade_count))
        if not reasons:
            count = len(self.readers_of.get(pk, ()))
            # Nobody borrowed it yet (a new book): say so rather than call it popular.
            reasons.append(Reason("popular", count=count) if count else Reason("fresh"))
        return tuple(reasons)

    def _closest(self, pk: int, history: Sequence[int]) -> int | None:
        """The book in the history this one is most like (content, then co-borrowing)."""
        target = self.vectors.get(pk, {})
        readers = set(self.readers_of.get(pk, ()))
        best, best_score = None, 0.0
        # Later loans win ties: "because you borrowed" reads best about a recent book.
        for h in reversed(history):
            vec = self.vectors.get(h, {})
            sim = sum(v * target.get(f, 0.0) for f, v in vec.items())
            shared = len(readers.intersection(self.readers_of.get(h, ())))
            sim += 0.5 * shared / math.sqrt(max(1, len(readers)) * max(1, len(self.readers_of[h])))
            if sim > best_score:
                best, best_score = h, sim
        return best


def _scaled(scores: Mapping[int, float]) -> dict[int, float]:
    """Scores divided by the reader's best, so evidence of different kinds adds up fairly."""
    top = max(scores.values(), default=0.0)
    if top <= 0:
        return {}
    return {pk: s / top for pk, s in scores.items() if s > 0}
