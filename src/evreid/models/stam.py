"""STAM, the spatial-temporal aggregation module of PSTA (Wang et al., ICCV 2021),
used by SDCL (§3.5) as its feature fusion block.

One STAM call fuses a *group* of k maps [N, k, C, h, w] into one [N, C, h, w]:

- temporal reference attention (TRA): every member is compared with its
  partners through pairwise relation (affinity) maps. For members i, j,
  ``G(i, j)[p, q] = <gamma(x_i)[p], beta(x_j)[q]>`` relates position p of
  map i to position q of map j; member i reads, at each of its positions,
  the relations towards all partner positions in both directions,
  ``[G(i, j)^T, G(j, i)]`` (2hw channels). Together with its own embedding
  and the partners' embedding this gives a spatial weight map alpha_i; a
  channel weight c_i comes from its pooled vector next to the partners'.
  TRA output: ``relu(sum_i c_i * alpha_i * x_i) ** 2``.
- spatial reference attention (SRA): every member's relation map with
  itself (``<a(x_i)[p], d(x_i)[q]>``, again in both directions) and its
  embedding give a spatial weight s_i, its pooled vector a channel weight
  a_i; SRA output: ``TRA + relu(sum_i a_i * s_i * x_i)``.
- a bottleneck (1x1 reduce, 3x3, 1x1 expand, each with BN + ReLU).

With k = 2 this is PSTA's STAM (the partners' mean is the one partner). SDCL
feeds k = 4 at the first pyramid level: two adjacent time steps, each with
its frame map and its event map. Every member is treated alike, so the block
is invariant to the order of a group.

The relation maps put the hw positions of the *other* map in the channel
axis, so the 1x1 convs reading them are built for one map size
(``map_size``, fixed by the input size and the backbone's stride, as in
PSTA). A map of another size still works: the partner-position axis of the
relation is average-pooled (or stretched) onto the built grid first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError

__all__ = ["STAM", "TemporalReferenceAttention", "SpatialReferenceAttention"]


def _conv_bn_relu(cin: int, cout: int, k: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _partner_mean(x: torch.Tensor) -> torch.Tensor:
    """[N, k, ...] -> for every member, the mean of the other k - 1 members."""
    k = x.shape[1]
    return (x.sum(1, keepdim=True) - x) / (k - 1)


class _Relation(nn.Module):
    """Relation rows read at each position of the query maps: [2 hw0, h, w] per
    member, where hw0 is the built grid (see the module docstring)."""

    def __init__(self, map_size: tuple[int, int]) -> None:
        super().__init__()
        self.map_size = (int(map_size[0]), int(map_size[1]))

    def forward(self, rel: torch.Tensor, h: int, w: int) -> torch.Tensor:
        # rel [M, hw (partner position, channels), h, w (own position)]
        if (h, w) == self.map_size:
            return rel
        M = rel.shape[0]
        rows = rel.view(M, h, w, h * w).permute(0, 3, 1, 2)        # partner grid last two
        rows = F.adaptive_avg_pool2d(rows, self.map_size)          # [M, hw, h0, w0]
        return rows.flatten(2).transpose(1, 2).reshape(M, -1, h, w)


class TemporalReferenceAttention(nn.Module):
    """``forward(x, vect, embed)``: x [N, k, C, h, w], vect [N, k, C] (pooled),
    embed [N, k, E, h, w] -> [N, C, h, w]."""

    def __init__(self, channels: int, inner: int, embed: int,
                 map_size: tuple[int, int]) -> None:
        super().__init__()
        hw = map_size[0] * map_size[1]
        self.gamma = nn.Sequential(*_conv_bn_relu(channels, inner))
        self.beta = nn.Sequential(*_conv_bn_relu(channels, inner))
        self.relation = _Relation(map_size)
        self.relation_embed = nn.Sequential(*_conv_bn_relu(2 * hw, embed))
        self.pair_embed = nn.Sequential(*_conv_bn_relu(2 * embed, embed))
        self.spatial = nn.Sequential(nn.Conv2d(2 * embed, 1, 1, bias=False),
                                     nn.BatchNorm2d(1), nn.Sigmoid())
        self.theta = nn.Linear(channels, inner, bias=False)
        self.channel = nn.Sequential(nn.Linear(2 * inner, inner), nn.ReLU(inplace=True),
                                     nn.Linear(inner, channels), nn.Sigmoid())
        _init(self)

    def forward(self, x: torch.Tensor, vect: torch.Tensor,
                embed: torch.Tensor) -> torch.Tensor:
        N, k, C, h, w = x.shape
        flat = x.flatten(0, 1)
        g = self.gamma(flat).view(N, k, -1, h * w)
        b = self.beta(flat).view(N, k, -1, h * w)
        # G[n, i, j, p, q] = <g_i[p], b_j[q]>: every ordered pair in one product
        rel = torch.einsum("nicp,njcq->nijpq", g, b)
        eye = torch.eye(k, dtype=rel.dtype, device=rel.device).view(1, k, k, 1, 1)
        rel = rel * (1 - eye)                                       # drop i == j
        # member i, channel = partner position, spatial = own position:
        # G(i, j)^T (i's gamma against j's beta) and G(j, i) (the reverse)
        towards = rel.sum(2).transpose(-1, -2) / (k - 1)            # mean_j G(i, j)^T
        back = rel.sum(1) / (k - 1)                                 # mean_j G(j, i)
        joint = torch.cat([towards, back], 2).reshape(N * k, 2 * h * w, h, w)
        joint = self.relation_embed(self.relation(
            joint.view(N * k, 2, h * w, h, w).flatten(0, 1), h, w).reshape(N * k, -1, h, w))
        own_partner = torch.cat([embed, _partner_mean(embed)], 2).flatten(0, 1)
        pair = self.pair_embed(own_partner)
        alpha = self.spatial(torch.cat([pair, joint], 1)).view(N, k, 1, h, w)
        theta = F.relu(self.theta(vect))                            # [N, k, inner]
        chan = self.channel(torch.cat([theta, _partner_mean(theta)], 2)).view(N, k, C, 1, 1)
        return F.relu((chan * alpha * x).sum(1)).square()


class SpatialReferenceAttention(nn.Module):
    """``forward(x, vect, embed, temporal)`` -> ``temporal + relu(sum_i a_i s_i x_i)``."""

    def __init__(self, channels: int, inner: int, embed: int,
                 map_size: tuple[int, int]) -> None:
        super().__init__()
        hw = map_size[0] * map_size[1]
        self.alpha = nn.Sequential(*_conv_bn_relu(channels, inner))
        self.delta = nn.Sequential(*_conv_bn_relu(channels, inner))
        self.relation = _Relation(map_size)
        self.relation_embed = nn.Sequential(*_conv_bn_relu(2 * hw, embed))
        self.spatial = nn.Sequential(*_conv_bn_relu(2 * embed, embed),
                                     nn.Conv2d(embed, 1, 1, bias=False), nn.BatchNorm2d(1),
                                     nn.Sigmoid())
        self.channel = nn.Sequential(nn.Linear(channels, inner), nn.ReLU(inplace=True),
                                     nn.Linear(inner, channels), nn.Sigmoid())
        _init(self)

    def forward(self, x: torch.Tensor, vect: torch.Tensor, embed: torch.Tensor,
                temporal: torch.Tensor) -> torch.Tensor:
        N, k, C, h, w = x.shape
        flat = x.flatten(0, 1)
        a = self.alpha(flat).flatten(2)                             # [Nk, inner, hw]
        d = self.delta(flat).flatten(2)
        rel = torch.bmm(a.transpose(1, 2), d)                       # [Nk, hw_p, hw_q]
        joint = torch.cat([rel.transpose(1, 2), rel], 1).view(N * k * 2, h * w, h, w)
        joint = self.relation_embed(self.relation(joint, h, w).reshape(N * k, -1, h, w))
        s = self.spatial(torch.cat([embed.flatten(0, 1), joint], 1)).view(N, k, 1, h, w)
        chan = self.channel(vect).view(N, k, C, 1, 1)
        return temporal + F.relu((chan * s * x).sum(1))


class STAM(nn.Module):
    """Fuse a group [N, k, C, h, w] (k >= 2) into one map [N, C, h, w].

    ``inner`` is the width of the relation embeddings (PSTA: C / 8 = 128),
    ``mid`` the bottleneck width (PSTA: 256), ``map_size`` the (h, w) the
    relation convs are built for (PSTA: 16 x 8).
    """

    def __init__(self, channels: int, map_size: tuple[int, int], inner: int | None = None,
                 mid: int | None = None) -> None:
        super().__init__()
        if channels < 1 or min(map_size) < 1:
            raise EvreidError(f"STAM needs channels >= 1 and a map size >= 1; got "
                              f"{channels}, {tuple(map_size)}")
        inner = inner or max(8, channels // 8)
        mid = mid or 2 * inner
        self.embedding = nn.Sequential(*_conv_bn_relu(channels, mid), *_conv_bn_relu(mid, inner))
        self.temporal = TemporalReferenceAttention(channels, inner, inner, map_size)
        self.spatial = SpatialReferenceAttention(channels, inner, inner, map_size)
        self.bottleneck = nn.Sequential(*_conv_bn_relu(channels, mid), *_conv_bn_relu(mid, mid, 3),
                                        *_conv_bn_relu(mid, channels))
        _init(self.embedding)
        _init(self.bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] < 2:
            raise EvreidError(f"STAM expects a group [N, k >= 2, C, h, w]; got {tuple(x.shape)}")
        N, k, C, h, w = x.shape
        vect = x.mean((3, 4))                                       # [N, k, C]
        embed = self.embedding(x.flatten(0, 1)).unflatten(0, (N, k))
        temporal = self.temporal(x, vect, embed)
        fused = self.spatial(x, vect, embed, temporal)
        return self.bottleneck(fused)
