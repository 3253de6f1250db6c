from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evreid.config import get_cfg
from evreid.data.transforms import (
    Compose,
    PadRandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    Resize,
    area_resize_sum,
    build_transforms,
)


def make_clip(t=3, h=16, w=8, bins=2):
    frames = torch.rand(t, 3, h, w)
    # events marking the same pixels as a bright frame spot: alignment is checkable
    events = torch.zeros(t, bins, 2, h, w)
    frames[:, :, 5, 2] = 1.0
    events[:, :, 0, 5, 2] = 3.0
    return {"frames": frames, "events": events}


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), oh=st.integers(1, 20),
       ow=st.integers(1, 20), seed=st.integers(0, 100))
def test_area_resize_preserves_counts(h, w, oh, ow, seed):
    x = torch.from_numpy(np.random.default_rng(seed).poisson(2.0, (2, h, w))).double()
    y = area_resize_sum(x, oh, ow)
    assert y.shape == (2, oh, ow)
    torch.testing.assert_close(y.sum(dim=(-1, -2)), x.sum(dim=(-1, -2)))
    assert (y >= 0).all()


def test_area_resize_integer_factor_is_block_sum():
    x = torch.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(area_resize_sum(x, 2, 2).numpy(), [[10, 18], [42, 50]])


def test_flip_and_crop_apply_same_draw_to_both():
    clip = make_clip()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out = Compose([RandomHorizontalFlip(0.5), PadRandomCrop(3)])(clip, rng)
        bright = (out["frames"][0, 0] == 1.0).nonzero().tolist()
        event = (out["events"][0, 0, 0] == 3.0).nonzero().tolist()
        assert bright == event
        for t in range(3):
            assert torch.equal(out["events"][t, 0, 0] == 3.0, out["events"][0, 0, 0] == 3.0)


def test_flip_exact():
    clip = make_clip()
    out = RandomHorizontalFlip(1.0)(clip, np.random.default_rng(0))
    assert torch.equal(out["frames"], clip["frames"].flip(-1))
    assert out["events"][0, 0, 0, 5, 8 - 1 - 2] == 3.0


def test_erasing_same_rectangle():
    clip = make_clip(h=32, w=16)
    clip["events"] += 1.0
    out = RandomErasing(p=1.0)(clip, np.random.default_rng(1))
    frame_zero = (out["frames"] == 0).all(dim=1)  # [T, H, W]
    event_zero = (out["events"] == 0).all(dim=2).all(dim=1)
    assert frame_zero.any() and torch.equal(frame_zero, event_zero)


def test_resize_keeps_event_total():
    clip = make_clip(h=32, w=16)
    out = Resize((24, 12))(clip, np.random.default_rng(0))
    assert out["frames"].shape == (3, 3, 24, 12)
    torch.testing.assert_close(out["events"].sum(), clip["events"].sum())


def test_build_transforms_shapes_and_determinism():
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.PADDING", "2"])
    train = build_transforms(cfg, is_train=True)
    clip = make_clip(h=64, w=32)
    a = train(clip, np.random.default_rng(7))
    b = train(clip, np.random.default_rng(7))
    assert a["frames"].shape == (3, 3, 32, 16) and a["events"].shape == (3, 2, 2, 32, 16)
    assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["events"], b["events"])
    test = build_transforms(cfg, is_train=False)
    assert test(clip, np.random.default_rng(0))["frames"].shape[-2:] == (256, 128)


def test_crop_rejects_unaligned_events():
    clip = make_clip()
    clip["events"] = torch.zeros(3, 2, 2, 4, 4)
    with pytest.raises(Exception, match="resize before cropping"):
        PadRandomCrop(2)(clip, np.random.default_rng(0))
