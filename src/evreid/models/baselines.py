"""Baselines of the SDCL paper (Tables 1-2), built from the same parts.

- ``frames_only``: the frame branch alone (ResNet, reduction, pyramid, heads);
  this is the PSTA-like base the paper starts from. Ignores ``events``.
- ``events_only``: the event branch alone (spiking encoder, deformable
  mappings, event head, pyramid, heads).
- ``fusion_concat`` / ``fusion_add`` / ``fusion_attention``: both branches,
  with SDCL's cross feature alignment at the low stage replaced by
  concatenation + 1x1 conv, addition of 1x1-projected features, or plain
  (non-deformable) multi-head cross attention. Everything else is SDCL's,
  the pyramid with events in its first level included (Table 2 varies the
  cross feature alignment only).

The event side is a voxel [N, Z, C, h, w] (Z = bins): the frame side reads
its mean over the bins (the frame spans the whole interval), every bin reads
the frame map, as the cross alignment does. A 2-D event map [N, C, h, w]
works too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evreid.config import CfgNode
from evreid.models.sdcl import SDCL, build_sdcl_model

__all__ = ["ConcatFusion", "AddFusion", "AttentionFusion", "frames_only", "events_only",
           "fusion_concat", "fusion_add", "fusion_attention"]


def _resize(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _bins(e: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A voxel [N, Z, C, h, w] as Z maps per sample [N*Z, C, h, w] (a map: Z = 1)."""
    return (e.flatten(0, 1), e.shape[1]) if e.dim() == 5 else (e, 1)


def _frame_view(e: torch.Tensor) -> torch.Tensor:
    """What a frame sees of the event side: the mean over the bins."""
    return e.mean(1) if e.dim() == 5 else e


def _per_bin(f: torch.Tensor, z: int) -> torch.Tensor:
    """The frame map repeated for each of z bins: [N*z, C, h, w]."""
    return f if z == 1 else f.unsqueeze(1).expand(-1, z, -1, -1, -1).flatten(0, 1)


def _proj(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class ConcatFusion(nn.Module):
    """F' = ReLU(BN(conv1x1([F, E]))), E' = ReLU(BN(conv1x1([E, F])))."""

    def __init__(self, cf: int, ce: int) -> None:
        super().__init__()
        self.to_f = _proj(cf + ce, cf)
        self.to_e = _proj(ce + cf, ce)

    def forward(self, f: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ef, z = _bins(e)
        f_new = F.relu(self.to_f(torch.cat([f, _resize(_frame_view(e), f)], 1)))
        e_new = F.relu(self.to_e(torch.cat([ef, _resize(_per_bin(f, z), ef)], 1)))
        return f_new, e_new.view_as(e)


class AddFusion(nn.Module):
    """F' = F + BN(conv1x1(E)), E' = E + BN(conv1x1(F))."""

    def __init__(self, cf: int, ce: int) -> None:
        super().__init__()
        self.e_to_f = _proj(ce, cf)
        self.f_to_e = _proj(cf, ce)

    def forward(self, f: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ef, z = _bins(e)
        f_new = f + _resize(self.e_to_f(_frame_view(e)), f)
        # the projection of F once, shared by every bin
        e_new = ef + _per_bin(_resize(self.f_to_e(f), _frame_view(e)), z)
        return f_new, e_new.view_as(e)


class _CrossAttention(nn.Module):
    """Multi-head attention from every query position to the other map, whose
    keys/values are average-pooled by ``pool`` (full-resolution keys at the
    low stage would cost (hw)^2 per frame). Written with
    ``scaled_dot_product_attention`` so FLOP counters see every product."""

    def __init__(self, cq: int, cv: int, dim: int, heads: int, pool: int = 4) -> None:
        super().__init__()
        self.q = nn.Linear(cq, dim)
        self.kv = nn.Linear(cv, 2 * dim)
        self.out = nn.Linear(dim, cq)
        self.heads, self.pool = heads, pool

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x [N, C, h, w] attends to y [N, C', hv, wv] or to every bin of a
        voxel y [N, Z, C', hv, wv] (keys of all bins)."""
        N, C, h, w = x.shape
        hv, wv = y.shape[-2:]
        yf, z = _bins(y)
        yf = F.adaptive_avg_pool2d(yf, (max(1, hv // self.pool), max(1, wv // self.pool)))
        tokens = yf.flatten(2).transpose(1, 2).reshape(N, -1, yf.shape[1])   # [N, Z*L, C']
        q = self.q(x.flatten(2).transpose(1, 2))                          # [N, hw, D]
        k, v = self.kv(tokens).chunk(2, dim=-1)                           # [N, Z*L, D]

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)      # [N, M, *, D/M]

        mixed = F.scaled_dot_product_attention(split(q), split(k), split(v))
        mixed = mixed.transpose(1, 2).flatten(2)                          # [N, hw, D]
        return x + self.out(mixed).transpose(1, 2).reshape(N, C, h, w)


class AttentionFusion(nn.Module):
    """F' = F + Attn(F -> E), E' = E + Attn(E -> F) (global cross attention)."""

    def __init__(self, cf: int, ce: int, dim: int = 64, heads: int = 8) -> None:
        super().__init__()
        self.e2f = _CrossAttention(cf, ce, dim, heads)
        self.f2e = _CrossAttention(ce, cf, dim, heads)

    def forward(self, f: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ef, z = _bins(e)
        # every bin of the voxel queries the frame map on its own
        return self.e2f(f, e), self.f2e(ef, _per_bin(f, z)).view_as(e)


def frames_only(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, events=False, arch="frames_only")


def events_only(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, frames=False, arch="events_only")


def fusion_concat(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, arch="fusion_concat",
                            fusion=lambda cf, ce, c: ConcatFusion(cf, ce))


def fusion_add(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, arch="fusion_add",
                            fusion=lambda cf, ce, c: AddFusion(cf, ce))


def fusion_attention(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(
        cfg, num_classes, arch="fusion_attention",
        fusion=lambda cf, ce, c: AttentionFusion(cf, ce, c.MODEL.ALIGN.EMBED_DIM,
                                                 c.MODEL.ALIGN.HEADS))
