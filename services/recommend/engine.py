"""The recommender: a content + item-kNN + peers + popularity hybrid.

Why a hybrid: on real school/university loans most titles have one reader, and about half the
titles a reader borrows next were never borrowed by anyone before, so collaborative filtering alone
cannot reach them. Content (jieba title words and character bigrams, CLC classes, tags, authors,
series) ranks unseen titles; item-kNN (readers who borrowed X also borrowed Y) ranks seen ones;
the reader's class and grade and the whole library's popularity break ties and serve readers with
no history. Every score keeps the evidence it came from, so each book carries a reason.

The model is built once from plain rows (``Item``, histories) and answers many readers. It holds
inverted postings and loans as flat numpy arrays (CSR), so one answer is a handful of vector
operations: gather the postings of the reader's strongest features and the loans of their
co-borrowers, add them up per book with ``bincount``, and sort only the head of the result. At
1,300 readers x 81k titles that is a few milliseconds, where Python dict loops took ~170 ms p99.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nlp.normalize import author_names, normalize, script_runs
from nlp.segment import Segmenter
from nlp.stopwords import TITLE_STOP_WORDS as _STOP_WORDS

# ISBD punctuation a title from another system may carry: 正题名 / 责任者 = 并列题名 : 副题名.
_ISBD_TAIL = re.compile(r"\s+(?:/|=|:)\s+.*$")
_CLC_SPLIT = re.compile(r"[./\-:]")
# Features of a reader's profile that are looked up (by weight); bounds the answer time.
MAX_PROFILE_FEATURES = 80
# Followed subjects whose matching books are remembered per model (each costs one bit per book).
MAX_CACHED_TOPICS = 512

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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
    name: str = ""  # the title with its volume (services.titles.book_name); "" for the title

    @property
    def label(self) -> str:
        """What readers are shown: the name, which says which volume."""
        return self.name or self.title


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


def topic_key(topic: str) -> str:
    return normalize(topic).replace(" ", "")


def topic_matches(
    topic: str, item: Item, text: str | None = None, *, key: str | None = None
) -> bool:
    """A followed subject or author: in the tags, the author statement, the title or CLC."""
    key = topic_key(topic) if key is None else key
    if not key:
        return False
    if item.clc and key.isascii() and item.clc.upper().startswith(key.upper()):
        return True
    return key in (text if text is not None else topic_text(item))


class _Rows:
    """A sparse matrix as three flat arrays (CSR, columns sorted within a row): the postings and
    histories are gathered with a few numpy calls instead of Python loops over dicts."""

    __slots__ = ("data", "indices", "indptr", "n_cols")

    def __init__(self, rows: IntArray, cols: IntArray, vals: FloatArray, n_rows: int, n_cols: int):
        order = np.lexsort((cols, rows))
        self.indices: IntArray = cols[order]
        self.data: FloatArray = vals[order]
        counts = np.bincount(rows, minlength=n_rows)
        self.indptr: IntArray = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.n_cols = n_cols

    def lengths(self) -> IntArray:
        return np.diff(self.indptr)

    def row(self, i: int) -> tuple[IntArray, FloatArray]:
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]

    def gather(self, rows: IntArray) -> tuple[IntArray, FloatArray, IntArray]:
        """The entries of ``rows``, concatenated: columns, values, and which of ``rows`` (by
        position) each came from."""
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        total = int(lens.sum())
        if total == 0:
            return _EMPTY_INT, _EMPTY_FLOAT, _EMPTY_INT
        ends = np.cumsum(lens)
        offsets = np.repeat(starts - ends + lens, lens) + np.arange(total)
        owner = np.repeat(np.arange(len(rows)), lens)
        return self.indices[offsets], self.data[offsets], owner

    def weighted_sum(self, rows: IntArray, weights: FloatArray) -> FloatArray:
        """sum_k weights[k] * row(rows[k]) as a dense vector over the columns."""
        cols, vals, owner = self.gather(rows)
        return _sum_by(cols, vals * weights[owner], self.n_cols)


_EMPTY_INT: IntArray = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT: FloatArray = np.zeros(0, dtype=np.float64)


class Recommender:
    """Built once from the catalogue and everyone's loans; answers readers one by one.

    Records are held by position (``_pks``, ascending, so position order is pk order and breaks
    ties the same way); content is an item x feature matrix and its transpose (the postings);
    loans are a reader x item matrix and its transpose."""

    def __init__(
        self,
        items: Iterable[Item],
        histories: Mapping[int, Sequence[int]],
        *,
        weights: Weights | None = None,
    ) -> None:
        self.weights = weights or Weights()
        self.items: dict[int, Item] = {item.pk: item for item in sorted(items, key=_pk)}
        self._pks: IntArray = np.fromiter(self.items, dtype=np.int64, count=len(self.items))
        self._index: dict[int, int] = {pk: i for i, pk in enumerate(self.items)}
        # Records that read the same (two editions of one volume), by position: a reader who
        # borrowed one is not offered the other "because" of it.
        by_label: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(self.items.values()):
            by_label[item.label].append(i)
        self._namesakes: dict[int, list[int]] = {
            i: group for group in by_label.values() if len(group) > 1 for i in group
        }
        self._build_content()
        self.items_of: dict[int, list[int]] = {}
        for reader, pks in histories.items():
            self.items_of[reader] = list(dict.fromkeys(pk for pk in pks if pk in self.items))
        self._build_loans()
        self._topic_texts: list[str] | None = None
        # No evidence of a kind: one shared, read-only vector of zeros instead of a new one.
        self._nothing: FloatArray = np.zeros(len(self._pks))
        self._nothing.flags.writeable = False
        self._topic_masks: dict[str, BoolArray] = {}

    def _build_content(self) -> None:
        raw = [item_features(item) for item in self.items.values()]
        df: Counter[str] = Counter()
        for feats in raw:
            df.update(feats.keys())
        n = max(1, len(raw))
        # Features in a large share of the catalogue say little and cost long postings.
        limit = max(50, int(n * self.weights.max_df_share))
        idf = {f: math.log(n / c) for f, c in df.items() if 1 < c <= limit}
        column = {f: j for j, f in enumerate(idf)}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for i, feats in enumerate(raw):
            vec = {column[f]: (1 + math.log(c)) * idf[f] for f, c in feats.items() if f in idf}
            norm = math.sqrt(sum(v * v for v in vec.values()))
            if norm:
                rows.extend([i] * len(vec))
                cols.extend(vec)
                vals.extend(v / norm for v in vec.values())
        r, c = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
        v = np.array(vals, dtype=np.float64)
        self._vectors = _Rows(r, c, v, len(raw), len(column))
        self._postings = _Rows(c, r, v, len(column), len(raw))

    def _build_loans(self) -> None:
        readers = list(self.items_of)
        self._reader_index = {reader: k for k, reader in enumerate(readers)}
        rows = [k for k, reader in enumerate(readers) for _ in self.items_of[reader]]
        cols = [self._index[pk] for reader in readers for pk in self.items_of[reader]]
        r, c = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
        ones = np.ones(len(rows), dtype=np.float64)
        self._loans = _Rows(r, c, ones, len(readers), len(self.items))
        self._readers = _Rows(c, r, ones, len(self.items), len(readers))
        counts = self._readers.lengths()
        self._reader_counts = counts
        # A reader who borrowed everything says little about any one pair.
        self._reader_share: FloatArray = 1.0 / np.log2(2 + self._loans.lengths())
        self._inv_sqrt_readers: FloatArray = 1.0 / np.sqrt(np.maximum(counts, 1))
        scale = math.log1p(int(counts.max(initial=0))) or 1.0
        self._popularity: FloatArray = np.log1p(counts) / scale
        borrowed = np.flatnonzero(counts)
        self._by_popularity: IntArray = borrowed[np.lexsort((borrowed, -counts[borrowed]))]

    # -- scoring ---------------------------------------------------------------------------------

    def popularity(self, pk: int) -> float:
        i = self._index.get(pk)
        return 0.0 if i is None else float(self._popularity[i])

    def _content_scores(self, history: IntArray) -> FloatArray:
        feats, vals, _ = self._vectors.gather(history)
        if not len(feats):
            return self._nothing
        uniq, inverse = np.unique(feats, return_inverse=True)
        profile = _sum_by(inverse, vals, len(uniq))
        # The strongest features carry the ranking; the long tail costs time and adds noise.
        if len(uniq) > MAX_PROFILE_FEATURES:
            keep = np.argpartition(-profile, MAX_PROFILE_FEATURES - 1)[:MAX_PROFILE_FEATURES]
            uniq, profile = uniq[keep], profile[keep]
        return self._postings.weighted_sum(uniq, profile)

    def _knn_scores(self, reader: int | None, history: IntArray) -> FloatArray:
        """Readers who borrowed X also borrowed Y, each co-borrowing damped by how many read X,
        how many read Y and how much the other reader borrowed."""
        base = self._inv_sqrt_readers[history] * (self._reader_counts[history] > 0)
        others = self._readers.weighted_sum(history, base)
        k = self._reader_index.get(reader) if reader is not None else None
        if k is not None:
            others[k] = 0.0
        others *= self._reader_share
        who = np.flatnonzero(others)
        if not len(who):
            return self._nothing
        return self._loans.weighted_sum(who, others[who]) * self._inv_sqrt_readers

    def ranking(
        self,
        ctx: Context,
        *,
        reader: int | None = None,
        candidates: Collection[int] | None = None,
        n: int = 10,
    ) -> Ranking:
        """Every book scored for one reader; ``Ranking`` hands them out best first.

        ``candidates`` limits the pool (this week's new books); otherwise the pool is what any
        evidence points at (plus the most popular books when that is thin, ``n`` the size asked
        for). Books in the reader's history are never in it."""
        w = self.weights
        history = [pk for pk in dict.fromkeys(ctx.history) if pk in self._index]
        hist = np.array([self._index[pk] for pk in history], dtype=np.int64)
        content = _scaled(self._content_scores(hist))
        knn = _scaled(self._knn_scores(reader, hist))
        klass = _scaled(self._dense(ctx.class_counts))
        grade = _scaled(self._dense(ctx.grade_counts))
        if candidates is not None:
            pool = np.unique(np.array([self._index[pk] for pk in candidates if pk in self._index]))
            pool = pool.astype(np.int64)
        else:
            pool = np.flatnonzero((content > 0) | (knn > 0) | (klass > 0) | (grade > 0))
            # Thin evidence (the reader's own books counted): the most popular books join.
            if len(pool) < n * 3:
                pool = np.union1d(pool, self._by_popularity[: n * 5])
        seen = [j for h in hist.tolist() for j in self._namesakes.get(h, [h])]
        pool = pool[~np.isin(pool, np.array(seen or hist, dtype=np.int64))]
        score = (
            w.content * content[pool]
            + w.knn * knn[pool]
            + w.class_peers * klass[pool]
            + w.grade_peers * grade[pool]
            + w.popularity * self._popularity[pool]
        )
        if ctx.topics:
            # A book counts once however many followed subjects it matches.
            followed = np.zeros(len(pool), dtype=bool)
            for topic in ctx.topics:
                followed |= self._topic_mask(topic)[pool]
            score = score + w.subscription * followed
        return Ranking(self, ctx, history, hist, pool, score, (content > 0) | (knn > 0))

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
        ranking = self.ranking(ctx, reader=reader, candidates=candidates, n=n)
        return ranking.scored(ranking.best(n, allowed))

    def one_per_name(self, pks: Iterable[int]) -> list[int]:
        """The first record of each name: two editions of one book are one line of a list."""
        seen: set[str] = set()
        out = []
        for pk in pks:
            label = self.items[pk].label
            if label not in seen:
                seen.add(label)
                out.append(pk)
        return out

    def _dense(self, counts: Mapping[int, int]) -> FloatArray:
        if not counts:
            return self._nothing
        out = np.zeros(len(self._pks))
        for pk, c in counts.items():
            i = self._index.get(pk)
            if i is not None:
                out[i] = c
        return out

    def _topic_mask(self, topic: str) -> BoolArray:
        """Which books a followed subject matches; worked out once per subject per model."""
        mask = self._topic_masks.get(topic)
        if mask is None:
            if self._topic_texts is None:
                self._topic_texts = [topic_text(item) for item in self.items.values()]
            key = topic_key(topic)
            found = (
                topic_matches(topic, item, text, key=key)
                for item, text in zip(self.items.values(), self._topic_texts, strict=True)
            )
            mask = np.fromiter(found, dtype=bool, count=len(self._pks))
            if len(self._topic_masks) >= MAX_CACHED_TOPICS:
                self._topic_masks.clear()
            self._topic_masks[topic] = mask
        return mask

    # -- reasons -------------------------------------------------------------------------------

    def _reasons(
        self, i: int, ctx: Context, ranking: Ranking, evidence: bool
    ) -> tuple[Reason, ...]:
        pk = int(self._pks[i])
        reasons: list[Reason] = []
        topic = next((t for t in ctx.topics if self._topic_mask(t)[i]), None)
        if topic is not None:
            reasons.append(Reason("subscribed", topic=topic))
        if evidence:
            because = ranking.closest(i)
            if because is not None:
                reasons.append(Reason("borrowed", title=self.items[because].label))
        class_count = ctx.class_counts.get(pk, 0)
        grade_count = ctx.grade_counts.get(pk, 0)
        if class_count and ctx.class_name:
            reasons.append(Reason("class", group=ctx.class_name, count=class_count))
        elif grade_count and ctx.grade:
            reasons.append(Reason("grade", group=ctx.grade, count=grade_count))
        if not reasons:
            count = int(self._reader_counts[i])
            # Nobody borrowed it yet (a new book): say so rather than call it popular.
            reasons.append(Reason("popular", count=count) if count else Reason("fresh"))
        return tuple(reasons)


class Ranking:
    """One reader's scored pool. Books come out best first (score, then pk) a few at a time, so
    a filter that costs a query (on the shelf now?) only looks at the head of the list."""

    def __init__(
        self,
        model: Recommender,
        ctx: Context,
        history: list[int],
        hist: IntArray,
        pool: IntArray,
        score: FloatArray,
        evidence: BoolArray,
    ) -> None:
        self.model = model
        self.ctx = ctx
        self.history = history
        self._hist = hist
        self._pool = pool  # ascending positions
        self._score = score
        self._evidence = evidence
        self._order: IntArray | None = None  # positions into the pool, best first
        self._complete = False
        self._history_vectors: tuple[IntArray, FloatArray, IntArray] | None = None
        self._history_readers: tuple[IntArray, IntArray] | None = None

    def __len__(self) -> int:
        return len(self._pool)

    def head(self, k: int) -> list[int]:
        """The first ``k`` books of the pool (pks), best first."""
        if self._order is None or (len(self._order) < k and not self._complete):
            self._sort(k)
        order = self._order if self._order is not None else _EMPTY_INT
        return [int(pk) for pk in self.model._pks[self._pool[order[:k]]]]

    def _sort(self, k: int) -> None:
        score, pool = self._score, self._pool
        if k < len(pool):
            # Everything that scores at least the k-th best, so ties at the edge sort by pk.
            edge = score[np.argpartition(-score, k - 1)[k - 1]]
            head = np.flatnonzero(score >= edge)
        else:
            head = np.arange(len(pool))
        self._complete = len(head) == len(pool)
        self._order = head[np.lexsort((pool[head], -score[head]))]

    def best(self, n: int, allowed: Callable[[int], bool] | None = None) -> list[int]:
        """The ``n`` best books ``allowed`` lets through, looking further down only as needed."""
        k = max(n, 1) * 4
        while True:
            head = self.head(k)
            chosen = self.model.one_per_name(pk for pk in head if allowed is None or allowed(pk))
            chosen = chosen[:n]
            if len(chosen) >= n or len(head) < k:
                return chosen
            k *= 4

    def score(self, pk: int) -> float:
        i = self.model._index[pk]
        at = int(np.searchsorted(self._pool, i))
        return float(self._score[at])

    def scored(self, pks: Sequence[int]) -> list[Scored]:
        """The chosen books with their scores and reasons, in the order given."""
        model = self.model
        out = []
        for pk in pks:
            i = model._index[pk]
            reasons = model._reasons(i, self.ctx, self, bool(self._evidence[i]))
            out.append(Scored(pk, round(self.score(pk), 6), reasons))
        return out

    def closest(self, i: int) -> int | None:
        """The book in the history this one is most like (content, then co-borrowing)."""
        hist = self._hist
        if not len(hist):
            return None
        model = self.model
        if self._history_vectors is None:
            self._history_vectors = model._vectors.gather(hist)
            readers, _, owner = model._readers.gather(hist)
            self._history_readers = (readers, owner)
        feats, vals, owner = self._history_vectors
        sims = np.zeros(len(hist))
        t_feats, t_vals = model._vectors.row(i)
        if len(t_feats) and len(feats):
            at = np.minimum(np.searchsorted(t_feats, feats), len(t_feats) - 1)
            hit = t_feats[at] == feats
            sims += _sum_by(owner[hit], vals[hit] * t_vals[at[hit]], len(hist))
        readers, r_owner = self._history_readers or (_EMPTY_INT, _EMPTY_INT)
        t_readers, _ = model._readers.row(i)
        if len(t_readers) and len(readers):
            shared = np.bincount(r_owner[np.isin(readers, t_readers)], minlength=len(hist))
            counts = np.maximum(model._reader_counts[hist], 1)
            sims += 0.5 * shared / np.sqrt(max(1, len(t_readers)) * counts)
        # Later loans win ties: "because you borrowed" reads best about a recent book.
        latest = len(hist) - 1 - int(np.argmax(sims[::-1]))
        return self.history[latest] if sims[latest] > 0 else None


def _sum_by(index: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """weights added up by index, as a dense vector of ``size``."""
    return np.asarray(np.bincount(index, weights=weights, minlength=size), dtype=np.float64)


def _pk(item: Item) -> int:
    return item.pk


def _scaled(scores: FloatArray) -> FloatArray:
    """Scores divided by the reader's best, so evidence of different kinds adds up fairly."""
    top = float(scores.max(initial=0.0))
    if top <= 0:
        # Nothing scored: all zeros already (evidence is never negative), maybe the shared ones.
        return scores
    return np.maximum(scores, 0.0) / top
