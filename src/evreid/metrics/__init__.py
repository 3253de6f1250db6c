"""Re-ID evaluation: distances, CMC / mAP / mINP, re-ranking, split aggregation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evreid.metrics.distance import DISTANCES, compute_distance
from evreid.metrics.rank import PROTOCOLS, evaluate, metrics_from_match_ranks
from evreid.metrics.rerank import re_ranking

__all__ = ["DISTANCES", "PROTOCOLS", "aggregate_splits", "compute_distance", "evaluate",
           "format_metrics", "metrics_from_match_ranks", "query_gallery_distances",
           "re_ranking", "summary_row"]

REPORTED_RANKS = (1, 5, 10, 20)


def query_gallery_distances(query, gallery, metric: str = "cosine", rerank: bool = False,
                            k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """[Q, G] distances between features, k-reciprocal re-ranked when asked."""
    distmat = compute_distance(query, gallery, metric)
    if rerank:
        distmat = re_ranking(distmat, compute_distance(query, query, metric),
                             compute_distance(gallery, gallery, metric), k1, k2, lambda_value)
    return distmat


def summary_row(result: dict) -> dict[str, float]:
    """rank-1/5/10/20, mAP and mINP in percent, as every table in the project shows them."""
    cmc = np.asarray(result["cmc"])
    row = {f"rank{r}": float(cmc[min(r, len(cmc)) - 1]) * 100 for r in REPORTED_RANKS}
    row["mAP"] = result["mAP"] * 100
    row["mINP"] = result["mINP"] * 100
    return row


def aggregate_splits(results: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of the summary rows of several splits or seeds."""
    if not results:
        raise ValueError("aggregate_splits needs at least one result")
    rows = [summary_row(r) for r in results]
    return {key: {"mean": float(np.mean([r[key] for r in rows])),
                  "std": float(np.std([r[key] for r in rows])),
                  "n": len(rows)} for key in rows[0]}


def format_metrics(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width table: one line per named row of summary figures (percent)."""
    keys = [f"rank{r}" for r in REPORTED_RANKS] + ["mAP", "mINP"]
    width = max(8, *(len(n) for n in rows))
    header = f"{'':<{width}} " + " ".join(f"{k:>7}" for k in keys)
    lines = [header, "-" * len(header)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}} " + " ".join(f"{row[k]:7.2f}" for k in keys))
    return "\n".join(lines)
