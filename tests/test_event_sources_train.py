"""SDCL trains end to end on real mini_mars frames with events from (a) the .evs store,
(b) on the fly, (c) SDCL-release per-frame .mat folders; the loader ships compact counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from evreid.config import load_config
from evreid.data import build_dataset
from evreid.data.clips import ClipDataset, EventOptions
from evreid.data.datasets.base import attach_events
from evreid.data.transforms import build_transforms
from evreid.engine.trainer import Trainer
from evreid.events import SimulatorConfig, write_events
from evreid.events.cache import Job, cache_path, run_job, tracklet_seed

TINY_SDCL = [
    "MODEL.ARCH", "sdcl", "MODEL.BACKBONE", "resnet18", "MODEL.WIDTH_MULT", "0.125",
    "MODEL.FEAT_DIM", "32", "MODEL.SNN.WIDTH", "8", "MODEL.DEFORM.CHANNELS", "8",
    "MODEL.ALIGN.EMBED_DIM", "16", "MODEL.ALIGN.HIDDEN", "16", "MODEL.AGG.LEVELS", "1",
    "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "INPUT.SEQ_LEN", "2",
    "INPUT.PADDING", "2", "DATALOADER.IMS_PER_BATCH", "4", "DATALOADER.NUM_INSTANCE", "2",
    "DATALOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCHS", "1", "SOLVER.WARMUP_EPOCHS", "1",
    "SOLVER.EVAL_PERIOD", "1", "SOLVER.LOG_PERIOD", "1", "TEST.IMS_PER_BATCH", "4",
    "DATASETS.NAME", "mars",
]


def _subset(root):
    ds = build_dataset("mars", root)
    by_pid: dict[int, list] = {}
    for t in ds.train:
        by_pid.setdefault(t.pid, []).append(t)
    ds.train = [t for pid in sorted(by_pid)[:3] for t in by_pid[pid][:2]]
    ds.query = ds.query[:3]
    pids = {t.pid for t in ds.query}
    ds.gallery = [t for t in ds.gallery if t.pid in pids][:6]
    return ds


@pytest.fixture(scope="module")
def small_mars(tmp_path_factory):
    """A factory of mini_mars cut to 3 training ids (2 tracklets each) and 3 queries
    with their gallery, and the events dir where `evreid simulate`'s job put their
    .evs stores."""
    if not FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {FIXTURES}")
    root = FIXTURES / "mini_mars"
    ds = _subset(root)
    events_dir = tmp_path_factory.mktemp("events")
    cfg = SimulatorConfig()
    for t in {t.key: t for t in ds.train + ds.query + ds.gallery}.values():
        run_job(Job(t.key, tuple(t.frames), t.fps, str(cache_path(events_dir, t.key)),
                    tracklet_seed(0, t.key)), cfg)
    return (lambda: _subset(root)), events_dir


def _train(ds, tmp_path, extra=()):
    cfg = load_config(None, TINY_SDCL + ["OUTPUT_DIR", str(tmp_path / "run"), *extra])
    trainer = Trainer(cfg, ds, tmp_path / "run", show_progress=False)
    result = trainer.train()
    assert trainer.step >= 1
    assert math.isfinite(result["final"]["mAP"])
    return result


@pytest.mark.slow
def test_sdcl_trains_on_the_event_store(small_mars, tmp_path):
    make, events_dir = small_mars
    ds = make()
    ds = attach_events(ds, events_dir, required=True)
    assert all(str(t.events).endswith(".evs") for t in ds.train)
    _train(ds, tmp_path)


@pytest.mark.slow
def test_sdcl_trains_on_events_computed_on_the_fly(small_mars, tmp_path):
    make, _ = small_mars
    ds = make()
    ds.train = [t.with_events(None) for t in ds.train]     # no event files at all
    ds.query = [t.with_events(None) for t in ds.query]
    ds.gallery = [t.with_events(None) for t in ds.gallery]
    _train(ds, tmp_path, ["EVENTS.SOURCE", "simulate"])


@pytest.mark.slow
def test_sdcl_trains_on_sdcl_mat_folders(small_mars, tmp_path):
    from evreid.events import read_events

    make, events_dir = small_mars
    ds = make()
    mat_dir = tmp_path / "mat"
    for t in {t.key: t for t in ds.train + ds.query + ds.gallery}.values():
        store = cache_path(events_dir, t.key)
        from evreid.events.store import read_index

        index = read_index(store)
        write_events(mat_dir / t.key, read_events(store),
                     frame_timestamps_us=index.frame_timestamps_us)
    ds = attach_events(ds, mat_dir, required=True)
    assert all((mat_dir / t.key).is_dir() for t in ds.train)
    _train(ds, tmp_path)


def test_loader_ships_compact_counts_equal_to_the_float_ones(small_mars):
    """Sensor-sized clips travel as uint8 counts; the same values as float32."""
    make, events_dir = small_mars
    ds = make()
    ds = attach_events(ds, events_dir, required=True)
    cfg = load_config(None, ["INPUT.SEQ_LEN", "4"])
    transform = build_transforms(cfg, is_train=False)
    compact = ClipDataset(ds.train[:2], 4, "evenly", transform, EventOptions(), seed=0)
    wide = ClipDataset(ds.train[:2], 4, "evenly", transform,
                       EventOptions(dtype="float32"), seed=0)
    a, b = compact[1], wide[1]
    assert a["events"].dtype == torch.uint8 and b["events"].dtype == torch.float32
    assert a["events"].shape == (1, 4, 3, 2, 256, 128)
    assert a["events_saturated"] == 0
    assert torch.equal(a["events"].float(), b["events"])
    assert b["events"].sum() > 0


def test_store_clip_equals_whole_tracklet_decoding(small_mars):
    from evreid.events import load_tracklet_events

    make, events_dir = small_mars
    ds = make()
    ds = attach_events(ds, events_dir, required=True)
    t = ds.train[0]
    clips = ClipDataset([t], 4, "evenly", None, EventOptions(dtype="float32"))
    idx = np.array([0, 3, 7, len(t) - 1])
    want = load_tracklet_events(t.events, len(t), t.fps).tensor(idx, 3)
    np.testing.assert_array_equal(clips.event_bins(t, idx), want)
