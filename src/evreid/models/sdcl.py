"""SDCL: Sparse-Dense Complementary Learning (CVPR 2023), assembled.

Data path (B clips of T frames, events binned ``bins`` times per frame)::

  frames [B,T,3,H,W] -> ResNet stem..layer1 ---------------> F  [BT, C1, H/4, W/4]
  events [B,T,bins,2,H,W] -> spiking encoder (T*bins steps)
           -> per-frame spike rates -> event deformable mappings -> E [BT, Cd, H/4, W/4]
  (F, E) -> fusion at the low stage (SDCL: E2F and F2E cross alignment)
  F -> ResNet layer2..layer4 -> 1x1 reduction to FEAT_DIM --+
  E -> event head (two stride-2 3x3 convs, 1x1 to FEAT_DIM) -+-> sum -> [B, T, D, h, w]
  -> pyramid aggregation (f1, mean(f1,f2), mean(f1,f2,f3)) -> BNNeck per level

Design choices the paper leaves open, made here:
- the deformable mappings run on per-frame spike rates (spikes averaged over
  the bins of each frame interval), so they cost T, not T*bins, passes;
- their event mask is "any event in the cell" of the event tensor max-pooled
  to the mapping's resolution;
- after fusion both branches continue and meet by summation before the
  aggregation (the event map is average-pooled to the frame map's size when
  they differ, e.g. with last stride 2).

Baselines (``baselines.py``) are this class with a branch removed or another
fusion module; ``model.uses_events`` says whether ``events`` are required.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from evreid.config import CfgNode
from evreid.errors import EvreidError
from evreid.models.aggregation import build_aggregation
from evreid.models.alignment import CrossAlignment, homography_matrix
from evreid.models.deform import EventDeformStack
from evreid.models.heads import MultiLevelHeads
from evreid.models.resnet import ResNet, build_resnet
from evreid.models.snn import SpikingEncoder

__all__ = ["SDCL", "BidirectionalAlignment", "FusionFactory", "build_sdcl_model",
           "sdcl", "sdcl_e2f_only", "sdcl_f2e_only", "event_activity_mask"]

# (frame channels, event channels, cfg) -> module mapping (F, E) -> (F', E')
FusionFactory = Callable[[int, int, CfgNode], nn.Module]


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def event_activity_mask(events: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, T, bins, 2, H, W] -> bool [B*T, h, w]: any event inside each cell."""
    counts = events.detach().abs().sum(dim=(2, 3)).flatten(0, 1)   # [BT, H, W]
    # a mean of non-negative counts is positive iff one of them is; cheaper than max
    return F.adaptive_avg_pool2d(counts.unsqueeze(1), size).squeeze(1) > 0


class BidirectionalAlignment(nn.Module):
    """SDCL fusion: F' = E2F(F, E), E' = F2E(E, F); either direction may be off.

    Both directions read the inputs before either update (symmetric).
    """

    def __init__(self, e2f: CrossAlignment | None, f2e: CrossAlignment | None) -> None:
        super().__init__()
        self.e2f, self.f2e = e2f, f2e

    def forward(self, f: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f_new = self.e2f(f, e) if self.e2f is not None else f
        e_new = self.f2e(e, f) if self.f2e is not None else e
        return f_new, e_new


class SDCL(nn.Module):
    """The SDCL family: ``model(frames, events)`` (see the module docstring)."""

    def __init__(self, *, backbone: ResNet | None, frame_reduce: nn.Module | None,
                 event_encoder: SpikingEncoder | None, event_mappings: EventDeformStack | None,
                 event_head: nn.Module | None, fusion: nn.Module | None,
                 aggregation: nn.Module, heads: MultiLevelHeads, arch: str = "sdcl") -> None:
        super().__init__()
        if backbone is None and event_encoder is None:
            raise EvreidError("a model needs a frame branch, an event branch or both")
        self.arch = arch
        self.backbone = backbone
        self.frame_reduce = frame_reduce
        self.event_encoder = event_encoder
        self.event_mappings = event_mappings
        self.event_head = event_head
        self.fusion = fusion
        self.aggregation = aggregation
        self.heads = heads

    @property
    def uses_events(self) -> bool:
        return self.event_encoder is not None

    @property
    def uses_frames(self) -> bool:
        return self.backbone is not None

    def _check_inputs(self, frames: torch.Tensor | None,
                      events: torch.Tensor | None) -> tuple[int, int]:
        ref = frames if frames is not None else events
        if ref is None:
            raise EvreidError(f"{self.arch}: no input given")
        B, T = ref.shape[:2]
        if self.uses_frames and (frames is None or frames.dim() != 5 or frames.shape[2] != 3):
            got = None if frames is None else tuple(frames.shape)
            raise EvreidError(f"{self.arch}: frames must be [B, T, 3, H, W]; got {got}")
        if self.uses_events:
            if events is None:
                raise EvreidError(f"{self.arch} needs events [B, T, bins, 2, H, W]; got None "
                                  "(use MODEL.ARCH frames_only for frames alone)")
            if events.dim() != 6 or events.shape[:2] != (B, T) or events.shape[3] != 2:
                raise EvreidError(f"{self.arch}: events must be [B={B}, T={T}, bins, 2, H, W]; "
                                  f"got {tuple(events.shape)}")
        return B, T

    def forward_maps(self, frames: torch.Tensor | None,
                     events: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame fused maps [B, T, D, h, w] (before temporal aggregation)."""
        B, T = self._check_inputs(frames, events)
        f = e = None
        if self.backbone is not None:
            f = self.backbone.forward_stages(frames.flatten(0, 1), "stem", "layer1")
        if self.event_encoder is not None:
            rates = self.event_encoder(events)
            active = event_activity_mask(events, tuple(rates.shape[-2:]))
            e = self.event_mappings(rates, active)
        if self.fusion is not None:
            f, e = self.fusion(f, e)
        out = None
        if f is not None:
            out = self.frame_reduce(self.backbone.forward_stages(f, "layer2", "layer4"))
        if e is not None:
            e = self.event_head(e)
            if out is not None:
                if e.shape[-2:] != out.shape[-2:]:
                    e = F.adaptive_avg_pool2d(e, out.shape[-2:])
                out = out + e
            else:
                out = e
        return out.unflatten(0, (B, T))

    def forward(self, frames: torch.Tensor | None, events: torch.Tensor | None = None):
        """Train: (logits per level, features per level before BNNeck). Eval: [B, D]."""
        return self.heads(self.aggregation(self.forward_maps(frames, events)))

    def firing_rates(self) -> dict[str, float]:
        """Mean spike rate of each spiking layer in the last forward ({} without events)."""
        return self.event_encoder.firing_rates() if self.event_encoder is not None else {}

    def synops(self) -> float:
        """Synaptic operations of the spiking layers in the last forward."""
        return self.event_encoder.synops() if self.event_encoder is not None else 0.0


def _sdcl_fusion(e2f: bool, f2e: bool) -> FusionFactory:
    def factory(cf: int, ce: int, cfg: CfgNode) -> nn.Module:
        a = cfg.MODEL.ALIGN
        h_e2f = homography_matrix(a.HOMOGRAPHY)          # event -> frame, normalised coords
        kw = dict(embed_dim=a.EMBED_DIM, heads=a.HEADS, points=a.POINTS, hidden=a.HIDDEN)
        return BidirectionalAlignment(
            CrossAlignment(cf, ce, homography=torch.linalg.inv(h_e2f), **kw) if e2f else None,
            CrossAlignment(ce, cf, homography=h_e2f, **kw) if f2e else None)
    return factory


def build_sdcl_model(cfg: CfgNode, num_classes: int, *, frames: bool = True,
                     events: bool = True, fusion: FusionFactory | None = None,
                     arch: str = "sdcl") -> SDCL:
    """Assemble one member of the family from ``cfg.MODEL``."""
    m = cfg.MODEL
    if m.NECK != "bnneck":
        raise EvreidError(f"unknown MODEL.NECK {m.NECK!r}; valid: bnneck")
    dim = int(m.FEAT_DIM)
    backbone = frame_reduce = encoder = mappings = head = fuse = None
    if frames:
        backbone = build_resnet(m.BACKBONE, last_stride=m.LAST_STRIDE, width_mult=m.WIDTH_MULT)
        frame_reduce = _conv_bn_relu(backbone.out_channels, dim, 1)
    if events:
        s, d = m.SNN, m.DEFORM
        encoder = SpikingEncoder(layers=s.LAYERS, width=s.WIDTH, decay=s.DECAY,
                                 threshold=s.THRESHOLD, surrogate=s.SURROGATE, alpha=s.ALPHA,
                                 detach_reset=s.DETACH_RESET)
        mappings = EventDeformStack(encoder.out_channels, d.CHANNELS, num=d.MAPPINGS,
                                    radius=d.RADIUS)
        c = d.CHANNELS
        # two stride-2 convs bring the stride-4 event map to the frame branch's stride 16
        head = nn.Sequential(_conv_bn_relu(c, 2 * c, 3, 2), _conv_bn_relu(2 * c, 4 * c, 3, 2),
                             _conv_bn_relu(4 * c, dim, 1))
    if fusion is not None:
        if not (frames and events):
            raise EvreidError(f"{arch}: a fusion module needs both branches")
        fuse = fusion(backbone.stage_channels["layer1"], mappings.out_channels, cfg)
    aggregation = build_aggregation(m.AGG.MODE, dim, levels=m.AGG.LEVELS,
                                    reduction=m.AGG.REDUCTION)
    heads = MultiLevelHeads(dim, num_classes, aggregation.num_outputs)
    return SDCL(backbone=backbone, frame_reduce=frame_reduce, event_encoder=encoder,
                event_mappings=mappings, event_head=head, fusion=fuse, aggregation=aggregation,
                heads=heads, arch=arch)


def sdcl(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, fusion=_sdcl_fusion(True, True), arch="sdcl")


def sdcl_e2f_only(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, fusion=_sdcl_fusion(True, False),
                            arch="sdcl_e2f_only")


def sdcl_f2e_only(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, fusion=_sdcl_fusion(False, True),
                            arch="sdcl_f2e_only")
