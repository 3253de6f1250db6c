"""Temporal aggregation of per-frame feature maps into clip features.

``PyramidAggregation`` (PSTA / SDCL §3.5): a feature fusion block (STAM,
``stam.py``) fuses adjacent maps, halving the sequence at each level
(8 -> 4 -> 2 -> 1). After level l, mean over time + global average pooling
gives f_l; the outputs are the running means f1, mean(f1, f2),
mean(f1, f2, f3), one per level (deep supervision, one BNNeck each).

Events inside the fusion (SDCL): when event maps [B, T, C, h, w] are given
next to the frame maps, the first level fuses each pair of adjacent time
steps with both modalities, the group {F_t, E_t, F_t+1, E_t+1} -> one map;
later levels fuse pairs of the (now joint) maps as in PSTA.

Sequence lengths that do not halve evenly: at a level with an odd count the
last map is repeated once before pairing (5 -> 6 -> 3 -> 4 -> 2), so any T
>= 1 works with any number of levels; for T a power of two with
2**levels == T nothing is repeated. A lone map (T = 1) is paired with itself.

``TemporalAveragePooling`` is the Table-4 style baseline: one output, the
mean over time and space (of both modalities when events are given).
"""

from __future__ import annotations

import torch
from torch import nn

from evreid.errors import EvreidError
from evreid.models.stam import STAM

__all__ = ["PyramidAggregation", "TemporalAveragePooling", "build_aggregation",
           "AGGREGATIONS"]


def _gap_time(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(1, 3, 4))                           # [B, T, C, h, w] -> [B, C]


def _even(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x[:, -1:]], 1) if x.shape[1] % 2 else x   # repeat the last map


class PyramidAggregation(nn.Module):
    """``forward(x, events=None)`` with x (and events) [B, T, C, h, w] -> list of
    ``levels`` features [B, C]. ``map_size`` is the (h, w) the STAM relation
    convs are built for (other sizes are resampled, see ``stam.py``)."""

    def __init__(self, channels: int, levels: int = 3, reduction: int = 8,
                 map_size: tuple[int, int] = (16, 8)) -> None:
        super().__init__()
        if levels < 1:
            raise EvreidError(f"MODEL.AGG.LEVELS must be >= 1; got {levels}")
        if reduction < 1:
            raise EvreidError(f"MODEL.AGG.REDUCTION must be >= 1; got {reduction}")
        inner = max(8, channels // reduction)
        self.blocks = nn.ModuleList(STAM(channels, map_size, inner=inner)
                                    for _ in range(levels))
        self.num_outputs = levels

    def forward(self, x: torch.Tensor, events: torch.Tensor | None = None
                ) -> list[torch.Tensor]:
        if events is not None and events.shape != x.shape:
            raise EvreidError(f"event maps {tuple(events.shape)} must match the frame maps "
                              f"{tuple(x.shape)}")
        outs: list[torch.Tensor] = []
        running = None
        for level, block in enumerate(self.blocks, start=1):
            x = _even(x)
            B, T = x.shape[:2]
            group = x.unflatten(1, (T // 2, 2))                     # [B, T/2, 2, C, h, w]
            if level == 1 and events is not None:
                ev = _even(events).unflatten(1, (T // 2, 2))
                # member order F_t, E_t, F_t+1, E_t+1 (STAM does not depend on it)
                group = torch.stack([group, ev], 3).flatten(2, 3)
            x = block(group.flatten(0, 1)).unflatten(0, (B, T // 2))
            f = _gap_time(x)
            running = f if running is None else running + f
            outs.append(running / level)
        return outs


class TemporalAveragePooling(nn.Module):
    """Mean over time and space: one output [B, C]."""

    num_outputs = 1

    def forward(self, x: torch.Tensor, events: torch.Tensor | None = None
                ) -> list[torch.Tensor]:
        if events is not None:
            return [(_gap_time(x) + _gap_time(events)) / 2]
        return [_gap_time(x)]


AGGREGATIONS = ("pyramid", "tap")


def build_aggregation(mode: str, channels: int, levels: int = 3, reduction: int = 8,
                      map_size: tuple[int, int] = (16, 8)) -> nn.Module:
    if mode == "pyramid":
        return PyramidAggregation(channels, levels, reduction, map_size)
    if mode == "tap":
        return TemporalAveragePooling()
    raise EvreidError(f"unknown MODEL.AGG.MODE {mode!r}; valid: {', '.join(AGGREGATIONS)}")
