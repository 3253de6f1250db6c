"""Temporal aggregation of per-frame feature maps into clip features.

``PyramidAggregation`` (SDCL / PSTA style): a feature fusion block fuses
adjacent pairs of maps, halving the sequence at each level (8 -> 4 -> 2 -> 1).
After level l, mean over time + global average pooling gives f_l; the
outputs are the running means f1, mean(f1, f2), mean(f1, f2, f3), one per
level (deep supervision).

Sequence lengths that do not halve evenly: at a level with an odd count the
last map is repeated once before pairing (5 -> 6 -> 3 -> 4 -> 2), so any T
>= 1 works with any number of levels; for T a power of two with
2**levels == T nothing is repeated. A lone map (T = 1) is paired with itself.

``TemporalAveragePooling`` is the Table-4 style baseline: one output, the
mean over time and space.

The feature fusion block (pairwise, in the spirit of PSTA's STAM):
- temporal relation attention: each map's pooled embedding, next to its
  partner's, goes through an MLP that scores every channel of that map; a
  softmax over the pair gives per-channel weights that sum to one;
- spatial relation attention: from [z_a, z_b, z_a * z_b] (embeddings and
  their product, i.e. where the frames agree) a small conv predicts a
  sigmoid map for each frame, applied as x * (1 + s) (residual attention);
- the weighted sum goes through a ResNet bottleneck with identity skip.
All layers are convolutional or pooled, so any map size works, and the
block is symmetric in its two inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from evreid.errors import EvreidError

__all__ = ["FeatureFusionBlock", "PyramidAggregation", "TemporalAveragePooling",
           "build_aggregation", "AGGREGATIONS"]


class _Bottleneck(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(8, channels // reduction)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.body(x))


class FeatureFusionBlock(nn.Module):
    """Fuse two maps ``a, b`` [N, C, h, w] into one [N, C, h, w]."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        mid = max(8, channels // reduction)
        self.embed = nn.Sequential(nn.Conv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                   nn.ReLU(inplace=True))
        self.temporal = nn.Sequential(nn.Linear(2 * mid, mid), nn.ReLU(inplace=True),
                                      nn.Linear(mid, channels))
        self.spatial = nn.Sequential(nn.Conv2d(3 * mid, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                     nn.ReLU(inplace=True), nn.Conv2d(mid, 1, 3, padding=1))
        self.bottleneck = _Bottleneck(channels)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        N, C = a.shape[:2]
        z = self.embed(torch.cat([a, b]))                  # one conv call for both frames
        za, zb = z[:N], z[N:]
        ga, gb = za.mean((2, 3)), zb.mean((2, 3))
        # each frame is scored against its partner, in both orders, so the
        # block is symmetric: fuse(a, b) == fuse(b, a)
        scores = self.temporal(torch.cat([torch.cat([ga, gb], 1), torch.cat([gb, ga], 1)]))
        wt = scores.view(2, N, C).transpose(0, 1).softmax(1).view(N, 2, C, 1, 1)
        rel = za * zb
        s = torch.sigmoid(self.spatial(torch.cat([torch.cat([za, zb, rel], 1),
                                                   torch.cat([zb, za, rel], 1)])))
        sa, sb = s[:N], s[N:]
        fused = wt[:, 0] * a * (1 + sa) + wt[:, 1] * b * (1 + sb)
        return self.bottleneck(fused)


def _gap_time(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(1, 3, 4))                           # [B, T, C, h, w] -> [B, C]


class PyramidAggregation(nn.Module):
    """``forward(x)`` with x [B, T, C, h, w] -> list of ``levels`` features [B, C]."""

    def __init__(self, channels: int, levels: int = 3, reduction: int = 8) -> None:
        super().__init__()
        if levels < 1:
            raise EvreidError(f"MODEL.AGG.LEVELS must be >= 1; got {levels}")
        self.blocks = nn.ModuleList(FeatureFusionBlock(channels, reduction) for _ in range(levels))
        self.num_outputs = levels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = []
        running = None
        for level, block in enumerate(self.blocks, start=1):
            if x.shape[1] % 2:
                x = torch.cat([x, x[:, -1:]], 1)           # repeat the last map (documented)
            B, T = x.shape[:2]
            a = x[:, 0::2].flatten(0, 1)
            b = x[:, 1::2].flatten(0, 1)
            x = block(a, b).unflatten(0, (B, T // 2))
            f = _gap_time(x)
            running = f if running is None else running + f
            outs.append(running / level)
        return outs


class TemporalAveragePooling(nn.Module):
    """Mean over time and space: one output [B, C]."""

    num_outputs = 1

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [_gap_time(x)]


AGGREGATIONS = ("pyramid", "tap")


def build_aggregation(mode: str, channels: int, levels: int = 3,
                      reduction: int = 8) -> nn.Module:
    if mode == "pyramid":
        return PyramidAggregation(channels, levels, reduction)
    if mode == "tap":
        return TemporalAveragePooling()
    raise EvreidError(f"unknown MODEL.AGG.MODE {mode!r}; valid: {', '.join(AGGREGATIONS)}")

