"""evaluate() against a per-query reference written the obvious way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evreid.errors import EvreidError
from evreid.metrics import (
    aggregate_splits,
    compute_distance,
    evaluate,
    format_metrics,
    re_ranking,
    summary_row,
)
from evreid.metrics import rank as rank_module


def reference_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, protocol):
    cmcs, aps, inps = [], [], []
    max_rank = min(max_rank, distmat.shape[1])
    for i in range(distmat.shape[0]):
        order = sorted(range(distmat.shape[1]), key=lambda j: (distmat[i, j], j))
        ranked = []
        for j in order:
            if g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i]:
                continue
            if protocol == "mars_official" and g_pids[j] == -1:
                continue
            ranked.append(g_pids[j] == q_pids[i])
        if not any(ranked):
            continue
        hits = np.flatnonzero(ranked)
        cmc = np.zeros(max_rank)
        if hits[0] < max_rank:
            cmc[hits[0]:] = 1
        cmcs.append(cmc)
        aps.append(np.mean([(k + 1) / (pos + 1) for k, pos in enumerate(hits)]))
        inps.append(len(hits) / (hits[-1] + 1))
    if not aps:
        return None, None, None, 0
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps), len(aps)


def random_case(seed, num_q=12, num_g=40, num_ids=6, num_cams=3, levels=5):
    rng = np.random.default_rng(seed)
    # few distinct distance values -> many ties, exercising the stable tie-break
    distmat = rng.integers(0, levels, size=(num_q, num_g)).astype(np.float64)
    return (distmat, rng.integers(-1, num_ids, num_q), rng.integers(-1, num_ids, num_g),
            rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g))


@pytest.mark.parametrize("protocol", ["standard", "mars_official"])
@pytest.mark.parametrize("seed", range(40))
def test_matches_reference_with_ties(seed, protocol):
    case = random_case(seed, levels=3 + seed % 7)
    try:
        result = evaluate(*case, max_rank=10, protocol=protocol)
    except EvreidError:
        with pytest.raises(ZeroDivisionError):
            _ = 1 / reference_evaluate(*case, 10, protocol)[3]
        return
    cmc, m_ap, m_inp, valid = reference_evaluate(*case, 10, protocol)
    np.testing.assert_allclose(result["cmc"], cmc, atol=1e-12)
    assert abs(result["mAP"] - m_ap) < 1e-9
    assert abs(result["mINP"] - m_inp) < 1e-9
    assert result["num_valid_queries"] == valid
    assert result["num_valid_queries"] + result["num_skipped_queries"] == len(case[0])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_q=st.integers(1, 15), num_g=st.integers(1, 50),
       num_ids=st.integers(1, 8), continuous=st.booleans())
def test_property_matches_reference(seed, num_q, num_g, num_ids, continuous):
    rng = np.random.default_rng(seed)
    distmat = (rng.random((num_q, num_g)) if continuous
               else rng.integers(0, 4, (num_q, num_g)).astype(float))
    case = (distmat, rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g),
            rng.integers(0, 2, num_q), rng.integers(0, 2, num_g))
    cmc, m_ap, m_inp, valid = reference_evaluate(*case, 20, "standard")
    if valid == 0:
        with pytest.raises(EvreidError, match="no query has a true match"):
            evaluate(*case, max_rank=20)
        return
    result = evaluate(*case, max_rank=20)
    np.testing.assert_allclose(result["cmc"], cmc, atol=1e-12)
    assert abs(result["mAP"] - m_ap) < 1e-9 and abs(result["mINP"] - m_inp) < 1e-9


def test_sorting_fallback_agrees_with_search(monkeypatch):
    case = random_case(3, num_q=20, num_g=60, levels=2)
    searched = evaluate(*case)
    monkeypatch.setattr(rank_module, "_match_ranks_by_searching", lambda *a: None)
    sorted_ = evaluate(*case)
    np.testing.assert_array_equal(searched["cmc"], sorted_["cmc"])
    assert searched["mAP"] == sorted_["mAP"] and searched["mINP"] == sorted_["mINP"]


def test_analytic_single_query():
    # gallery ranked: [wrong, right(same cam: removed), right, wrong, right]
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    result = evaluate(distmat, [7], [1, 7, 7, 2, 7], [0], [1, 0, 1, 1, 2], max_rank=4)
    # after removal: wrong, right, wrong, right -> hits at positions 1 and 3
    np.testing.assert_array_equal(result["cmc"], [0, 1, 1, 1])
    assert result["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result["mINP"] == pytest.approx(2 / 4)


def test_tie_keeps_gallery_order():
    distmat = np.array([[0.5, 0.5]])
    first_wrong = evaluate(distmat, [1], [2, 1], [0], [1, 1])
    first_right = evaluate(distmat, [1], [1, 2], [0], [1, 1])
    assert first_wrong["cmc"][0] == 0 and first_right["cmc"][0] == 1


def test_mars_official_ignores_junk_and_keeps_distractors():
    distmat = np.array([[0.1, 0.2, 0.3, 0.4]])
    g_pids, g_cams = [-1, 0, 5, 5], [1, 1, 1, 0]
    official = evaluate(distmat, [5], g_pids, [0], g_cams, protocol="mars_official")
    standard = evaluate(distmat, [5], g_pids, [0], g_cams, protocol="standard")
    # official: junk ignored, distractor (pid 0) first, match second
    assert official["cmc"][0] == 0 and official["cmc"][1] == 1
    # standard: junk counts as a wrong item too -> match third
    assert standard["cmc"][1] == 0 and standard["cmc"][2] == 1


def test_skipped_queries_are_counted():
    distmat = np.zeros((2, 2))
    result = evaluate(distmat, [1, 3], [1, 1], [0, 0], [1, 0])
    assert result["num_valid_queries"] == 1 and result["num_skipped_queries"] == 1
    assert np.isnan(result["ap"][1])


@pytest.mark.parametrize("bad, message", [
    (dict(distmat=np.zeros((2, 3)), q_pids=[1]), "does not match"),
    (dict(distmat=np.full((1, 3), np.nan)), "NaN"),
    (dict(protocol="cuhk"), "unknown evaluation protocol"),
    (dict(max_rank=0), "max_rank"),
])
def test_bad_input_errors(bad, message):
    args = dict(distmat=np.zeros((1, 3)), q_pids=[1], g_pids=[1, 2, 1], q_camids=[0],
                g_camids=[1, 1, 1])
    args.update(bad)
    with pytest.raises(EvreidError, match=message):
        evaluate(**args)


def test_distances():
    q = np.array([[1.0, 0.0], [0.0, 2.0]])
    g = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    np.testing.assert_allclose(compute_distance(q, g, "cosine"),
                               [[0, 1, 0.4], [1, 0, 0.2]], atol=1e-12)
    expected = [[1, np.sqrt(2), np.sqrt(20)], [np.sqrt(8), 1, np.sqrt(13)]]
    np.testing.assert_allclose(compute_distance(q, g, "euclidean"), expected, atol=1e-12)
    with pytest.raises(EvreidError, match="unknown distance"):
        compute_distance(q, g, "manhattan")


def test_re_ranking_reorders_toward_mutual_neighbours():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 16)) * 3
    pids_g = np.repeat(np.arange(5), 4)
    gallery = centers[pids_g] + rng.normal(size=(20, 16))
    query = centers + rng.normal(size=(5, 16))
    q_g = compute_distance(query, gallery, "euclidean")
    rr = re_ranking(q_g, compute_distance(query, query, "euclidean"),
                    compute_distance(gallery, gallery, "euclidean"), k1=4, k2=2)
    assert rr.shape == q_g.shape and np.isfinite(rr).all()
    base = evaluate(q_g, np.arange(5), pids_g, np.zeros(5), np.ones(20))
    reranked = evaluate(rr, np.arange(5), pids_g, np.zeros(5), np.ones(20))
    assert reranked["mAP"] >= base["mAP"] - 1e-9
    # lambda = 1 leaves only the original distance, scaled by one constant per
    # query: the ranking is unchanged
    only_original = re_ranking(q_g, np.zeros((5, 5)), np.zeros((20, 20)), lambda_value=1.0)
    np.testing.assert_array_equal(np.argsort(only_original, 1, kind="stable"),
                                  np.argsort(q_g, 1, kind="stable"))


def test_summary_and_aggregation():
    result = {"cmc": np.array([0.5, 0.75, 1.0]), "mAP": 0.6, "mINP": 0.4}
    row = summary_row(result)
    assert row["rank1"] == 50 and row["rank5"] == 100 and row["mAP"] == pytest.approx(60)
    agg = aggregate_splits([result, {**result, "mAP": 0.8}])
    assert agg["mAP"]["mean"] == pytest.approx(70) and agg["mAP"]["std"] == pytest.approx(10)
    assert "rank1" in format_metrics({"run": row})
