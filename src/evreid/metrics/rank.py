"""CMC, mAP and mINP for re-identification, exact and vectorised.

Ranking is by ascending distance with a stable tie-break: equal distances keep
gallery order. Per query, the gallery items with the query's pid AND camera are
removed (``standard``); ``mars_official`` also ignores pid -1 junk (the query
itself, present in the MARS official gallery, is removed as a same-pid
same-camera item). Queries with no remaining true match are skipped and counted.

All metrics depend only on the position of each true match in the query's
ranked list once removed items are taken out. Those positions are found by a
binary search of the gallery distances into each query's sorted match
distances (O(QG log R) for R matches per query), or by a full stable sort when
the input is so tied that the exact tie count would cost more.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from evreid.errors import EvreidError

PROTOCOLS = ("standard", "mars_official")
_CHUNK_ELEMENTS = 1 << 18


def _masks(q_pids, g_pids, q_camids, g_camids, protocol):
    same_pid = q_pids[:, None] == g_pids[None, :]
    removed = same_pid & (q_camids[:, None] == g_camids[None, :])
    if protocol == "mars_official":
        removed |= (g_pids == -1)[None, :]
    kept = ~removed
    return kept, same_pid & kept


def _match_ranks_by_searching(distmat, kept, relevant):
    """(query, rank) of every true match; rank = kept items ranked before it.

    Per query, the true-match distances are sorted (they are few); one batched
    binary search of every kept gallery distance into them counts, for each
    match, the kept items strictly closer. Items tied with a match are rare and
    counted exactly afterwards (closer iff their gallery index is smaller).
    Returns None when ties are too many for that to pay off.
    """
    q_idx, g_idx = np.nonzero(relevant)
    if len(q_idx) == 0:
        return q_idx, np.zeros(0, dtype=np.int64)
    num_q = distmat.shape[0]
    per_query = np.bincount(q_idx, minlength=num_q)
    starts = np.concatenate([[0], np.cumsum(per_query)[:-1]])
    match_d = distmat[q_idx, g_idx]
    order = np.lexsort((g_idx, match_d, q_idx))  # by query, then distance, then index
    q_idx, g_idx, match_d = q_idx[order], g_idx[order], match_d[order]
    slot = np.arange(len(q_idx)) - starts[q_idx]
    width = int(per_query.max())
    sorted_d = np.full((num_q, width), np.inf)
    sorted_d[q_idx, slot] = match_d
    sorted_g = np.full((num_q, width), -1, dtype=np.int64)
    sorted_g[q_idx, slot] = g_idx

    right = torch.searchsorted(torch.from_numpy(sorted_d), torch.from_numpy(distmat),
                               right=True).numpy()
    # kept item with right == r lies strictly before every match in slot >= r
    rows = np.broadcast_to(np.arange(num_q)[:, None], kept.shape)
    hist = np.bincount((rows * (width + 1) + right)[kept], minlength=num_q * (width + 1))
    ranks = np.cumsum(hist.reshape(num_q, width + 1), axis=1)[:, :width]

    # an item equal to the match distance in slot right-1 ties with the run of
    # equal match distances ending there
    previous = np.take_along_axis(sorted_d, np.maximum(right - 1, 0), axis=1)
    tie_q, tie_g = np.nonzero(kept & (right > 0) & (previous == distmat))
    if len(tie_q):
        slots = np.arange(width)
        new_run = np.ones_like(sorted_d, dtype=bool)
        new_run[:, 1:] = sorted_d[:, 1:] != sorted_d[:, :-1]
        run_start = np.maximum.accumulate(np.where(new_run, slots, 0), axis=1)
        hi = right[tie_q, tie_g]
        lo = run_start[tie_q, hi - 1]
        spans = hi - lo
        if spans.sum() > 4 * distmat.size // max(width, 1) + 1_000_000:
            return None
        rep_q = np.repeat(tie_q, spans)
        rep_slot = np.repeat(lo - np.cumsum(spans) + spans, spans) + np.arange(spans.sum())
        closer = np.repeat(tie_g, spans) < sorted_g[rep_q, rep_slot]
        np.add.at(ranks, (rep_q[closer], rep_slot[closer]), 1)
    return q_idx, ranks[q_idx, slot]


def _match_ranks_by_sorting(distmat, kept, relevant):
    order = np.argsort(distmat, axis=1, kind="stable")
    kept_sorted = np.take_along_axis(kept, order, axis=1)
    relevant_sorted = np.take_along_axis(relevant, order, axis=1)
    position = np.cumsum(kept_sorted, axis=1, dtype=np.int64) - 1
    q_idx, cols = np.nonzero(relevant_sorted)
    return q_idx, position[q_idx, cols]


def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
             protocol: str = "standard") -> dict:
    """Re-ID metrics from a [Q, G] distance matrix.

    Returns ``cmc`` (float64 array, cmc[0] = rank-1, length min(max_rank, G)),
    ``mAP``, ``mINP`` (fractions in [0, 1]), ``ap`` (per query, NaN where
    skipped), ``num_valid_queries`` and ``num_skipped_queries``.
    """
    if protocol not in PROTOCOLS:
        raise EvreidError(f"unknown evaluation protocol {protocol!r}; choose one of {PROTOCOLS}")
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids).ravel(), np.asarray(g_pids).ravel()
    q_camids, g_camids = np.asarray(q_camids).ravel(), np.asarray(g_camids).ravel()
    num_q, num_g = distmat.shape if distmat.ndim == 2 else (-1, -1)
    if (distmat.ndim != 2 or len(q_pids) != num_q or len(q_camids) != num_q
            or len(g_pids) != num_g or len(g_camids) != num_g):
        raise EvreidError(
            f"distmat shape {distmat.shape} does not match {len(q_pids)} query pids, "
            f"{len(q_camids)} query camids, {len(g_pids)} gallery pids, "
            f"{len(g_camids)} gallery camids")
    if not np.isfinite(distmat).all():
        raise EvreidError("distmat contains NaN or infinite values")
    if num_q == 0:
        raise EvreidError("no queries to evaluate (the query set is empty)")
    if num_g == 0:
        raise EvreidError("no gallery items to rank (the gallery is empty)")
    if max_rank < 1:
        raise EvreidError(f"max_rank must be >= 1; got {max_rank}")

    # query chunks of a few MB: large fresh temporaries cost more than the arithmetic
    def chunk_pairs(lo: int) -> tuple[np.ndarray, np.ndarray]:
        hi = min(num_q, lo + step)
        kept, relevant = _masks(q_pids[lo:hi], g_pids, q_camids[lo:hi], g_camids, protocol)
        pairs = _match_ranks_by_searching(distmat[lo:hi], kept, relevant)
        if pairs is None:
            pairs = _match_ranks_by_sorting(distmat[lo:hi], kept, relevant)
        return pairs[0] + lo, pairs[1]

    # query chunks of a few MB (large fresh temporaries cost more than the
    # arithmetic here), spread over threads: numpy and torch release the GIL
    step = max(1, _CHUNK_ELEMENTS // max(num_g, 1))
    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        results = list(pool.map(chunk_pairs, range(0, num_q, step)))
    result = metrics_from_match_ranks(np.concatenate([r[0] for r in results]),
                                      np.concatenate([r[1] for r in results]), num_q,
                                      min(max_rank, num_g))
    result["num_tied_queries"] = tied_queries(distmat)
    return result


def tied_queries(distmat: np.ndarray) -> int:
    """Queries at the same distance from every gallery item: their ranking is arbitrary
    (ties go by gallery order), as with all-zero or all-equal features."""
    if distmat.shape[1] < 2:
        return 0
    return int((distmat.max(axis=1) == distmat.min(axis=1)).sum())


def check_not_degenerate(result: dict, source: str) -> str | None:
    """Refuse metrics where every query is tied (they would only reflect the gallery
    order); a warning line when some are, else None."""
    tied = result.get("num_tied_queries", 0)
    total = result["num_valid_queries"] + result["num_skipped_queries"]
    if tied and tied == total:
        raise EvreidError(f"{source}: every query is at the same distance from every gallery "
                          f"item (degenerate features, e.g. all zero); the ranking would be "
                          f"arbitrary, so no metrics are reported")
    if tied:
        return (f"warning: {tied} of {total} queries are at the same distance from every "
                f"gallery item (degenerate features); their ranks are arbitrary")
    return None


def metrics_from_match_ranks(q_idx: np.ndarray, ranks: np.ndarray, num_queries: int,
                             max_rank: int) -> dict:
    """CMC / AP / INP from the 0-based ranked-list position of every true match."""
    order = np.lexsort((ranks, q_idx))
    q_idx, ranks = q_idx[order], ranks[order]
    valid, starts, counts = np.unique(q_idx, return_index=True, return_counts=True)
    if len(valid) == 0:
        raise EvreidError("no query has a true match in the gallery (after removing "
                          "same-pid same-camera items); check pids and camids")
    hit_number = np.arange(len(q_idx)) - np.repeat(starts, counts) + 1
    precision = hit_number / (ranks + 1.0)
    ap = np.add.reduceat(precision, starts) / counts
    first = ranks[starts]
    last = ranks[starts + counts - 1]
    cmc = np.cumsum(np.bincount(np.minimum(first, max_rank), minlength=max_rank + 1))
    cmc = cmc[:max_rank] / len(valid)
    ap_per_query = np.full(num_queries, np.nan)
    ap_per_query[valid] = ap
    return {
        "cmc": cmc,
        "mAP": float(ap.mean()),
        "mINP": float((counts / (last + 1.0)).mean()),
        "ap": ap_per_query,
        "num_valid_queries": int(len(valid)),
        "num_skipped_queries": int(num_queries - len(valid)),
    }
