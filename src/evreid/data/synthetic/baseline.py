"""The colour-histogram nearest neighbour: the floor every learned model must clear.

Each tracklet is described by its HSV histogram (hue x saturation x value
bins, L1-normalised per frame, averaged over the frames) and gallery items
are ranked by chi-square (default) or cosine distance to the query. No
learning, no cue but colour: if this baseline were close to perfect, the
benchmark would measure nothing beyond colour matching, which the fairness
rules forbid (docs/SYNTHETIC.md reports its numbers per protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from evreid.data.datasets.base import Tracklet
from evreid.errors import EvreidError

DEFAULT_BINS = (8, 4, 4)
DISTANCES = ("chi2", "cosine")


def hsv_histogram(frame_rgb: np.ndarray, bins: tuple[int, int, int] = DEFAULT_BINS) -> np.ndarray:
    """L1-normalised joint HSV histogram of one uint8 RGB frame (flattened)."""
    hsv = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def tracklet_histogram(frames: Sequence[str | Path],
                       bins: tuple[int, int, int] = DEFAULT_BINS) -> np.ndarray:
    """Mean of the per-frame histograms of a tracklet's frame files."""
    hists = []
    for path in frames:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise EvreidError(f"colour baseline: cannot read image {path}")
        hists.append(hsv_histogram(image[..., ::-1], bins))
    if not hists:
        raise EvreidError("colour baseline: a tracklet has no frames")
    return np.mean(hists, axis=0)


def histogram_distance(query: np.ndarray, gallery: np.ndarray, metric: str = "chi2") -> np.ndarray:
    """[Q, G] distances between rows of ``query`` [Q, D] and ``gallery`` [G, D]."""
    if metric == "chi2":
        a, b = query[:, None, :], gallery[None, :, :]
        return 0.5 * np.sum((a - b) ** 2 / np.maximum(a + b, 1e-12), axis=2)
    if metric == "cosine":
        qn = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        gn = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    raise EvreidError(f"colour baseline: unknown distance {metric!r}; choose from "
                      f"{', '.join(DISTANCES)}")


def evaluate_colour_histogram(query: Sequence[Tracklet], gallery: Sequence[Tracklet],
                              metric: str = "chi2", bins: tuple[int, int, int] = DEFAULT_BINS,
                              cache: dict[str, np.ndarray] | None = None) -> dict:
    """CMC / mAP / mINP of the colour-histogram nearest neighbour on one query/gallery split.

    ``cache`` (tracklet key -> histogram) lets several splits share the image reads.
    """
    from evreid.metrics import evaluate

    cache = {} if cache is None else cache

    def describe(tracklets: Sequence[Tracklet]) -> np.ndarray:
        rows = []
        for t in tracklets:
            key = t.key or t.frames[0]
            if key not in cache:
                cache[key] = tracklet_histogram(t.frames, bins)
            rows.append(cache[key])
        return np.stack(rows)

    distmat = histogram_distance(describe(query), describe(gallery), metric)
    return evaluate(distmat, np.array([t.pid for t in query]), np.array([t.pid for t in gallery]),
                    np.array([t.camid for t in query]), np.array([t.camid for t in gallery]))


def colour_histogram_baseline(root: str | Path, split_ids: Sequence[int] | None = None,
                              metric: str = "chi2",
                              bins: tuple[int, int, int] = DEFAULT_BINS) -> dict:
    """The baseline on a synthetic folder: per-split results and their mean / std (percent)."""
    from evreid.data.datasets.synthetic import load_synthetic
    from evreid.metrics import aggregate_splits

    first = load_synthetic(root, split_id=0)
    ids = list(range(first.extra["num_splits"])) if split_ids is None else list(split_ids)
    cache: dict[str, np.ndarray] = {}
    results = []
    for split_id in ids:
        dataset = first if split_id == 0 else load_synthetic(root, split_id=split_id)
        results.append(evaluate_colour_histogram(dataset.query, dataset.gallery, metric, bins,
                                                 cache))
    return {"splits": ids, "metric": metric, "bins": list(bins),
            "per_split": results, "summary": aggregate_splits(results)}
