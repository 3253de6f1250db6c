"""Cross feature alignment (SDCL's E2F and F2E): deformable cross-modal attention.

For every position i of the query modality's map (frames for E2F, events for
F2E):

- query ``Q_i = X_i * P_i``: the query feature times the other modality's
  feature at the same place (read at the reference point R_i), projected by
  a 1x1 conv to the query width;
- reference point ``R_i``: the position mapped into the other modality's
  image by a 3x3 homography (identity for pixel-aligned simulated events);
- a linear layer predicts, for each of M heads and I points, an offset dR (in
  pixels of the other modality's map); an MLP on Q gives scores, softmaxed
  over the I points of each head;
- output ``sum_m W_m [sum_i score_mi * W'_m Y(R_i + dR_mi)]`` where Y is the
  other modality's map, sampled bilinearly (zeros outside), W' the value
  projection (1x1) and W the output projection; added residually to X.

Coordinates are normalised to [0, 1] (x right, y down, pixel centres at
(j + 0.5) / width), so both maps may have any, and different, sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError

__all__ = ["CrossAlignment", "homography_matrix", "reference_points"]


def homography_matrix(values: Sequence[float] | None) -> torch.Tensor:
    """A 3x3 homography from a 9-list (row-major) or None (identity)."""
    if values is None or len(values) == 0:
        return torch.eye(3)
    if len(values) != 9:
        raise EvreidError(f"MODEL.ALIGN.HOMOGRAPHY must hold 9 numbers (row-major 3x3); "
                          f"got {len(values)}")
    mat = torch.tensor([float(v) for v in values], dtype=torch.float64).view(3, 3)
    if abs(float(torch.linalg.det(mat))) < 1e-12:
        raise EvreidError(f"MODEL.ALIGN.HOMOGRAPHY is singular: {list(values)}")
    return mat.float()


def reference_points(h: int, w: int, homography: torch.Tensor,
                     device: torch.device | None = None) -> torch.Tensor:
    """Normalised (x, y) of every pixel centre of an h x w map, mapped by
    ``homography``: [h*w, 2]."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.ones(h * w, device=device)], 1)
    mapped = pts @ homography.to(device=device, dtype=torch.float32).T
    return mapped[:, :2] / mapped[:, 2:3]


def _softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over a short last dimension (the I points).

    Written out because torch's CPU softmax kernel is slow for rows of 4
    (about 2x slower forward + backward here); same values.
    """
    e = (x - x.amax(-1, keepdim=True).detach()).exp()
    return e / e.sum(-1, keepdim=True)


class CrossAlignment(nn.Module):
    """Align the query modality's features with the other's: ``forward(x, y) -> x'``.

    ``homography`` maps normalised query coordinates to normalised coordinates
    of the other modality (E2F: frame -> event, the inverse of the configured
    event -> frame matrix; F2E: event -> frame).
    """

    def __init__(self, query_channels: int, other_channels: int, embed_dim: int = 64,
                 heads: int = 8, points: int = 4, hidden: int = 64,
                 homography: torch.Tensor | None = None) -> None:
        super().__init__()
        if embed_dim % heads:
            raise EvreidError(f"MODEL.ALIGN.EMBED_DIM ({embed_dim}) must be a multiple of "
                              f"MODEL.ALIGN.HEADS ({heads})")
        self.heads, self.points, self.embed_dim = heads, points, embed_dim
        self.other_proj = nn.Conv2d(other_channels, query_channels, 1)
        self.sampling_offsets = nn.Linear(query_channels, heads * points * 2)
        self.attention = nn.Sequential(nn.Linear(query_channels, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, heads * points))
        self.value_proj = nn.Conv2d(other_channels, embed_dim, 1)
        self.output_proj = nn.Linear(embed_dim, query_channels)
        homography = torch.eye(3) if homography is None else homography.float()
        self.register_buffer("homography", homography, persistent=False)
        self._identity = bool(torch.equal(homography, torch.eye(3)))
        self._init_offsets()

    def _init_offsets(self) -> None:
        # deformable-DETR style start: offsets independent of the query, heads
        # looking in evenly spread directions, point i at distance i + 1 pixels
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.heads, dtype=torch.float32) * (2 * math.pi / self.heads)
        dirs = torch.stack([angles.cos(), angles.sin()], -1)
        dirs = dirs / dirs.abs().max(-1, keepdim=True).values
        grid = dirs.view(self.heads, 1, 2).repeat(1, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        N, _, h, w = x.shape
        hv, wv = y.shape[-2:]
        M, I, D = self.heads, self.points, self.embed_dim
        ref = reference_points(h, w, self.homography, x.device)            # [hw, 2] (x, y)
        # the other modality's feature "at the same place" is read at the
        # reference point, so sizes may differ and the homography is honoured
        proj = self.other_proj(y)
        if not (self._identity and (hv, wv) == (h, w)):
            # (with the identity and equal sizes the reference is the pixel itself)
            centre = (2 * ref - 1).to(proj.dtype).view(1, h, w, 2).expand(N, -1, -1, -1)
            proj = F.grid_sample(proj, centre, mode="bilinear", padding_mode="zeros",
                                 align_corners=False)
        q = (x * proj).flatten(2).transpose(1, 2)                          # [N, hw, Cq]
        scale = torch.tensor([wv, hv], device=x.device, dtype=q.dtype)
        off = self.sampling_offsets(q).view(N, h * w, M, I, 2) / scale
        loc = ref.view(1, h * w, 1, 1, 2) + off                            # [N, hw, M, I, 2]
        scores = _softmax_last(self.attention(q).view(N, h * w, M, I))
        value = self.value_proj(y).reshape(N * M, D // M, hv, wv)
        grid = (2 * loc - 1).permute(0, 2, 1, 3, 4).reshape(N * M, h * w, I, 2)
        sampled = F.grid_sample(value, grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)                       # [N*M, D/M, hw, I]
        weights = scores.permute(0, 2, 1, 3).reshape(N * M, 1, h * w, I)
        mixed = (sampled * weights).sum(-1).view(N, D, h * w).transpose(1, 2)   # [N, hw, D]
        out = self.output_proj(mixed).transpose(1, 2).reshape(N, -1, h, w)
        return x + out
