"""Retrieval metrics against small cases computed by hand (see each test's comment)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers import metrics


def unit(degrees: list[float]) -> np.ndarray:
    """2-D unit vectors at the given angles: cosine similarity falls with the angle between them."""
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_one_relevant_each_hand_computed():
    # angles 0,10,30,100 for items A,B,A,B.
    # q0 (A): ranks 1(B) 2(A) 3(B) -> first relevant at rank 2: AP=RR=1/2, nDCG=1/log2(3)
    # q1 (B): ranks 0(A) 2(A) 3(B) -> rank 3: AP=RR=1/3, nDCG=1/log2(4)=0.5
    # q2 (A): ranks 1(B) 0(A) 3(B) -> rank 2
    # q3 (B): ranks 2(A) 1(B) 0(A) -> rank 2
    res = metrics.evaluate_retrieval(unit([0, 10, 30, 100]), ["A", "B", "A", "B"], ["i0", "i1", "i2", "i3"])
    q = res.per_query.set_index("image_id")
    assert q["ap"].to_dict() == pytest.approx({"i0": 0.5, "i1": 1 / 3, "i2": 0.5, "i3": 0.5})
    assert q["rr"].tolist() == pytest.approx([0.5, 1 / 3, 0.5, 0.5])
    assert q["ndcg@10"].tolist() == pytest.approx([1 / math.log2(3), 0.5, 1 / math.log2(3), 1 / math.log2(3)])
    assert q["top1_image_id"].tolist() == ["i1", "i0", "i1", "i2"]
    s = res.summary()
    assert s["recall@1"] == 0.0
    assert s["recall@5"] == 1.0 and s["recall@10"] == 1.0
    assert s["map"] == pytest.approx((0.5 + 1 / 3 + 0.5 + 0.5) / 4)
    assert s["mrr"] == pytest.approx((0.5 + 1 / 3 + 0.5 + 0.5) / 4)
    assert s["queries"] == 4 and s["excluded_queries"] == 0
    assert res.recall_curve(3).tolist() == pytest.approx([0.0, 0.75, 1.0])


def test_several_relevant_average_precision_and_ndcg():
    # angles 0,50,20,10 for items A,A,A,B. q0 ranks 3(B) 2(A) 1(A):
    # AP = (1/2 + 2/3) / 2; DCG = 1/log2(3) + 1/log2(4); IDCG = 1 + 1/log2(3).
    res = metrics.evaluate_retrieval(unit([0, 50, 20, 10]), ["A", "A", "A", "B"])
    q0 = res.per_query.set_index("image_id").loc["0"]
    assert q0["ap"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert q0["ndcg@10"] == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)))
    assert q0["n_relevant"] == 2 and q0["first_relevant_rank"] == 2
    # q2 (at 20): ranks 3(B, 10 deg away) 0(A, 20) 1(A, 30) -> same AP as q0
    assert res.per_query.set_index("image_id").loc["2", "ap"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # the lone B has no relevant answer: excluded from the averages, still a distractor
    assert res.excluded == ["3"]
    assert res.summary()["queries"] == 3


def test_ties_are_pessimistic_and_single_image_items_excluded():
    # All four vectors identical: every similarity ties. Pessimistic: irrelevant images are
    # ranked before the relevant one, so A's query finds its twin at rank 3 (AP = 1/3).
    # B and C have one image each: excluded and reported.
    vectors = np.ones((4, 3))
    res = metrics.evaluate_retrieval(vectors, ["A", "A", "B", "C"], ["a1", "a2", "b", "c"])
    assert res.excluded == ["b", "c"]
    q = res.per_query.set_index("image_id")
    assert q["ap"].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert q["hit@1"].tolist() == [0.0, 0.0]
    assert res.summary()["recall@1"] == 0.0 and res.summary()["queries"] == 2
    # among irrelevant ties the lower index comes first: stable and documented
    assert res.order[0].tolist() == [2, 3, 1]
    assert res.order[2].tolist() == [0, 1, 3]


def test_ties_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(3, 4))
    vectors = base[[0, 0, 1, 1, 2, 2, 0, 1]]  # many exact ties across items
    items = np.array(["A", "B", "A", "B", "C", "C", "C", "A"])
    ids = np.array([f"i{k}" for k in range(8)])
    first = metrics.evaluate_retrieval(vectors, items, ids).per_query.set_index("image_id").sort_index()
    perm = rng.permutation(8)
    second = metrics.evaluate_retrieval(vectors[perm], items[perm], ids[perm]).per_query.set_index("image_id").sort_index()
    cols = ["ap", "rr", "hit@1", "hit@5", "ndcg@10"]
    pd.testing.assert_frame_equal(first[cols], second[cols])


def test_matches_a_slow_reference_on_random_data():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 8))
    items = rng.integers(0, 9, size=30).astype(str)
    res = metrics.evaluate_retrieval(vectors, items)
    sim = metrics.cosine_similarity(vectors)
    aps, hits = [], []
    for q in range(30):
        others = [j for j in range(30) if j != q]
        others.sort(key=lambda j: (-sim[q, j], items[j] == items[q], j))
        rel = [items[j] == items[q] for j in others]
        if not any(rel):
            continue
        found, precisions = 0, []
        for rank, r in enumerate(rel, 1):
            if r:
                found += 1
                precisions.append(found / rank)
        aps.append(np.mean(precisions))
        hits.append(rel[0])
    assert res.summary()["map"] == pytest.approx(np.mean(aps))
    assert res.summary()["recall@1"] == pytest.approx(np.mean(hits))
    assert res.summary()["queries"] == len(aps)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="zero or non-finite"):
        metrics.evaluate_retrieval(np.array([[1.0, 0], [0, 0]]), ["A", "A"])
    with pytest.raises(ValueError, match="2 vectors but 3 item ids"):
        metrics.evaluate_retrieval(unit([0, 1]), ["A", "A", "B"])


def test_paired_bootstrap_is_deterministic_and_sensible():
    rng = np.random.default_rng(1)
    a = rng.random(200) < 0.7
    b = rng.random(200) < 0.4
    one = metrics.paired_bootstrap(a, b)
    two = metrics.paired_bootstrap(a, b)
    assert one == two  # fixed seed: identical interval
    assert one["value"] == pytest.approx(a.mean() - b.mean())
    lo, hi = one["ci95"]
    assert lo < one["value"] < hi
    assert metrics.paired_bootstrap(a, b, seed=7)["ci95"] != one["ci95"]
    assert one["rounds"] == 2000
    # identical conditions: no difference and a zero-width interval
    same = metrics.paired_bootstrap(a, a)
    assert same["value"] == 0 and same["ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError):
        metrics.paired_bootstrap([1, 2], [1])


def test_wilcoxon_on_per_query_ap():
    a = np.linspace(0.5, 1.0, 30)
    assert metrics.wilcoxon_p(a, a) is None
    assert metrics.wilcoxon_p(a, a - 0.3) < 1e-5
    noisy = a + np.tile([0.01, -0.01], 15)
    assert metrics.wilcoxon_p(noisy, a) > 0.5


def test_aligned_pairs_queries_by_image_id():
    full = metrics.evaluate_retrieval(unit([0, 10, 30, 100]), ["A", "B", "A", "B"], ["i0", "i1", "i2", "i3"])
    garment = metrics.evaluate_retrieval(unit([0, 5, 100]), ["A", "A", "B"], ["i2", "i0", "i1"])
    g, f = metrics.aligned(garment, full, "hit@1")
    # garment evaluated i2 and i0 (i1 is B's only garment image): both hits
    assert g.tolist() == [1.0, 1.0] and f.tolist() == [0.0, 0.0]


def test_same_shoot_errors_and_breakdown():
    # items A,A,B,B; shoots s1: i0 (A), i1 (B); s2: i2 (A); s3: i3 (B)
    res = metrics.evaluate_retrieval(unit([0, 10, 30, 100]), ["A", "B", "A", "B"], ["i0", "i1", "i2", "i3"])
    table = pd.DataFrame({"image_id": ["i0", "i1", "i2", "i3"], "shoot_id": ["s1", "s1", "s2", "s3"],
                          "colour": ["red", "blue", "red", "blue"]})
    # every query misses at rank 1; top-1 answers: i0->i1 (same shoot), i1->i0 (same shoot),
    # i2->i1 (different), i3->i2 (different): 2 of 4 errors are same-shoot
    out = metrics.same_shoot_errors(res, table)
    assert out["errors"] == 4 and out["same_shoot"] == 2 and out["fraction"] == 0.5
    # chance: i0 and i1 have one same-shoot image among their 2 other-item images, i2/i3 none
    assert out["chance"] == pytest.approx((0.5 + 0.5 + 0 + 0) / 4)
    table2 = table.assign(colour=["red", "blue", "red", "blue"])
    good = metrics.evaluate_retrieval(unit([0, 100, 5, 95]), ["A", "B", "A", "B"], ["i0", "i1", "i2", "i3"])
    by = metrics.breakdown({"full": res, "garment": good}, table2, "colour")
    assert by.loc["red", "full"] == 0 and by.loc["red", "garment"] == 1
    assert by.loc["blue", "queries"] == 2
    assert metrics.same_shoot_errors(good, table)["fraction"] is None


def test_seed_statistic_cannot_tell_good_from_bad():
    # "bad": all photos nearly the same vector (e.g. same studio), labels interleaved.
    bad = unit([0, 1, 2, 3])
    # "good": same item close, items far apart.
    good = unit([0, 20, 90, 110])
    bad_res = metrics.evaluate_retrieval(bad, ["A", "B", "A", "B"])
    good_res = metrics.evaluate_retrieval(good, ["A", "A", "B", "B"])
    assert good_res.summary()["recall@1"] == 1.0 and bad_res.summary()["recall@1"] == 0.0
    # yet the demo's number prefers the bad search
    assert metrics.seed_statistic(bad_res) > metrics.seed_statistic(good_res)
    # hand value for k=1 on the good space: every nearest neighbour is 20 degrees away
    assert metrics.seed_statistic(good_res, k=1) == pytest.approx(math.cos(math.radians(20)))


def test_recall_from_neighbours():
    assert metrics.recall_from_neighbours(["A", "B"], [["A", "B"], ["A", "B"]]) == 0.5
    assert metrics.recall_from_neighbours(["A", "B"], [["A", "B"], ["A", "B"]], k=2) == 1.0


def test_bootstrap_mean_interval():
    values = np.array([1.0] * 30 + [0.0] * 10)
    out = metrics.bootstrap_mean(values)
    assert out["value"] == 0.75
    assert out["ci95"][0] < 0.75 < out["ci95"][1]
    assert out == metrics.bootstrap_mean(values)


def test_intervals_per_condition():
    res = metrics.evaluate_retrieval(unit([0, 10, 30, 100]), ["A", "B", "A", "B"], ["i0", "i1", "i2", "i3"])
    out = metrics.intervals({"full": res}, ("recall@5", "map"))
    assert out["recall@5"]["full"]["value"] == 1.0 and out["recall@5"]["full"]["ci95"] == [1.0, 1.0]
    assert out["map"]["full"]["value"] == pytest.approx(res.summary()["map"])


def test_seed_statistic_by_outcome():
    # angles 0,10,30,100 for A,B,A,B: every first answer is wrong (see the first test)
    res = metrics.evaluate_retrieval(unit([0, 10, 30, 100]), ["A", "B", "A", "B"])
    out = metrics.seed_statistic_by_outcome(res, k=1)
    assert out["right"] is None and out["wrong_queries"] == 4
    assert out["wrong"] == pytest.approx(metrics.seed_statistic(res, k=1))
    good = metrics.evaluate_retrieval(unit([0, 20, 90, 95]), ["A", "A", "B", "C"])
    split = metrics.seed_statistic_by_outcome(good, k=1)
    # A's two queries are right (20 deg apart); B and C have one image each: excluded
    assert split["right_queries"] == 2 and split["wrong_queries"] == 0
    assert split["right"] == pytest.approx(math.cos(math.radians(20)))
