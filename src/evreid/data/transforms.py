"""Paired augmentation of a clip: frames and events get the SAME random draw.

A clip is a dict ``{"frames": [T, 3, H, W] float in [0, 1], "events":
[T, bins, 2, He, We] float counts (optional)}``. Each transform takes the clip
and one ``numpy.random.Generator`` and makes its random choices once per clip,
so every frame and every event window of the clip is flipped, cropped and
erased identically. Events are resized by exact area sums, so event counts are
preserved under any resize ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from evreid.errors import EvreidError

Clip = dict[str, torch.Tensor]


def area_weights(size_in: int, size_out: int) -> torch.Tensor:
    """[size_out, size_in] overlap lengths of output cells with input pixels.

    Every input pixel is split exactly among the output cells it overlaps, so
    columns sum to 1 and ``R @ x`` preserves the total of ``x``.
    """
    scale = size_in / size_out
    out_lo = torch.arange(size_out, dtype=torch.float64)[:, None] * scale
    in_lo = torch.arange(size_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(out_lo + scale, in_lo + 1) - torch.maximum(out_lo, in_lo))
    return overlap.clamp_min(0.0)


def area_resize_sum(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize the last two dims so that every output cell holds the SUM of the
    input it covers (event counts stay counts)."""
    if x.shape[-2:] == (height, width):
        return x
    rows = area_weights(x.shape[-2], height).to(x.dtype)
    cols = area_weights(x.shape[-1], width).to(x.dtype)
    return rows @ x @ cols.T


def _size(clip: Clip) -> tuple[int, int]:
    """(H, W) of the clip: its frames', or its events' for an event-only clip."""
    ref = clip["frames"] if "frames" in clip else clip["events"]
    return int(ref.shape[-2]), int(ref.shape[-1])


class Resize:
    def __init__(self, size: Sequence[int]) -> None:
        self.height, self.width = int(size[0]), int(size[1])

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        out = dict(clip)
        if "frames" in clip and clip["frames"].shape[-2:] != (self.height, self.width):
            out["frames"] = F.interpolate(clip["frames"], size=(self.height, self.width),
                                          mode="bilinear", align_corners=False,
                                          antialias=True).clamp_(0.0, 1.0)
        if "events" in clip:
            out["events"] = area_resize_sum(clip["events"], self.height, self.width)
        return out


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        if rng.random() >= self.p:
            return clip
        return {k: v.flip(-1) if k in ("frames", "events") else v for k, v in clip.items()}


class PadRandomCrop:
    """Zero-pad by ``padding`` on every side, then crop back to the input size at
    one random offset shared by frames and events."""

    def __init__(self, padding: int) -> None:
        self.padding = padding

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        if self.padding <= 0:
            return clip
        height, width = _size(clip)
        top = int(rng.integers(0, 2 * self.padding + 1))
        left = int(rng.integers(0, 2 * self.padding + 1))
        out = dict(clip)
        for key in ("frames", "events"):
            if key in clip:
                if clip[key].shape[-2:] != (height, width):
                    raise EvreidError(f"{key} are {tuple(clip[key].shape[-2:])} but frames are "
                                      f"{(height, width)}: resize before cropping")
                padded = F.pad(clip[key], [self.padding] * 4)
                out[key] = padded[..., top:top + height, left:left + width]
        return out


class RandomErasing:
    """Random erasing (Zhong et al., AAAI 2020) of one rectangle in every frame and
    event window of the clip; frames are filled with 0 (the mean colour, once
    normalised), events with no events."""

    def __init__(self, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
                 aspect: tuple[float, float] = (0.3, 3.33), attempts: int = 100) -> None:
        self.p, self.area, self.aspect, self.attempts = p, area, aspect, attempts

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        if rng.random() >= self.p:
            return clip
        height, width = _size(clip)
        for _ in range(self.attempts):
            target = rng.uniform(*self.area) * height * width
            ratio = math.exp(rng.uniform(math.log(self.aspect[0]), math.log(self.aspect[1])))
            h = int(round(math.sqrt(target * ratio)))
            w = int(round(math.sqrt(target / ratio)))
            if 0 < h < height and 0 < w < width:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                out = dict(clip)
                for key in ("frames", "events"):
                    if key in clip:
                        erased = clip[key].clone()
                        erased[..., top:top + h, left:left + w] = 0.0
                        out[key] = erased
                return out
        return clip


class Normalize:
    """Per-channel mean / std on frames only (events keep their counts)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        if "frames" not in clip:
            return clip
        return {**clip, "frames": (clip["frames"] - self.mean) / self.std}


class Compose:
    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        for transform in self.transforms:
            clip = transform(clip, rng)
        return clip


def build_transforms(cfg, is_train: bool) -> Compose:
    """The paper's augmentation from ``INPUT.*``: resize, flip, pad + crop,
    normalise, random erasing for training; resize + normalise for testing."""
    inp = cfg.INPUT
    if not is_train:
        return Compose([Resize(inp.SIZE_TEST), Normalize(inp.PIXEL_MEAN, inp.PIXEL_STD)])
    return Compose([
        Resize(inp.SIZE_TRAIN),
        RandomHorizontalFlip(inp.PROB_FLIP),
        PadRandomCrop(inp.PADDING),
        Normalize(inp.PIXEL_MEAN, inp.PIXEL_STD),
        RandomErasing(inp.RE_PROB),
    ])
