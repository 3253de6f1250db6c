"""Pyramid aggregation (STAM fusion blocks) and temporal average pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError
from evreid.models.aggregation import (
    PyramidAggregation,
    TemporalAveragePooling,
    build_aggregation,
)
from evreid.models.stam import STAM


class _TakeFirst(nn.Module):
    """Stands in for STAM: keeps the group's first member, records group sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, group):
        self.sizes.append(group.shape[1])
        return group[:, 0]


def _maps_with_values(values):
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
    agg = PyramidAggregation(2, levels=3, map_size=(2, 1))
    agg.blocks = nn.ModuleList(_TakeFirst() for _ in range(3))
    outs = agg(_maps_with_values(values))
    expected = [f[0], (f[0] + f[1]) / 2, (f[0] + f[1] + f[2]) / 3]
    assert len(outs) == 3
    for out, e in zip(outs, expected, strict=True):
        assert torch.allclose(out, torch.full((1, 2), float(e)))
    assert [b.sizes for b in agg.blocks] == [[2]] * 3


def test_events_join_the_first_level_as_members_of_their_own():
    agg = PyramidAggregation(2, levels=3, map_size=(2, 1))
    seen = []

    class _Record(_TakeFirst):
        def forward(self, group):
            seen.append(group.clone())
            return super().forward(group)

    agg.blocks = nn.ModuleList(_Record() for _ in range(3))
    frames = _maps_with_values([1, 2, 3, 4, 5, 6, 7, 8])
    events = -frames
    agg(frames, events)
    assert [b.sizes for b in agg.blocks] == [[4], [2], [2]]
    # level 1, group of time steps 2 and 3: F_2, E_2, F_3, E_3 (value = t + 1)
    group = seen[0][1, :, 0, 0, 0]
    assert group.tolist() == [3.0, -3.0, 4.0, -4.0]
    with pytest.raises(EvreidError, match="must match the frame maps"):
        agg(frames, events[:, :4])


def _reference_stam(block: STAM, x: torch.Tensor) -> torch.Tensor:
    """STAM written member by member and partner by partner (PSTA's loops,
    generalised to k members by the partners' mean), from the block's layers."""
    N, k, C, h, w = x.shape
    tra, sra = block.temporal, block.spatial
    vect = [x[:, i].mean((2, 3)) for i in range(k)]
    emb = [block.embedding(x[:, i]) for i in range(k)]
    gam = [tra.gamma(x[:, i]).flatten(2) for i in range(k)]
    bet = [tra.beta(x[:, i]).flatten(2) for i in range(k)]
    theta = [F.relu(tra.theta(v)) for v in vect]

    def rel(i, j):        # [N, hw_i, hw_j] = <gamma_i[p], beta_j[q]>
        return gam[i].transpose(1, 2) @ bet[j]

    def mean(xs):
        return sum(xs) / len(xs)

    temporal = 0
    for i in range(k):
        others = [j for j in range(k) if j != i]
        towards = mean([rel(i, j).transpose(1, 2) for j in others])   # channel: partner pos
        back = mean([rel(j, i) for j in others])
        joint = tra.relation_embed(torch.cat([towards, back], 1).view(N, -1, h, w))
        pair = tra.pair_embed(torch.cat([emb[i], mean([emb[j] for j in others])], 1))
        alpha = tra.spatial(torch.cat([pair, joint], 1))
        chan = tra.channel(torch.cat([theta[i], mean([theta[j] for j in others])], 1))
        temporal = temporal + chan[:, :, None, None] * alpha * x[:, i]
    out = F.relu(temporal) ** 2
    spatial = 0
    for i in range(k):
        g = sra.alpha(x[:, i]).flatten(2).transpose(1, 2) @ sra.delta(x[:, i]).flatten(2)
        joint = sra.relation_embed(torch.cat([g.transpose(1, 2), g], 1).view(N, -1, h, w))
        s = sra.spatial(torch.cat([emb[i], joint], 1))
        spatial = spatial + sra.channel(vect[i])[:, :, None, None] * s * x[:, i]
    return block.bottleneck(out + F.relu(spatial))


def _randomise_bn(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("k", [2, 4])
def test_stam_equals_the_member_by_member_reference(k):
    torch.manual_seed(0)
    block = STAM(32, (4, 2), inner=8).eval()
    _randomise_bn(block)
    x = torch.randn(3, k, 32, 4, 2)
    with torch.no_grad():
        assert torch.allclose(block(x), _reference_stam(block, x), rtol=1e-4, atol=1e-4)


def test_stam_ignores_member_order_and_depends_on_every_member():
    torch.manual_seed(0)
    block = STAM(16, (3, 2), inner=8).eval()
    _randomise_bn(block)
    x = torch.randn(2, 4, 16, 3, 2)
    with torch.no_grad():
        out = block(x)
        assert torch.allclose(out, block(x[:, [2, 0, 3, 1]]), atol=1e-5)
        changed = x.clone()
        changed[:, 3] = torch.randn(2, 16, 3, 2)
        assert not torch.allclose(out, block(changed), atol=1e-3)


def test_stam_size_matches_psta():
    """PSTA's STAM at C = 1024 (mid 256, relation width 128, 16 x 8 maps): the
    parameter count of the authors' module, layer for layer."""
    block = STAM(1024, (16, 8), inner=128, mid=256)
    assert sum(p.numel() for p in block.parameters()) == 2_630_020
    agg = PyramidAggregation(1024, levels=3, reduction=8, map_size=(16, 8))
    assert sum(p.numel() for p in agg.parameters()) == 3 * 2_630_020


def test_stam_runs_on_maps_of_another_size():
    torch.manual_seed(0)
    block = STAM(16, (4, 2), inner=8).eval()
    with torch.no_grad():
        built = block.spatial.relation(torch.randn(3, 8, 4, 2), 4, 2)
        assert built.shape == (3, 8, 4, 2)                       # identity at the built size
        for h, w in [(8, 4), (2, 1), (3, 5)]:
            assert block(torch.randn(2, 2, 16, h, w)).shape == (2, 16, h, w)
    with pytest.raises(EvreidError, match="group"):
        block(torch.randn(2, 1, 16, 4, 2))


def test_pyramid_shapes_for_any_size_and_length():
    torch.manual_seed(0)
    agg = PyramidAggregation(16, levels=3, reduction=4, map_size=(4, 2))
    for T, h, w in [(8, 4, 2), (4, 3, 5), (6, 1, 1)]:
        x = torch.randn(2, T, 16, h, w)
        assert [o.shape for o in agg(x)] == [(2, 16)] * 3
        assert [o.shape for o in agg(x, torch.randn_like(x))] == [(2, 16)] * 3


def test_temporal_average_pooling_and_builder():
    x = torch.randn(2, 4, 8, 3, 2)
    (out,) = TemporalAveragePooling()(x)
    assert torch.allclose(out, x.mean(dim=(1, 3, 4)))
    e = torch.randn_like(x)
    (both,) = TemporalAveragePooling()(x, e)
    assert torch.allclose(both, torch.cat([x, e], 1).mean(dim=(1, 3, 4)), atol=1e-6)
    assert build_aggregation("tap", 8).num_outputs == 1
    assert build_aggregation("pyramid", 8, levels=2, map_size=(2, 2)).num_outputs == 2
    with pytest.raises(EvreidError, match="pyramid, tap"):
        build_aggregation("lstm", 8)
    with pytest.raises(EvreidError, match="LEVELS"):
        PyramidAggregation(8, levels=0)
