"""The recommender's vectorised scoring and its candidate handling, on small fixed catalogues."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import numpy.typing as npt

from services.recommend.engine import (
    MAX_PROFILE_FEATURES,
    Context,
    Item,
    Recommender,
    item_features,
)

# 40 novels share CLC I247 and the word 小说: far past the share a feature may be common in.
FILLER = [Item(100 + n, f"都市小说第{n}部", "作者{n}", "I247.5", "小说") for n in range(40)]
SF = [
    Item(1, "三体", "刘慈欣", "I247.55", "科幻;小说", "地球往事"),
    Item(2, "三体Ⅱ：黑暗森林", "刘慈欣", "I247.55", "科幻;小说", "地球往事"),
    Item(3, "球状闪电", "刘慈欣", "I247.55", "科幻"),
    Item(4, "数学分析", "华罗庚", "O17", "数学"),
]
HISTORIES = {
    10: [1, 3],
    11: [1, 2],
    12: [2, 3, 4],
    13: [4, 100, 101],
    14: [100, 101, 102],
}


def model(**kwargs: object) -> Recommender:
    return Recommender([*SF, *FILLER], HISTORIES, **kwargs)  # type: ignore[arg-type]


def reference_content(rec: Recommender, history: list[int]) -> dict[int, float]:
    """Content scores worked out the slow, obvious way: TF-IDF vectors as dicts."""
    items = list(rec.items.values())
    raw = {item.pk: item_features(item) for item in items}
    df: dict[str, int] = defaultdict(int)
    for feats in raw.values():
        for f in feats:
            df[f] += 1
    n = len(raw)
    limit = max(50, int(n * rec.weights.max_df_share))
    idf = {f: math.log(n / c) for f, c in df.items() if 1 < c <= limit}
    vectors = {}
    for pk, feats in raw.items():
        vec = {f: (1 + math.log(c)) * idf[f] for f, c in feats.items() if f in idf}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vectors[pk] = {f: v / norm for f, v in vec.items()}
    profile: dict[str, float] = defaultdict(float)
    for pk in history:
        for f, v in vectors[pk].items():
            profile[f] += v
    return {pk: sum(w * vec.get(f, 0.0) for f, w in profile.items()) for pk, vec in vectors.items()}


def reference_knn(rec: Recommender, reader: int, history: list[int]) -> dict[int, float]:
    readers_of: dict[int, list[int]] = defaultdict(list)
    for r, pks in HISTORIES.items():
        for pk in pks:
            readers_of[pk].append(r)
    scores: dict[int, float] = defaultdict(float)
    for pk in history:
        for other in readers_of[pk]:
            if other == reader:
                continue
            share = 1 / math.sqrt(len(readers_of[pk])) / math.log2(2 + len(HISTORIES[other]))
            for nb in HISTORIES[other]:
                scores[nb] += share / math.sqrt(len(readers_of[nb]))
    return scores


def dense(rec: Recommender, scores: dict[int, float]) -> npt.NDArray[np.float64]:
    return np.array([scores.get(pk, 0.0) for pk in rec.items])


def test_vector_scores_equal_the_obvious_dict_arithmetic() -> None:
    rec = model()
    for reader, history in HISTORIES.items():
        hist = np.array([list(rec.items).index(pk) for pk in history], dtype=np.int64)
        np.testing.assert_allclose(
            rec._content_scores(hist), dense(rec, reference_content(rec, history)), atol=1e-12
        )
        np.testing.assert_allclose(
            rec._knn_scores(reader, hist),
            dense(rec, reference_knn(rec, reader, history)),
            atol=1e-12,
        )


def test_a_very_common_feature_is_dropped_and_the_obvious_best_book_still_wins() -> None:
    rec = model()
    # The reader read 三体; the same author and series make 黑暗森林 the obvious next book, even
    # though 40 other novels share the (dropped, too common) class and word.
    ranked = rec.rank(Context(history=[1]), n=5)
    assert ranked[0].pk == 2
    assert all(s.pk != 1 for s in ranked)
    assert ranked[0].reasons[0].kind == "borrowed" and ranked[0].reasons[0].title == "三体"


def test_a_profile_past_the_feature_cap_still_finds_the_best_book() -> None:
    # 40 mysteries by one author, each with a title of its own whose words one other book shares:
    # far more profile features than are looked up, and the author's next one must still win.
    def name(n: int, k: int) -> str:
        return "".join(chr(0x4E00 + 200 + 4 * n + j) for j in range(k))

    read = [Item(1000 + n, name(n, 4), "侦探甲", None, None, "谜题系列") for n in range(40)]
    partners = [Item(3000 + n, name(n, 4) + "续", f"其他{n}") for n in range(40)]
    target = Item(2000, "终章", "侦探甲", None, None, "谜题系列")
    rec = Recommender([*read, *partners, target, *FILLER], {1: [i.pk for i in read]})
    history = [i.pk for i in read]
    hist = np.array([list(rec.items).index(pk) for pk in history], dtype=np.int64)
    feats, _, _ = rec._vectors.gather(hist)
    assert len(set(feats.tolist())) > MAX_PROFILE_FEATURES
    assert rec.rank(Context(history=history), n=3)[0].pk == 2000


def test_the_shelf_filter_looks_further_down_until_enough_books_pass() -> None:
    rec = model()
    ctx = Context(history=[100])
    ranking = rec.ranking(ctx, n=2)
    full = ranking.head(len(ranking))
    # Only the last two books of the whole ranking are allowed: best() must reach them.
    allowed = set(full[-2:])
    assert ranking.best(2, allowed.__contains__) == full[-2:]
    # The head is the same ranking, whatever size is asked first.
    assert rec.ranking(ctx, n=2).head(3) == full[:3]
    assert rec.rank(ctx, n=len(full) + 5) == ranking.scored(full)


def test_ties_at_the_edge_of_the_head_go_to_the_smaller_pk() -> None:
    # 30 books with the same words (digits are not features) score alike for a reader of one.
    same = [Item(600 - n, f"机器人的故事{n}") for n in range(30)]
    other = [
        Item(700 + n, f"{chr(0x4E00 + 300 + 2 * n)}{chr(0x4E01 + 300 + 2 * n)}") for n in range(30)
    ]
    rec = Recommender([*same, *other], {1: [600]})
    ranking = rec.ranking(Context(history=[600]), n=1)
    everything = ranking.head(len(ranking))
    assert len(everything) == 29
    assert len({ranking.score(pk) for pk in everything}) == 1
    # The head is cut at the 3rd best, but every book tied with it competes: smallest pks win.
    assert ranking.head(3) == sorted(everything)[:3] == [571, 572, 573]


def test_candidates_keep_books_nobody_read_and_exclude_the_history() -> None:
    rec = model()
    ranked = rec.rank(Context(history=[1]), n=10, candidates=[1, 2, 4, 999])
    assert [s.pk for s in ranked] == [2, 4]
    assert ranked[1].reasons[-1].kind in ("popular", "fresh")


def test_subscriptions_lift_matching_books_once() -> None:
    rec = model()
    plain = rec.rank(Context(history=[100]), n=10, candidates=[4])
    followed = rec.rank(Context(history=[100], topics=["数学", "华罗庚"]), n=10, candidates=[4])
    assert followed[0].score == round(plain[0].score + rec.weights.subscription, 6)
    assert followed[0].reasons[0].kind == "subscribed" and followed[0].reasons[0].topic == "数学"
    # Without candidates the followed book joins the pool through its evidence and rises.
    before = [s.pk for s in rec.rank(Context(history=[100]), n=50)]
    after = [s.pk for s in rec.rank(Context(history=[100], topics=["华罗庚"]), n=50)]
    assert after.index(4) < before.index(4)
