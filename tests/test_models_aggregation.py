"""Pyramid aggregation and temporal average pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evreid.errors import EvreidError
from evreid.models.aggregation import (
    FeatureFusionBlock,
    PyramidAggregation,
    TemporalAveragePooling,
    build_aggregation,
)


class _TakeFirst(nn.Module):
    def forward(self, a, b):
        return a


def _frames_with_values(values):
    # [B=1, T, C=2, 2, 1] maps whose spatial mean is values[t] in both channels
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1, 1).expand(
        1, len(values), 2, 2, 1).clone()


@pytest.mark.parametrize("values,f", [
    # T = 8: levels keep frames 0,2,4,6 / 0,4 / 0
    ([1, 2, 3, 4, 5, 6, 7, 8], [(1 + 3 + 5 + 7) / 4, (1 + 5) / 2, 1]),
    # T = 5: odd counts repeat the last map: 5 -> [0..4,4] -> 0,2,4 -> [0,2,4,4] -> 0,4 -> 0
    ([1, 2, 3, 4, 5], [(1 + 3 + 5) / 3, (1 + 5) / 2, 1]),
    # T = 1: the lone map is paired with itself at every level
    ([4], [4, 4, 4]),
])
def test_pyramid_levels_halve_and_outputs_are_running_means(values, f):
    agg = PyramidAggregation(2, levels=3)
    agg.blocks = nn.ModuleList(_TakeFirst() for _ in range(3))
    outs = agg(_frames_with_values(values))
    expected = [f[0], (f[0] + f[1]) / 2, (f[0] + f[1] + f[2]) / 3]
    assert len(outs) == 3
    for out, e in zip(outs, expected, strict=True):
        assert torch.allclose(out, torch.full((1, 2), float(e)))


def test_pyramid_shapes_for_any_size_and_length():
    torch.manual_seed(0)
    agg = PyramidAggregation(16, levels=3, reduction=4)
    for T, h, w in [(8, 4, 2), (4, 3, 5), (6, 1, 1)]:
        outs = agg(torch.randn(2, T, 16, h, w))
        assert [o.shape for o in outs] == [(2, 16)] * 3


def test_fusion_block_is_symmetric_in_its_pair():
    torch.manual_seed(0)
    block = FeatureFusionBlock(16, reduction=4).eval()
    a, b = torch.randn(3, 16, 4, 2), torch.randn(3, 16, 4, 2)
    with torch.no_grad():
        assert torch.allclose(block(a, b), block(b, a), atol=1e-6)
        assert not torch.allclose(block(a, b), block(a, a))


def test_temporal_average_pooling_and_builder():
    x = torch.randn(2, 4, 8, 3, 2)
    (out,) = TemporalAveragePooling()(x)
    assert torch.allclose(out, x.mean(dim=(1, 3, 4)))
    assert build_aggregation("tap", 8).num_outputs == 1
    assert build_aggregation("pyramid", 8, levels=2).num_outputs == 2
    with pytest.raises(EvreidError, match="pyramid, tap"):
        build_aggregation("lstm", 8)
    with pytest.raises(EvreidError, match="LEVELS"):
        PyramidAggregation(8, levels=0)
