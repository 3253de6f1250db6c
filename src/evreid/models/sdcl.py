"""SDCL: Sparse-Dense Complementary Learning (CVPR 2023), assembled.

Data path (B clips of T frames, events binned ``bins`` times per frame)::

  frames [B,T,3,H,W] -> ResNet stem..layer1 ---------------> F  [BT, C1, H/4, W/4]
  events [B,T,bins,2,H,W] -> event branch (event_branch.py: spiking encoder over
           T*bins steps, sparse event deformable mappings) -> E [BT, bins, Cd, H/4, W/4]
  (F, E) -> fusion at the low stage (SDCL: E2F and F2E cross alignment, the
           voxel's bins as its z axis)
  F -> ResNet layer2..layer4 -> 1x1 reduction to FEAT_DIM ---> frame maps [B,T,D,h,w]
  E -> conv to the frame maps' size (EventToFrame, bins
       folded into channels) --------------------------------> event maps [B,T,D,h,w]
  pyramid (STAM): level 1 fuses {F_t, E_t, F_t+1, E_t+1}, then pairs
  -> f1, mean(f1,f2), mean(f1,f2,f3) -> BNNeck per level

§3.5: "We first utilize a convolutional layer to transform the event voxel
with the same size as frame features. Then, the adjacent frame features and
event features will be fed into feature fusion block (FFB)". Events and
frames therefore meet inside the first STAM level, not by a sum before it
(docs/PAPER_MAP.md lists this and every other reading).

Design choices the paper leaves open, made here (the event branch's own
readings are in event_branch.py):
- the conv that sizes the event features is a depthwise patch conv (kernel =
  stride = the stride ratio, 4 with last stride 1) and a 1x1 projection to
  FEAT_DIM: it keeps where in each cell the events were at ~25 MMACs per
  frame (two 3x3 stride-2 convs would cost ~4x more; the budget is 15 % of
  the frames-only model for the whole event side).

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
from evreid.models.event_branch import EventBranch, build_event_branch
from evreid.models.heads import MultiLevelHeads
from evreid.models.resnet import ResNet, build_resnet, feature_map_size

__all__ = ["SDCL", "BidirectionalAlignment", "EventToFrame", "FusionFactory",
           "build_sdcl_model", "sdcl", "sdcl_e2f_only", "sdcl_f2e_only"]

# (frame channels, event channels, cfg) -> module mapping (F, E) -> (F', E')
FusionFactory = Callable[[int, int, CfgNode], nn.Module]


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EventToFrame(nn.Module):
    """Event features [N, C, he, we] (or a voxel [N, Z, C, he, we], Z folded into
    the channels) -> [N, D, h, w], the frame maps' size.

    A depthwise conv with kernel = stride = ``stride`` (each cell of the event
    map becomes one position, weighting where in the cell the events are),
    then a 1x1 projection with BN + ReLU. The input is zero-padded to a
    multiple of the stride (the frame branch rounds up the same way); any
    size left different is average-pooled onto ``size``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride < 1:
            raise EvreidError(f"EventToFrame: stride must be >= 1; got {stride}")
        self.stride = int(stride)
        self.patch = nn.Conv2d(in_channels, in_channels, self.stride, stride=self.stride,
                               groups=in_channels, bias=False)
        self.project = _conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if x.dim() == 5:
            x = x.flatten(1, 2)
        s = self.stride
        pad_h, pad_w = -x.shape[-2] % s, -x.shape[-1] % s
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = self.project(self.patch(x))
        if tuple(out.shape[-2:]) != tuple(size):
            out = F.adaptive_avg_pool2d(out, size)
        return out


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
                 event_branch: EventBranch | None, event_head: EventToFrame | None,
                 fusion: nn.Module | None,
                 aggregation: nn.Module, heads: MultiLevelHeads, arch: str = "sdcl",
                 last_stride: int = 1, bins: int = 3) -> None:
        super().__init__()
        if backbone is None and event_branch is None:
            raise EvreidError("a model needs a frame branch, an event branch or both")
        self.arch = arch
        self.backbone = backbone
        self.frame_reduce = frame_reduce
        self.event_branch = event_branch
        self.event_head = event_head
        self.fusion = fusion
        self.aggregation = aggregation
        self.heads = heads
        # events-only models size their event maps as the frame branch would
        self.last_stride = int(last_stride)
        self.bins = int(bins)                  # the event head is built for this many

    @property
    def uses_events(self) -> bool:
        return self.event_branch is not None

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
            if (events.dim() != 6 or events.shape[:2] != (B, T) or events.shape[3] != 2
                    or events.shape[2] != self.bins):
                raise EvreidError(f"{self.arch}: events must be [B={B}, T={T}, "
                                  f"bins={self.bins} (EVENTS.BINS), 2, H, W]; "
                                  f"got {tuple(events.shape)}")
        return B, T

    def forward_branches(self, frames: torch.Tensor | None, events: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(maps, event_maps), each [B, T, D, h, w]: what enters the pyramid.

        ``maps`` are the frame maps (the event maps for events-only models);
        ``event_maps`` sit next to them in the first fusion level (None
        unless the model has both branches).
        """
        B, T = self._check_inputs(frames, events)
        f = e = None
        if self.backbone is not None:
            f = self.backbone.forward_stages(frames.flatten(0, 1), "stem", "layer1")
        if self.event_branch is not None:
            e = self.event_branch(events)                           # [BT, bins, Cd, h, w]
        if self.fusion is not None:
            f, e = self.fusion(f, e)
        if f is not None:
            f = self.frame_reduce(self.backbone.forward_stages(f, "layer2", "layer4"))
        if e is not None:
            size = tuple(f.shape[-2:]) if f is not None else self._event_map_size(frames, events)
            e = self.event_head(e, size).unflatten(0, (B, T))
        if f is None:
            return e, None
        return f.unflatten(0, (B, T)), e

    def _event_map_size(self, frames: torch.Tensor | None,
                        events: torch.Tensor) -> tuple[int, int]:
        # the size the frame branch would give this input (events-only models)
        return feature_map_size(*events.shape[-2:], last_stride=self.last_stride)

    def forward_maps(self, frames: torch.Tensor | None,
                     events: torch.Tensor | None = None) -> torch.Tensor:
        """The main per-frame maps [B, T, D, h, w] (frames, or events for
        events-only models), after the low-stage fusion."""
        return self.forward_branches(frames, events)[0]

    def forward(self, frames: torch.Tensor | None, events: torch.Tensor | None = None):
        """Train: (logits per level, features per level before BNNeck). Eval: [B, D]."""
        return self.heads(self.aggregation(*self.forward_branches(frames, events)))

    def firing_rates(self) -> dict[str, float]:
        """Mean spike rate of each spiking layer in the last forward ({} without events)."""
        return self.event_branch.firing_rates() if self.event_branch is not None else {}

    def synops(self) -> float:
        """Synaptic operations of the spiking layers in the last forward."""
        return self.event_branch.synops() if self.event_branch is not None else 0.0


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
    backbone = frame_reduce = branch = head = fuse = None
    if frames:
        backbone = build_resnet(m.BACKBONE, last_stride=m.LAST_STRIDE, width_mult=m.WIDTH_MULT)
        frame_reduce = _conv_bn_relu(backbone.out_channels, dim, 1)
    if events:
        branch = build_event_branch(m)
        bins = int(cfg.EVENTS.BINS)
        # the event voxel is at stride 4 (layer1's); the frame maps at 16 or 32
        head = EventToFrame(bins * branch.out_channels, dim, 4 if m.LAST_STRIDE == 1 else 8)
    if fusion is not None:
        if not (frames and events):
            raise EvreidError(f"{arch}: a fusion module needs both branches")
        fuse = fusion(backbone.stage_channels["layer1"], branch.out_channels, cfg)
    height, width = cfg.INPUT.SIZE_TRAIN
    aggregation = build_aggregation(m.AGG.MODE, dim, levels=m.AGG.LEVELS,
                                    reduction=m.AGG.REDUCTION,
                                    map_size=feature_map_size(height, width, m.LAST_STRIDE))
    heads = MultiLevelHeads(dim, num_classes, aggregation.num_outputs)
    return SDCL(backbone=backbone, frame_reduce=frame_reduce, event_branch=branch,
                event_head=head, fusion=fuse, aggregation=aggregation, heads=heads, arch=arch,
                last_stride=m.LAST_STRIDE, bins=int(cfg.EVENTS.BINS))


def sdcl(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, fusion=_sdcl_fusion(True, True), arch="sdcl")


def sdcl_e2f_only(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, fusion=_sdcl_fusion(True, False),
                            arch="sdcl_e2f_only")


def sdcl_f2e_only(cfg: CfgNode, num_classes: int) -> SDCL:
    return build_sdcl_model(cfg, num_classes, fusion=_sdcl_fusion(False, True),
                            arch="sdcl_f2e_only")
