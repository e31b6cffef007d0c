"""Retrieval metrics with ground truth: is the garment search really better, and by how much?

Why this module exists: the demo the workbook grew from compared "garment" and "full photo"
search by the mean similarity of the top-3 results, with no labels. A higher similarity is not
a better match (see `seed_statistic`). Here every image of a labelled catalogue queries all the
others (leave-one-out), the relevant answers are the other images of the same item, and the
usual retrieval metrics are computed exactly with numpy over the full cosine-similarity matrix.
Uncertainty comes from a paired bootstrap over queries and a Wilcoxon signed-rank test.

Ties (two candidates with exactly the same similarity) are broken **pessimistically**: an
irrelevant candidate is ranked before a relevant one with the same score, and among candidates
of the same relevance the lower index comes first. So a degenerate embedding that gives every
image the same vector scores as badly as it deserves (not by luck of the input order), and the
result never depends on the order of the catalogue rows.

Queries whose item has a single image have no relevant answer; they are excluded from every
average and counted in `Retrieval.excluded`, but they stay in the gallery as distractors.

This module knows nothing about ChromaDB or models: it takes vectors and labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

KS: tuple[int, ...] = (1, 5, 10)
NDCG_K = 10
BOOTSTRAP_ROUNDS = 2000
BOOTSTRAP_SEED = 0


def cosine_similarity(vectors: np.ndarray) -> np.ndarray:
    """The exact (n, n) cosine-similarity matrix, in float64 (rows re-normalised defensively)."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"vectors must be a non-empty 2-D array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(x)):
        raise ValueError("vectors contain a zero or non-finite row; drop failed embeddings first")
    x = x / norms
    return x @ x.T


def ranked_relevance(similarity: np.ndarray, labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """For every query (row), the other images sorted best first, and whether each is relevant.

    Returns (order, relevant): both (n, n-1); `order[q, r]` is the index of the image at rank
    r+1 for query q (the query itself removed), `relevant[q, r]` is True when it shares q's label.
    Ties are pessimistic (see the module docstring).
    """
    sim = np.asarray(similarity, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    if sim.shape != (n, n):
        raise ValueError(f"similarity must be ({n}, {n}) for {n} labels, got {sim.shape}")
    if n < 2:
        raise ValueError("leave-one-out needs at least two images")
    same = labels[:, None] == labels[None, :]
    is_self = np.eye(n, dtype=bool)
    rel = same & ~is_self
    index = np.broadcast_to(np.arange(n), (n, n))
    # np.lexsort: the LAST key is the primary one. Self last, then by score descending, then
    # irrelevant before relevant (pessimistic ties), then by index (stable).
    order = np.lexsort((index, rel.astype(np.int8), -sim, is_self.astype(np.int8)), axis=1)[:, :-1]
    relevant = np.take_along_axis(rel, order, axis=1)
    return order, relevant


@dataclass
class Retrieval:
    """Leave-one-out results of one condition.

    `per_query`: one row per evaluated query (image_id, item_id, ap, rr, hit@k…, ndcg@10,
    n_relevant, first_relevant_rank, top1_image_id, top1_item_id, top1_score).
    `excluded`: image ids of queries without any relevant answer (single-image items).
    `order`/`relevant`: full rankings for every image (rows aligned with `image_ids`).
    """

    image_ids: np.ndarray
    item_ids: np.ndarray
    per_query: pd.DataFrame
    excluded: list[str]
    order: np.ndarray = field(repr=False)
    relevant: np.ndarray = field(repr=False)
    similarity: np.ndarray = field(repr=False)

    def summary(self, ks: Sequence[int] = KS) -> dict[str, float | int]:
        """The condition's row of the metrics table (schema M of metrics.json)."""
        q = self.per_query
        out: dict[str, float | int] = {f"recall@{k}": float(self.recall_at(k)) for k in ks}
        out.update({"map": _mean(q["ap"]), "mrr": _mean(q["rr"]), f"ndcg@{NDCG_K}": _mean(q[f"ndcg@{NDCG_K}"]),
                    "queries": int(len(q)), "excluded_queries": len(self.excluded)})
        return out

    def recall_at(self, k: int) -> float:
        """Hit rate: the fraction of queries with at least one relevant image in the top k."""
        if not len(self.per_query):
            return float("nan")
        mask = self._evaluated
        return float(self.relevant[mask, :k].any(axis=1).mean())

    def recall_curve(self, max_k: int = 20) -> np.ndarray:
        """Recall@k (hit rate) for k = 1..max_k: the curve a notebook plots."""
        max_k = min(max_k, self.relevant.shape[1])
        hits = np.logical_or.accumulate(self.relevant[self._evaluated, :max_k], axis=1)
        return hits.mean(axis=0) if len(hits) else np.full(max_k, np.nan)

    def top_k(self, k: int) -> np.ndarray:
        """(n, k) indices of each image's k nearest other images (all rows, even excluded)."""
        return self.order[:, :k]

    @property
    def _evaluated(self) -> np.ndarray:
        return self.relevant.any(axis=1)


def _scored(sim: np.ndarray, order: np.ndarray, rel: np.ndarray, query_ids: np.ndarray, query_items: np.ndarray,
            hit_ids: np.ndarray, hit_items: np.ndarray, ks: Sequence[int], ndcg_k: int) -> Retrieval:
    """The per-query metrics of a ranked relevance matrix: one place for AP, RR, hit@k and nDCG, so
    leave-one-out and query-vs-gallery retrieval are scored the same way."""
    n_rel = rel.sum(axis=1)
    ok = n_rel > 0
    positions = np.arange(1, rel.shape[1] + 1)
    # AP: mean over the relevant images of the precision at each one's rank.
    precision = np.cumsum(rel, axis=1) / positions
    ap = np.where(ok, (precision * rel).sum(axis=1) / np.maximum(n_rel, 1), np.nan)
    first = np.argmax(rel, axis=1)  # index of the first True (0 when none; masked below)
    rr = np.where(ok, 1.0 / (first + 1), np.nan)
    # nDCG@k with binary gains: DCG / ideal DCG (all relevant images first).
    discounts = 1.0 / np.log2(np.arange(2, ndcg_k + 2))
    top = rel[:, :ndcg_k]
    dcg = (top * discounts[: top.shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cum[np.minimum(n_rel, ndcg_k)]
    ndcg = np.where(ok, dcg / np.where(idcg > 0, idcg, 1.0), np.nan)
    top1 = order[:, 0]
    data = {"image_id": query_ids, "item_id": query_items, "ap": ap, "rr": rr}
    for k in sorted(set(ks) | {1}):
        data[f"hit@{k}"] = rel[:, :k].any(axis=1).astype(float)
    data.update({f"ndcg@{ndcg_k}": ndcg, "n_relevant": n_rel, "first_relevant_rank": first + 1,
                 "top1_image_id": hit_ids[top1], "top1_item_id": hit_items[top1],
                 "top1_score": sim[np.arange(len(sim)), top1]})
    table = pd.DataFrame(data)
    return Retrieval(image_ids=query_ids, item_ids=query_items, per_query=table[ok].reset_index(drop=True),
                     excluded=list(query_ids[~ok]), order=order, relevant=rel, similarity=sim)


def evaluate_retrieval(vectors: np.ndarray, item_ids: Sequence, image_ids: Sequence | None = None,
                       *, ks: Sequence[int] = KS, ndcg_k: int = NDCG_K) -> Retrieval:
    """Leave-one-out retrieval metrics over the exact cosine-similarity matrix of `vectors`."""
    item_ids = np.asarray(item_ids).astype(str)
    image_ids = np.asarray(image_ids if image_ids is not None else np.arange(len(item_ids))).astype(str)
    if len(item_ids) != len(vectors) or len(image_ids) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(item_ids)} item ids / {len(image_ids)} image ids")
    sim = cosine_similarity(vectors)
    order, rel = ranked_relevance(sim, item_ids)
    return _scored(sim, order, rel, image_ids, item_ids, image_ids, item_ids, ks, ndcg_k)


def evaluate_gallery(queries: np.ndarray, query_items: Sequence, gallery: np.ndarray, gallery_items: Sequence,
                     query_ids: Sequence | None = None, gallery_ids: Sequence | None = None,
                     *, ks: Sequence[int] = KS, ndcg_k: int = NDCG_K) -> Retrieval:
    """Retrieval of separate queries against a separate gallery (e.g. worn photos against product
    shots): the same metrics as `evaluate_retrieval`, each query ranking every gallery image
    (nothing to leave out). A query whose item has no gallery image is excluded."""
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    query_items = np.asarray(query_items).astype(str)
    gallery_items = np.asarray(gallery_items).astype(str)
    query_ids = np.asarray(query_ids if query_ids is not None else np.arange(len(q))).astype(str)
    gallery_ids = np.asarray(gallery_ids if gallery_ids is not None else np.arange(len(g))).astype(str)
    if len(query_items) != len(q) or len(gallery_items) != len(g) or len(query_ids) != len(q) \
            or len(gallery_ids) != len(g):
        raise ValueError("queries/gallery and their item and image ids differ in length")
    both = cosine_similarity(np.vstack([q, g]))
    sim = both[: len(q), len(q):]
    rel_full = query_items[:, None] == gallery_items[None, :]
    index = np.broadcast_to(np.arange(len(g)), sim.shape)
    order = np.lexsort((index, rel_full.astype(np.int8), -sim), axis=1)
    rel = np.take_along_axis(rel_full, order, axis=1)
    return _scored(sim, order, rel, query_ids, query_items, gallery_ids, gallery_items, ks, ndcg_k)


def recall_from_neighbours(query_items: Sequence, neighbour_items: Sequence[Sequence], k: int = 1) -> float:
    """Hit rate from an external search's answers (e.g. ChromaDB), to check it against numpy.

    `neighbour_items[i]` lists the item ids returned for query i, best first, self excluded.
    """
    hits = [str(q) in [str(x) for x in list(nb)[:k]] for q, nb in zip(query_items, neighbour_items)]
    return float(np.mean(hits)) if hits else float("nan")


# --- uncertainty -----------------------------------------------------------------------------

def aligned(a: Retrieval, b: Retrieval, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The per-query values of `column` for the queries both conditions evaluated, same order."""
    left = a.per_query.set_index("image_id")[column]
    right = b.per_query.set_index("image_id")[column]
    common = left.index.intersection(right.index, sort=False)
    return left.loc[common].to_numpy(float), right.loc[common].to_numpy(float)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, rounds: int = BOOTSTRAP_ROUNDS,
                     seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> dict[str, float | list[float]]:
    """mean(a) - mean(b) and its percentile bootstrap confidence interval.

    Paired: each round resamples *queries* with replacement and takes the same queries from
    both conditions, so the query-to-query variation (some garments are just hard) cancels.
    The interval says: had we photographed another catalogue like this one, the difference
    would fall in it in about 95 of 100 such catalogues. Fixed seed: the same inputs always give
    the same interval.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_bootstrap needs two equal-length, non-empty 1-D arrays, got {a.shape} and {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(diff), size=(rounds, len(diff)))
    stats = diff[samples].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return {"value": float(diff.mean()), "ci95": [float(lo), float(hi)], "rounds": rounds, "seed": seed}


def bootstrap_mean(values: Sequence[float], *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
                   level: float = 0.95) -> dict[str, float | list[float]]:
    """The mean of one condition's per-query values and its percentile bootstrap interval
    (the whiskers of a bar chart). For a *difference* between conditions use `paired_bootstrap`:
    two overlapping single-condition intervals do not mean "no difference"."""
    values = np.asarray(values, dtype=float)
    out = paired_bootstrap(values, np.zeros_like(values), rounds=rounds, seed=seed, level=level)
    return out


SUMMARY_COLUMNS = {"recall@1": "hit@1", "recall@5": "hit@5", "map": "ap", "mrr": "rr", "ndcg@10": "ndcg@10"}


def intervals(results: dict[str, Retrieval], names: Sequence[str] = ("recall@1", "map", "mrr", "ndcg@10"), *,
              rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED) -> dict[str, dict[str, dict]]:
    """{metric: {condition: {"value", "ci95"}}}: each condition's mean and bootstrap interval,
    for bar charts with whiskers (the difference between conditions has its own, paired, CI)."""
    return {name: {c: bootstrap_mean(r.per_query[SUMMARY_COLUMNS[name]], rounds=rounds, seed=seed)
                   for c, r in results.items()} for name in names}


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value for paired per-query values (e.g. AP).

    None when every pair is equal (the test is undefined: there is no difference to rank).
    """
    from scipy.stats import wilcoxon

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) == 0 or np.allclose(a, b, rtol=0, atol=0):
        return None
    return float(wilcoxon(a, b).pvalue)


# --- the mechanism ---------------------------------------------------------------------------

def breakdown(results: dict[str, Retrieval], table: pd.DataFrame, by: str,
              metric: str = "hit@1") -> pd.DataFrame:
    """Mean `metric` per value of a catalogue column (colour, pattern…), one column per condition."""
    if by not in table.columns:
        raise KeyError(f"the catalogue has no column {by!r}; available: {', '.join(table.columns)}")
    meta = table.set_index("image_id")[by].astype(str)
    cols = {}
    for name, res in results.items():
        q = res.per_query.set_index("image_id")
        cols[name] = q[metric].groupby(meta.reindex(q.index)).mean()
    out = pd.DataFrame(cols)
    counts = meta.reindex(next(iter(results.values())).per_query["image_id"]).value_counts()
    out.insert(0, "queries", counts.reindex(out.index).fillna(0).astype(int))
    out.index.name = by
    return out


def same_shoot_errors(result: Retrieval, table: pd.DataFrame, shoot_column: str = "shoot_id") -> dict[str, float | int]:
    """Of the queries whose top-1 answer is a different item, how many come from the same shoot?

    That fraction is the mechanism the workbook is about: a whole-photo embedding is pulled to
    photos with the same background, light and camera, whatever dress they show. `chance` is
    the fraction expected if wrong answers were picked at random among the wrong items.
    """
    shoot = table.set_index("image_id")[shoot_column].astype(str)
    q = result.per_query
    wrong = q[q["hit@1"] == 0]
    same = (shoot.reindex(wrong["image_id"]).to_numpy() == shoot.reindex(wrong["top1_image_id"]).to_numpy())
    ids = result.image_ids
    s = shoot.reindex(ids).to_numpy()
    diff_item = result.item_ids[:, None] != result.item_ids[None, :]
    same_shoot = s[:, None] == s[None, :]
    denom = diff_item.sum(axis=1)
    per_query_chance = np.where(denom > 0, (diff_item & same_shoot).sum(axis=1) / np.maximum(denom, 1), np.nan)
    evaluated = np.isin(ids, q["image_id"].to_numpy())
    return {"errors": int(len(wrong)), "same_shoot": int(same.sum()),
            "fraction": float(same.mean()) if len(wrong) else None,
            "chance": float(np.nanmean(per_query_chance[evaluated])) if evaluated.any() else None}


def seed_statistic(result_or_similarity: Retrieval | np.ndarray, k: int = 3) -> float:
    """The demo's number: the mean cosine similarity of each query's top-k results.

    Why it cannot tell good retrieval from bad: it measures how *close* the nearest neighbours
    are, not whether they are the *right* garment. Whole photos from the same shoot share a
    background, light and framing, so their vectors are close even when the dress differs: the
    statistic rises while recall falls. An embedding that maps every photo to nearly the same
    vector scores close to 1.0 with chance-level recall; and two embedders (or a full photo vs a
    cut-out on white) have different similarity scales, so their values are not comparable at
    all. Only labels (which answers are the same item) can say which search is better.
    """
    sim = result_or_similarity.similarity if isinstance(result_or_similarity, Retrieval) else np.asarray(result_or_similarity, float)
    masked = sim.copy()
    np.fill_diagonal(masked, -np.inf)
    k = min(k, len(sim) - 1)
    top = -np.sort(-masked, axis=1)[:, :k]
    return float(top.mean())


def seed_statistic_by_outcome(result: Retrieval, k: int = 3) -> dict[str, float | None]:
    """The demo's number split by whether the query's first answer was right or wrong.

    When queries answered wrongly have about the same top-k similarity as those answered
    rightly, the number carries no information about correctness, whatever its average.
    """
    masked = result.similarity.copy()
    np.fill_diagonal(masked, -np.inf)
    k = min(k, len(masked) - 1)
    per_query = (-np.sort(-masked, axis=1)[:, :k]).mean(axis=1)
    pos = {i: n for n, i in enumerate(result.image_ids)}
    q = result.per_query
    values = per_query[[pos[i] for i in q["image_id"]]]
    right, wrong = values[q["hit@1"].to_numpy() == 1], values[q["hit@1"].to_numpy() == 0]
    return {"right": float(right.mean()) if len(right) else None,
            "wrong": float(wrong.mean()) if len(wrong) else None,
            "right_queries": int(len(right)), "wrong_queries": int(len(wrong))}


def _mean(series: pd.Series) -> float:
    return float(series.mean()) if len(series) else float("nan")
