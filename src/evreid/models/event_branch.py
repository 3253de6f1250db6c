"""SDCL's event branch (§3.3): spiking encoder, then sparse event deformable mappings,
with the time axis kept.

    events [B, T, bins, 2, H, W]
      -> spiking encoder over the T x bins steps  -> spikes [T*bins, B, Cs, H/4, W/4]
      -> per step: sparse event deformable mappings, key events = where the
         last spiking layer fired (any channel) at that step
      -> voxel features [B*T, Z=bins, Cd, H/4, W/4]  (zero where no key event)

Reading of §3.3 / Fig. 2-4 (the paper leaves it open):

- the mappings are not spiking. The paragraph that introduces them cites the
  hybrid SNN-CNN of [29] as the remedy for vanishing spikes, and Fig. 4(c)
  shows mapping outputs keeping the spatial information that deeper spiking
  layers lose; a LIF after each mapping would bring the vanishing back. So
  each mapping is a real-valued deformable conv + BatchNorm + ReLU, run on
  the spike maps of every time step;
- "key events" at the mapping's resolution are the positions where the last
  spiking layer fired in that step: the events as the network sees them at
  stride 4, per bin, not a pooled "any event in the cell" mask;
- the time axis is kept (Eq. 12 places P_i in the voxel (x, y, z)): one map
  per frame and bin, z = bin, handed to the cross alignment as a voxel.
"""

from __future__ import annotations

import torch
from torch import nn

from evreid.config import CfgNode
from evreid.errors import EvreidError
from evreid.models.deform import EventDeformStack
from evreid.models.snn import SpikingEncoder

__all__ = ["EventBranch", "build_event_branch"]


class EventBranch(nn.Module):
    """``forward(events [B, T, bins, 2, H, W]) -> voxel [B*T, bins, C, H/4, W/4]``."""

    def __init__(self, encoder: SpikingEncoder, mappings: EventDeformStack) -> None:
        super().__init__()
        self.encoder = encoder
        self.mappings = mappings
        self.out_channels = mappings.out_channels
        self.last_key_fraction: torch.Tensor | None = None

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        if events.dim() != 6 or events.shape[3] != 2:
            raise EvreidError(f"events must be [B, T, bins, 2, H, W]; got {tuple(events.shape)}")
        B, T, bins = events.shape[:3]
        spikes = self.encoder.forward_spikes(events)                 # [S, B, C, h, w]
        S, _, C, h, w = spikes.shape
        # key events of each step: where any channel of the last layer fired
        active = spikes.detach().amax(2).transpose(0, 1).reshape(B * S, h, w) > 0
        self.last_key_fraction = active.float().mean()              # detached, no sync
        rows = spikes.permute(1, 0, 3, 4, 2).reshape(B * S * h * w, C)  # (b, t, z, y, x) rows
        out = self.mappings.forward_rows(rows, active)
        return out.view(B * T, bins, h, w, -1).permute(0, 1, 4, 2, 3).contiguous()

    def firing_rates(self) -> dict[str, float]:
        """Mean spike rate of each spiking layer in the last forward."""
        return self.encoder.firing_rates()

    def synops(self) -> float:
        """Synaptic operations of the spiking layers in the last forward."""
        return self.encoder.synops()

    def key_fraction(self) -> float:
        """Fraction of positions (over steps) that were key events in the last forward."""
        return float(self.last_key_fraction) if self.last_key_fraction is not None else 0.0


def build_event_branch(m: CfgNode) -> EventBranch:
    """The event branch from ``cfg.MODEL`` (keys MODEL.SNN and MODEL.DEFORM)."""
    s, d = m.SNN, m.DEFORM
    encoder = SpikingEncoder(layers=s.LAYERS, width=s.WIDTH, decay=s.DECAY,
                             threshold=s.THRESHOLD, surrogate=s.SURROGATE, alpha=s.ALPHA,
                             detach_reset=s.DETACH_RESET)
    mappings = EventDeformStack(encoder.out_channels, d.CHANNELS, num=d.MAPPINGS,
                                radius=d.RADIUS)
    return EventBranch(encoder, mappings)
