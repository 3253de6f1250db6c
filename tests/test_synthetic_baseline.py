"""Colour-histogram baseline and the contact sheet on a tiny synthetic folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evreid.data import build_dataset
from evreid.data.synthetic import generate_synthetic
from evreid.data.synthetic.baseline import (
    colour_histogram_baseline,
    evaluate_colour_histogram,
    histogram_distance,
    hsv_histogram,
)
from evreid.errors import EvreidError
from evreid.viz.contact_sheet import render_contact_sheet


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_baseline") / "tiny"
    generate_synthetic(root, "tiny", "clean", seed=11, workers=1)
    return root


def test_histogram_is_normalised_and_distances_behave():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(32, 16, 3), dtype=np.uint8)
    hist = hsv_histogram(frame)
    assert hist.shape == (8 * 4 * 4,) and np.isclose(hist.sum(), 1.0)
    other = hsv_histogram(np.full((32, 16, 3), (200, 30, 30), np.uint8))
    for metric in ("chi2", "cosine"):
        d = histogram_distance(np.stack([hist, other]), np.stack([hist, other]), metric)
        assert np.allclose(np.diag(d), 0.0, atol=1e-9) and d[0, 1] > 0.1
    with pytest.raises(EvreidError, match="distance"):
        histogram_distance(hist[None], hist[None], "l7")


def test_same_tracklets_in_both_cameras_are_found_first(tiny):
    dataset = build_dataset("synthetic", tiny)
    # gallery = the query tracklets themselves under another camera id: a perfect match exists
    from dataclasses import replace

    gallery = [replace(t, camid=1) for t in dataset.query]
    result = evaluate_colour_histogram(dataset.query, gallery)
    assert result["cmc"][0] == 1.0 and result["mAP"] == 1.0


def test_baseline_over_splits(tiny):
    out = colour_histogram_baseline(tiny, split_ids=[0, 1, 2])
    assert out["splits"] == [0, 1, 2] and len(out["per_split"]) == 3
    summary = out["summary"]
    assert 0.0 <= summary["rank1"]["mean"] <= 100.0 and summary["rank1"]["n"] == 3
    assert summary["rank5"]["mean"] >= summary["rank1"]["mean"]


def test_contact_sheet_png(tiny, tmp_path):
    import cv2

    path = render_contact_sheet(tiny, tmp_path / "sheet.png", num_ids=3, frames=2)
    image = cv2.imread(str(path))
    # 3 identities x (label + 64-pixel row) plus title and header
    assert image.shape[0] == 14 * 2 + 3 * (14 + 64)
    # 2 cameras x 2 frames x (frame + events), 32 pixels each, with gaps
    assert image.shape[1] > 2 * 2 * 2 * 32
    b, r = image[..., 0].astype(int), image[..., 2].astype(int)
    assert ((r > 200) & (b < 100)).any() and ((b > 200) & (r < 100)).any()   # ON and OFF
    small = render_contact_sheet(tiny, tmp_path / "sheet_pal.png", num_ids=3, frames=2,
                                 palette=True)
    assert small.stat().st_size < path.stat().st_size
