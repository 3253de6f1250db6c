"""ClipDataset on the real MARS frames: indices, shapes, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evreid.config import get_cfg
from evreid.data import build_dataset
from evreid.data.clips import ClipDataset, read_image
from evreid.data.sampling import RandomIdentitySampler
from evreid.data.transforms import build_transforms
from evreid.errors import EvreidError


@pytest.fixture
def mars(fixtures_dir):
    return build_dataset("mars", fixtures_dir / "mini_mars")


def small_cfg():
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]"])
    return cfg


def test_train_items_deterministic_per_draw(mars):
    cfg = small_cfg()
    data = ClipDataset(mars.train, 4, "random_interval", build_transforms(cfg, True), seed=1)
    a, b, c = data[(0, 11)], data[(0, 11)], data[(0, 12)]
    assert a["frames"].shape == (1, 4, 3, 64, 32)
    assert torch.equal(a["frames"], b["frames"]) and not torch.equal(a["frames"], c["frames"])
    assert a["pid"] == mars.train[0].pid and a["camid"] == mars.train[0].camid


def test_dense_clips_read_frames_in_order(mars):
    tracklet = mars.query[0]
    data = ClipDataset([tracklet], 4, "dense", None, max_clips=100)
    item = data[0]
    clips = -(-len(tracklet) // 4)
    assert item["frames"].shape[:2] == (clips, 4)
    first = torch.from_numpy(read_image(tracklet.frames[5])).permute(2, 0, 1).float() / 255
    assert torch.equal(item["frames"][1, 1], first)


def test_with_identity_sampler(mars):
    cfg = small_cfg()
    data = ClipDataset(mars.train, 2, "random_interval", build_transforms(cfg, True))
    sampler = RandomIdentitySampler([t.pid for t in mars.train], 2, 2, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, sampler=sampler)
    batch = next(iter(loader))
    assert batch["frames"].shape == (4, 1, 2, 3, 64, 32)
    assert len(set(batch["pid"].tolist())) == 2


def test_events_required_when_enabled(mars):
    from evreid.data.clips import EventOptions

    with pytest.raises(EvreidError, match="have no events"):
        ClipDataset(mars.train, 4, "evenly", events=EventOptions())


def test_corrupt_image_names_file(tmp_path):
    bad = tmp_path / "0001.png"
    bad.write_bytes(b"\x89PNG truncated")
    with pytest.raises(EvreidError, match=r"cannot read image .*0001\.png"):
        read_image(str(bad))


def test_frames_from_bytes_read_once_equal_the_file_reads(mars):
    """On the fly, a clip reads each file once and decodes its bytes (colour for the
    clip, grey for the events): the same pixels as reading the files, and an item
    with on-the-fly events has the frames of the frames-only item of the same draw."""
    from evreid.data.clips import EventOptions, read_bytes, read_frames
    from evreid.events.onthefly import read_luma

    paths = mars.train[0].frames[:6]
    data = [read_bytes(p) for p in paths]
    assert torch.equal(read_frames(paths, data), read_frames(paths))
    for a, b in zip(read_luma(paths, data), read_luma(paths), strict=True):
        np.testing.assert_array_equal(a, b)
    plain = ClipDataset(mars.train, 4, "random_interval", seed=3)
    with_events = ClipDataset(mars.train, 4, "random_interval", seed=3,
                              events=EventOptions(source="simulate"))
    a, b = plain[(1, 7)], with_events[(1, 7)]
    assert torch.equal(a["frames"], b["frames"]) and b["events"].sum() > 0


def test_missing_frame_file_names_it(tmp_path):
    from evreid.data.clips import read_bytes

    with pytest.raises(EvreidError, match=r"cannot read image .*gone\.jpg"):
        read_bytes(str(tmp_path / "gone.jpg"))
