"""Cross feature alignment (SDCL's E2F and F2E, §3.4 Eq. 12-13): deformable
cross-modal attention between a 2-D frame map and a 3-D event voxel.

Either side may be a 2-D map ``[N, C, h, w]`` or a voxel ``[N, Z, C, h, w]``
(z = the event bins of the frame interval). For every query position i
(x, y) or (x, y, z):

- reference point ``R_i`` (Eq. 12): (x, y) mapped into the other modality's
  image by a 3x3 homography (identity for pixel-aligned simulated events);
  z is the query's own bin centre ``(z + 0.5) / Z`` for a voxel query and the
  middle of the frame interval (0.5) for a frame query;
- query ``Q_i = X_i * P_i``: the query feature times the other modality's
  feature at the same place (projected by a 1x1 conv to the query width):
  read at (x, y) of R_i; from a voxel, for a frame query, the mean over its
  bins (the frame spans the whole interval), for a voxel query its own bin;
  a frame value serves every bin of a voxel query;
- a linear layer predicts, for each of M heads and I points, an offset dR =
  (dx, dy, dz): dx, dy in pixels of the other map, dz as a fraction of the
  frame interval (the voxel's depth); an MLP on Q gives scores, softmaxed
  over the I points of each head;
- output (Eq. 13) ``sum_m W_m [sum_i score_mi * W'_m Y(R_i + dR_mi)]``, Y the
  other modality sampled trilinearly from a voxel (5-D grid_sample: over
  bins as well as space) or bilinearly from a map (dz unused), zeros outside
  the image; z is clamped to the bin-centre range (no zero padding in time);
  W' the value projection (1x1), W the output projection; added residually.

Coordinates are normalised to [0, 1] (x right, y down, pixel centres at
(j + 0.5) / width, bin centres at (z + 0.5) / Z), so both sides may have any,
and different, sizes. Under autocast the sampling runs in the autocast dtype
(grid_sample is on autocast's fp32 list; here value and grid are cast). In
bf16 a normalised coordinate keeps 8 significant bits: pixel centres of
maps up to 128 wide are exact, a learned fractional offset is rounded to at
most 1/4 pixel on a 64-pixel side.
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


def _sample(value: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """grid_sample (bilinear / trilinear, zeros outside) in the autocast dtype when
    autocast is on (it would otherwise upcast both to fp32)."""
    dev = value.device.type
    if torch.is_autocast_enabled(dev):
        dt = torch.get_autocast_dtype(dev)
        with torch.autocast(dev, enabled=False):
            return F.grid_sample(value.to(dt), grid.to(dt), mode="bilinear",
                                 padding_mode="zeros", align_corners=False)
    return F.grid_sample(value, grid.to(value.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


class CrossAlignment(nn.Module):
    """Align the query modality's features with the other's: ``forward(query, value)``
    returns the query updated, in the query's shape (see the module docstring).

    ``homography`` maps normalised query coordinates to normalised coordinates
    of the other modality (E2F: frame -> event, the inverse of the configured
    event -> frame matrix; F2E: event -> frame).
    """

    def __init__(self, query_channels: int, value_channels: int, embed_dim: int = 64,
                 heads: int = 8, points: int = 4, hidden: int = 64,
                 homography: torch.Tensor | None = None) -> None:
        super().__init__()
        if embed_dim % heads:
            raise EvreidError(f"MODEL.ALIGN.EMBED_DIM ({embed_dim}) must be a multiple of "
                              f"MODEL.ALIGN.HEADS ({heads})")
        self.heads, self.points, self.embed_dim = heads, points, embed_dim
        self.other_proj = nn.Conv2d(value_channels, query_channels, 1)
        self.sampling_offsets = nn.Linear(query_channels, heads * points * 3)
        self.attention = nn.Sequential(nn.Linear(query_channels, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, heads * points))
        self.value_proj = nn.Conv2d(value_channels, embed_dim, 1)
        self.output_proj = nn.Linear(embed_dim, query_channels)
        homography = torch.eye(3) if homography is None else homography.float()
        self.register_buffer("homography", homography, persistent=False)
        # which offset component is x / y (the others are z): scales without a
        # host-to-device copy per forward
        self.register_buffer("_is_x", torch.tensor([True, False, False]), persistent=False)
        self.register_buffer("_is_y", torch.tensor([False, True, False]), persistent=False)
        self._identity = bool(torch.equal(homography, torch.eye(3)))
        self._init_offsets()

    def _init_offsets(self) -> None:
        # deformable-DETR style start: offsets independent of the query, heads
        # looking in evenly spread directions, point i at distance i + 1 pixels;
        # in time the I points start spread evenly over the frame interval
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.heads, dtype=torch.float32) * (2 * math.pi / self.heads)
        dirs = torch.stack([angles.cos(), angles.sin()], -1)
        dirs = dirs / dirs.abs().max(-1, keepdim=True).values
        grid = dirs.view(self.heads, 1, 2).repeat(1, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, -1, 1)
        dz = (torch.arange(self.points, dtype=torch.float32) + 0.5) / self.points - 0.5
        grid = torch.cat([grid, dz.view(1, -1, 1).expand(self.heads, -1, -1)], -1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))

    @staticmethod
    def _split(t: torch.Tensor, name: str) -> tuple[torch.Tensor, int]:
        """[N, C, h, w] -> (itself, 1); [N, Z, C, h, w] -> ([N*Z, C, h, w], Z)."""
        if t.dim() == 4:
            return t, 1
        if t.dim() == 5:
            return t.flatten(0, 1), t.shape[1]
        raise EvreidError(f"cross alignment: {name} must be [N, C, h, w] or [N, Z, C, h, w]; "
                          f"got {tuple(t.shape)}")

    def forward(self, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        x, zq = self._split(query, "query")
        y, zv = self._split(value, "value")
        q_vox, v_vox = query.dim() == 5, value.dim() == 5
        N = query.shape[0]
        if value.shape[0] != N:
            raise EvreidError(f"cross alignment: query and value batch differ "
                              f"({N} vs {value.shape[0]})")
        if q_vox and v_vox and zq != zv:
            raise EvreidError(f"cross alignment: voxel depths differ ({zq} vs {zv})")
        h, w = x.shape[-2:]
        hv, wv = y.shape[-2:]
        M, I, D = self.heads, self.points, self.embed_dim
        L = zq * h * w                                                     # queries per sample
        ref = reference_points(h, w, self.homography, x.device)            # [hw, 2] (x, y)

        # P: the other modality "at the same place" (see the module docstring)
        other = value.mean(1) if (v_vox and not q_vox) else y              # mean is linear: first
        proj = self.other_proj(other)                                      # [N or N*Z, Cq, hv, wv]
        if not (self._identity and (hv, wv) == (h, w)):
            # (with the identity and equal sizes the reference is the pixel itself)
            centre = (2 * ref - 1).to(proj.dtype).view(1, h, w, 2).expand(proj.shape[0], -1,
                                                                            -1, -1)
            proj = _sample(proj, centre).to(x.dtype)
        if q_vox:
            # its own bin from a voxel; a frame map serves every bin
            proj = proj.view_as(query) if v_vox else proj.unsqueeze(1)
        q = query * proj                                                   # query's shape
        q = (q.permute(0, 1, 3, 4, 2) if q_vox else q.permute(0, 2, 3, 1)).reshape(N, L, -1)

        # reference points (x, y, z), then the learned offsets
        if q_vox:
            rz = (torch.arange(zq, device=x.device, dtype=torch.float32) + 0.5) / zq
            ref3 = torch.cat([ref.view(1, h * w, 2).expand(zq, -1, -1),
                              rz.view(zq, 1, 1).expand(-1, h * w, 1)], -1).view(L, 3)
        else:
            ref3 = torch.cat([ref, torch.full_like(ref[:, :1], 0.5)], -1)  # [hw, 3]
        scale = torch.where(self._is_x, 1.0 / wv, torch.where(self._is_y, 1.0 / hv, 1.0))
        off = self.sampling_offsets(q).view(N, L, M, I, 3)
        loc = torch.addcmul(ref3.view(1, L, 1, 1, 3), off, scale)          # [N, L, M, I, 3]
        scores = _softmax_last(self.attention(q).view(N, L, M, I))

        value_p = self.value_proj(y)                                       # [N*Zv, D, hv, wv]
        grid = (2 * loc - 1).permute(0, 2, 1, 3, 4)                        # [N, M, L, I, 3]
        if v_vox:
            # trilinear over (bins, y, x); z kept within the bin centres
            zlo = 0.5 / zv
            gz = (2 * loc[..., 2:].clamp(zlo, 1 - zlo) - 1).permute(0, 2, 1, 3, 4)
            grid = torch.cat([grid[..., :2], gz], -1).reshape(N * M, 1, L, I, 3)
            vol = value_p.view(N, zv, M, D // M, hv, wv).permute(0, 2, 3, 1, 4, 5)
            sampled = _sample(vol.reshape(N * M, D // M, zv, hv, wv), grid)   # [NM, D/M, 1, L, I]
            sampled = sampled.view(N * M, D // M, L, I)
        else:
            sampled = _sample(value_p.reshape(N * M, D // M, hv, wv),
                              grid[..., :2].reshape(N * M, L, I, 2))       # [NM, D/M, L, I]
        weights = scores.permute(0, 2, 1, 3).reshape(N * M, 1, L, I).to(sampled.dtype)
        mixed = (sampled * weights).sum(-1).view(N, D, L).transpose(1, 2)  # [N, L, D]
        out = self.output_proj(mixed)                                      # [N, L, Cq]
        if q_vox:
            out = out.view(N, zq, h, w, -1).permute(0, 1, 4, 2, 3)
        else:
            out = out.view(N, h, w, -1).permute(0, 3, 1, 2)
        return query + out
