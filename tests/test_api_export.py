"""Embedder, GallerySearch and ONNX export of trained checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.api import Embedder, GallerySearch
from evreid.cli import main
from evreid.errors import EvreidError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    root = make_tiny_reid(tmp / "data").parent
    out = tmp / "run"
    assert main(["train", "--no-progress", "--output", str(out), *TINY_TRAIN_OPTS,
                 "DATASETS.ROOT_DIR", str(root), "SOLVER.MAX_EPOCHS", "1"]) == 0
    return out


def test_embedder_matches_test_pipeline(trained):
    from evreid.data import build_dataset

    embedder = Embedder(trained / "best.pth")
    dataset = build_dataset("prid2011", trained.parent / "data")
    by_tracklets = embedder.embed_tracklets(dataset.query[:3])
    assert by_tracklets.shape == (3, 32)
    from evreid.data.clips import read_frames
    from evreid.data.sampling import sample_clip

    clips = [read_frames([t.frames[i] for i in sample_clip(len(t), 2, "begin_interval")[0]])
             for t in dataset.query[:3]]
    direct = embedder.embed(torch.stack(clips))
    torch.testing.assert_close(direct, by_tracklets, atol=1e-5, rtol=1e-5)
    uint8 = (torch.stack(clips) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2)
    torch.testing.assert_close(embedder.embed(uint8), direct, atol=1e-4, rtol=1e-4)
    with pytest.raises(EvreidError, match="frames must be 5-D"):
        embedder.embed(torch.zeros(2, 3, 32, 16))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_gallery_search_exact(metric):
    rng = np.random.default_rng(0)
    gallery, query = rng.normal(size=(50, 8)), rng.normal(size=(5, 8))
    gallery[7] = gallery[3]  # a tie: the lower index comes first
    distances, indices = GallerySearch(gallery, metric).search(query, k=50)
    from evreid.metrics import compute_distance

    full = compute_distance(query, gallery, metric)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(full, axis=1, kind="stable"))
    np.testing.assert_allclose(distances.numpy(), np.sort(full, axis=1), atol=1e-5)
    with pytest.raises(EvreidError, match="unknown backend"):
        GallerySearch(gallery, backend="annoy")


@pytest.mark.slow
def test_export_onnx_checked(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    assert main(["export", "onnx", "--checkpoint", str(trained / "best.pth"), "--out",
                 str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] and report["max_abs_diff"] <= 1e-4 and out.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_export_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"nope")
    assert main(["export", "onnx", "--checkpoint", str(bad), "--out",
                 str(tmp_path / "m.onnx")]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_export_sdcl_with_events(tmp_path):
    pytest.importorskip("onnxruntime")
    from evreid.config import load_config
    from evreid.export import export_onnx
    from evreid.models import build_model

    cfg = load_config(None, ["MODEL.BACKBONE", "resnet18", "MODEL.WIDTH_MULT", "0.125",
                             "MODEL.FEAT_DIM", "32", "INPUT.SIZE_TEST", "[32, 16]",
                             "INPUT.SEQ_LEN", "2", "MODEL.SNN.WIDTH", "8",
                             "MODEL.DEFORM.CHANNELS", "8", "MODEL.ALIGN.EMBED_DIM", "16",
                             "MODEL.ALIGN.HIDDEN", "16", "MODEL.AGG.LEVELS", "1"])
    report = export_onnx(build_model(cfg, 4), cfg, tmp_path / "sdcl.onnx")
    assert report["inputs"] == ["frames", "events"]
    assert report["checked"] and report["max_abs_diff"] <= 1e-4
