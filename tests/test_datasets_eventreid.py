"""Event-ReId: the real sample partition, a generated raw tree, event-only clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evreid.data import build_dataset
from evreid.data.clips import ClipDataset, EventOptions
from evreid.data.datasets.base import DatasetError
from evreid.data.datasets.eventreid import TEST_IDS, TRAIN_IDS, crop, partition
from evreid.errors import EvreidError
from evreid.events import Events, load_tracklet_events, read_events


def test_sample_partition_statistics(fixtures_dir, tmp_path):
    root = fixtures_dir / "event_reid_sample"
    ds = build_dataset("eventreid", root, cache_dir=tmp_path)
    s = ds.summary()
    assert (s["train"]["ids"], s["train"]["tracklets"], s["train"]["cameras"]) == (10, 30, 4)
    assert (s["query"]["tracklets"], s["gallery"]["tracklets"]) == (13, 20)
    assert s["train"]["frames"] == 30 * 8                   # 8 windows per chunk
    assert sorted({t.pid for t in ds.train}) == list(range(10))     # relabelled
    assert {t.pid for t in ds.query} == {1, 2, 3, 4, 5}
    q = ds.query[0]
    assert q.key == "test/001_c1_060" and q.camid == 0 and q.frames == () and len(q) == 8
    # the chunk, read as the authors do (100 us ticks), cropped to its events' extent
    raw = read_events(root / "test" / "001_c1_060.txt", sensor_size=(480, 640),
                      time_unit_us=100)
    tev = load_tracklet_events(q.events, len(q), q.fps)
    assert len(tev.events) == len(raw)
    assert tev.width == int(raw.x.max() - raw.x.min()) + 1
    assert tev.height == int(raw.y.max() - raw.y.min()) + 1
    assert np.array_equal(tev.events.x, raw.x - raw.x.min())
    assert int(tev.offsets[-1] - tev.offsets[0]) == len(raw)        # windows cover the chunk
    assert tev.windows[0, 0] == raw.t[0] - 1 and tev.windows[-1, 1] == raw.t[-1]


def test_event_only_clips(fixtures_dir, tmp_path):
    ds = build_dataset("eventreid", fixtures_dir / "event_reid_sample", cache_dir=tmp_path,
                       num_windows=6)
    clips = ClipDataset(ds.train[:2], 4, "evenly", None, EventOptions("count", 2),
                        frames=False)
    item = clips[0]
    assert "frames" not in item
    tev = load_tracklet_events(ds.train[0].events, 6, 30.0)
    assert item["events"].shape == (1, 4, 2, 2, tev.height, tev.width)
    with pytest.raises(EvreidError, match="have no frame images .* events_only"):
        ClipDataset(ds.train, 4, "evenly", None, EventOptions())


def _raw_tree(root, ids=(1, 2, 3, 5), cams=(1, 2), seconds=0.4, seed=0):
    """<ID>/camNN/events.txt (+ labels) in the release layout, 100 us ticks."""
    rng = np.random.default_rng(seed)
    for pid in ids:
        for cam in cams:
            folder = root / f"{pid:03d}" / f"cam{cam:02d}"
            (folder / "labels").mkdir(parents=True)
            n = 3000
            t = np.sort(rng.uniform(0, seconds * 1e4, n)) + 5e8     # ticks of 100 us
            x = rng.integers(100 + pid, 200, n)
            y = rng.integers(50, 300, n)
            p = rng.integers(0, 2, n)
            rows = "\n".join(f"{a:.4f} {b} {c} {d}" for a, b, c, d in zip(t, x, y, p,
                                                                           strict=True))
            (folder / "events.txt").write_text(f"640 480\n{rows}\n")
            # window 0 labelled with a box smaller than the events' extent
            (folder / "labels" / "0000.json").write_text(json.dumps([[120, 60, 180, 200], 0]))


def test_raw_layout_is_partitioned_with_the_authors_rules(tmp_path):
    _raw_tree(tmp_path / "data")
    ds = build_dataset("eventreid", tmp_path / "data", cache_dir=tmp_path / "cache", seed=3)
    assert ds.extra["layout"] == "raw"
    assert {1, 3} <= set(TRAIN_IDS) and {2, 5} <= set(TEST_IDS)
    # 0.4 s of a stream = chunks 0..12 of 33.3 ms: train keeps 12-13 chunks per stream
    train_counts = {}
    for t in ds.train:
        train_counts[t.key.split("_c")[0]] = train_counts.get(t.key.split("_c")[0], 0) + 1
    assert all(c >= 2 * 12 for c in train_counts.values())
    test = ds.query + ds.gallery
    chunks = sorted(int(t.key.rsplit("_", 1)[1]) for t in test)
    assert set(chunks) == {0, 5, 10} and all(k % 5 == 0 for k in chunks)
    # one query per (identity, camera) of the test ids; the rest is the gallery
    assert sorted((t.pid, t.camid) for t in ds.query) == [(2, 0), (2, 1), (5, 0), (5, 1)]
    assert len(ds.gallery) == len(test) - 4
    assert not {t.key for t in ds.query} & {t.key for t in ds.gallery}
    # seeded: the same seed draws the same queries, another may not
    again = build_dataset("eventreid", tmp_path / "data", cache_dir=tmp_path / "c2", seed=3)
    assert [t.key for t in again.query] == [t.key for t in ds.query]
    # the labelled window is cropped to its box: a 61 x 141 sensor
    first = next(t for t in test if t.key.endswith("_c1_000") and t.pid == 2)
    tev = load_tracklet_events(first.events, len(first), first.fps)
    assert (tev.width, tev.height) == (61, 141)


def test_partition_rules():
    ev = Events(np.arange(0, 100, 10), np.zeros(10), np.zeros(10), np.ones(10), 4, 4)
    parts = partition(ev, chunk_us=25)
    assert [(k, len(p)) for k, _, _, p in parts] == [(0, 3), (1, 2), (2, 3), (3, 2)]
    assert parts[1][1:3] == (24, 49)
    by_count = partition(ev, chunk_events=4)
    assert [len(p) for _, _, _, p in by_count] == [4, 4, 2]
    cropped, box = crop(Events([1, 2], [3, 9], [2, 5], [1, -1], 16, 16))
    assert box == (3, 2, 9, 5) and (cropped.width, cropped.height) == (7, 4)
    assert cropped.x.tolist() == [0, 6]


def test_bad_trees(tmp_path):
    with pytest.raises(DatasetError, match="eventreid: root folder .* does not exist"):
        build_dataset("eventreid", tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no <ID>/camNN/events\.txt"):
        build_dataset("eventreid", tmp_path / "empty", cache_dir=tmp_path / "c")
    part = tmp_path / "part"
    (part / "train").mkdir(parents=True)
    for name in ("train_list.txt", "query_list.txt", "gallery_list.txt"):
        (part / name).write_text("")
    (part / "train" / "001_c1_000.txt").write_text("1 2 3 1\n1.5 2 3 7\n")
    (part / "train_list.txt").write_text("train/001_c1_000.txt 002\n")
    with pytest.raises(DatasetError, match="belongs to ID 001, the line says 002"):
        build_dataset("eventreid", part, cache_dir=tmp_path / "c")
    (part / "train_list.txt").write_text("train/001_c1_000.txt 001\n")
    with pytest.raises(DatasetError, match=r"001_c1_000\.txt: line 2: .* is not an event"):
        build_dataset("eventreid", part, cache_dir=tmp_path / "c")
