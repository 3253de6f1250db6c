"""Deformable convolution in pure PyTorch, and SDCL's sparse event deformable mapping.

Offsets follow torchvision's layout: ``offset[:, 2k]`` is the row (dy) and
``offset[:, 2k + 1]`` the column (dx) shift of kernel tap k, taps in row-major
order of the kernel (the order of ``weight[:, :, i, j]``). Sampling is
bilinear with zeros outside the input, corner by corner (as torchvision's
``deform_conv2d``); gradients flow to the input, the weights and the offsets
through autograd (gather + arithmetic, no custom kernel). It is the reference
the event mapping is tested against.

Sparse event deformable mapping (paper §3.3, Eq. 8-11), on one 2-D map per
time step (the event branch gives one per frame and bin):

- key events: the positions whose activity mask is set (the event branch
  uses the spikes of the last spiking layer at the mapping's own resolution);
- for a key event m0 = (y0, x0) the N = 9 key events nearest in Manhattan
  distance (Eq. 9; m0 itself first) become the taps; the k-th nearest goes to
  the k-th kernel tap in :data:`TAP_ORDER`, whose offset is then
  ``(y_k - y0 - m_k.y, x_k - x0 - m_k.x)`` (Eq. 11), so the tap lands on it;
- the output exists only at key events (exactly zero elsewhere: "only
  calculates the regions of events"); a tap with no event left within the
  search limit reads zero (it has nothing to land on);
- tie-break, deterministic: candidates are ordered by Manhattan distance,
  then Chebyshev distance, then dy, then dx; the kernel taps by the same key.
  The Chebyshev step makes a fully active 3x3 neighbourhood select exactly
  the 3x3 square, each tap its own position (zero offsets): dense events
  reduce to a regular convolution.

The search has a fixed candidate set (every displacement within the
Manhattan radius ``MODEL.DEFORM.RADIUS``, nearest first), so shapes are
static and nothing is read back to the host: a top-9 over candidate ranks,
in chunks of candidates so memory stays bounded. With integral offsets a tap
reads a single pixel, so a mapping is one row gather and one matrix product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError
from evreid.utils import exporting

__all__ = ["deform_conv2d", "bilinear_gather", "NearestEvents", "event_guided_offsets",
           "EventDeformMapping", "EventDeformStack", "KERNEL_TAPS", "TAP_ORDER",
           "candidate_displacements", "NUM_TAPS"]


def _tap_key(dy: int, dx: int) -> tuple[int, int, int, int]:
    return (abs(dy) + abs(dx), max(abs(dy), abs(dx)), dy, dx)


# 3x3 kernel taps (dy, dx) in row-major order, and their assignment priority
KERNEL_TAPS: list[tuple[int, int]] = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
TAP_ORDER: list[int] = sorted(range(9), key=lambda k: _tap_key(*KERNEL_TAPS[k]))


def candidate_displacements(radius: int) -> list[tuple[int, int]]:
    """All (dy, dx) with |dy| + |dx| <= radius, nearest first (documented tie-break)."""
    cands = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
             if abs(dy) + abs(dx) <= radius]
    return sorted(cands, key=lambda d: _tap_key(*d))


def _rows(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> channels-last rows [N*H*W, C].

    Gathering whole rows (index_select) instead of single elements makes the
    backward an index_add of contiguous rows, many times faster on CPU than
    torch.gather's element-wise scatter.
    """
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def bilinear_gather(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` [N, C, H, W] at real positions ``py, px`` [N, P] -> [N, P, C].

    Integer coordinates are pixel centres; each of the four corners outside
    the map contributes zero.
    """
    N, C, H, W = x.shape
    P = py.shape[1]
    rows = _rows(x)
    batch = (torch.arange(N, device=x.device) * (H * W)).view(N, 1)
    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ly, lx = py - y0, px - x0
    y0, x0 = y0.long(), x0.long()
    out = x.new_zeros(N, P, C)
    for cy, cx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                        (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        valid = (cy >= 0) & (cy < H) & (cx >= 0) & (cx < W)
        idx = cy.clamp(0, H - 1) * W + cx.clamp(0, W - 1) + batch
        vals = rows.index_select(0, idx.reshape(-1)).view(N, P, C)
        out = out + vals * (wgt * valid).unsqueeze(-1)
    return out


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int = 1, padding: int = 1,
                  dilation: int = 1) -> torch.Tensor:
    """Deformable convolution (v1). ``offset`` is [N, 2*kh*kw, Ho, Wo] in (dy, dx) pairs."""
    N, C, H, W = x.shape
    Cout, Cin, kh, kw = weight.shape
    if Cin != C:
        raise EvreidError(f"deform_conv2d: input has {C} channels, weight expects {Cin}")
    Ho = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    Wo = (W + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    K = kh * kw
    if offset.shape != (N, 2 * K, Ho, Wo):
        raise EvreidError(f"deform_conv2d: offset must be {(N, 2 * K, Ho, Wo)}; "
                          f"got {tuple(offset.shape)}")
    dev, dt = x.device, x.dtype
    ky, kx = torch.meshgrid(torch.arange(kh, device=dev, dtype=dt) * dilation,
                            torch.arange(kw, device=dev, dtype=dt) * dilation, indexing="ij")
    base_y = torch.arange(Ho, device=dev, dtype=dt) * stride - padding
    base_x = torch.arange(Wo, device=dev, dtype=dt) * stride - padding
    py = base_y.view(1, 1, Ho, 1) + ky.reshape(1, K, 1, 1) + offset[:, 0::2]
    px = base_x.view(1, 1, 1, Wo) + kx.reshape(1, K, 1, 1) + offset[:, 1::2]
    # position-major, tap-minor sample order, so the columns are [N, Ho*Wo, K*C]
    py = py.permute(0, 2, 3, 1).reshape(N, -1)
    px = px.permute(0, 2, 3, 1).reshape(N, -1)
    cols = bilinear_gather(x, py, px).reshape(N, Ho * Wo, K * C)
    out = cols @ weight.permute(0, 2, 3, 1).reshape(Cout, K * C).t()      # [N, Ho*Wo, Cout]
    if bias is not None:
        out = out + bias
    return out.transpose(1, 2).reshape(N, Cout, Ho, Wo)


NUM_TAPS = 9


def _rank_dtype(num_candidates: int) -> torch.dtype:
    return torch.int16 if num_candidates < 2 ** 15 - 1 else torch.int32


class NearestEvents(nn.Module):
    """For every position of an activity mask [N, H, W], the 9 nearest active
    positions (see the module docstring): ``forward(active) -> (disp, found)``
    with ``disp`` [N, H, W, 9, 2] (dy, dx) of the k-th nearest, nearest first,
    and ``found`` [N, H, W, 9] (False where fewer than k lie within ``radius``;
    ``disp`` is (0, 0) there).

    Vectorised over a fixed candidate list: the mask is padded by ``radius``,
    viewed as sliding windows, the candidates of a chunk gathered at once,
    their ranks (``len(candidates)`` where inactive) merged with the best 9 so
    far by a top-k. ``chunk`` bounds the memory to N x H x W x (chunk + 9)
    ranks.
    """

    def __init__(self, radius: int, chunk: int = 64) -> None:
        super().__init__()
        if radius < 2:
            raise EvreidError(f"MODEL.DEFORM.RADIUS must be >= 2 (the 9 nearest events need "
                              f"at least 13 candidates); got {radius}")
        if chunk < NUM_TAPS:
            raise EvreidError(f"NearestEvents chunk must be >= {NUM_TAPS}; got {chunk}")
        self.radius, self.chunk = int(radius), int(chunk)
        cands = candidate_displacements(self.radius)
        self.num_candidates = len(cands)
        dt = _rank_dtype(len(cands))
        # tables live on the module's device: no host-to-device copy per forward
        self.register_buffer("cand_y", torch.tensor([dy + radius for dy, _ in cands]),
                             persistent=False)
        self.register_buffer("cand_x", torch.tensor([dx + radius for _, dx in cands]),
                             persistent=False)
        self.register_buffer("ranks", torch.arange(len(cands), dtype=dt), persistent=False)
        # row len(cands) ("not found") -> (0, 0)
        self.register_buffer("table", torch.tensor(cands + [(0, 0)]), persistent=False)

    @torch.no_grad()
    def forward(self, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if active.dim() != 3:
            raise EvreidError(f"event mask must be [N, H, W]; got {tuple(active.shape)}")
        R, L = self.radius, self.num_candidates
        padded = F.pad(active.to(torch.uint8), (R, R, R, R))
        windows = padded.unfold(1, 2 * R + 1, 1).unfold(2, 2 * R + 1, 1)   # [N, H, W, 2R+1, 2R+1]
        best = None
        for lo in range(0, L, self.chunk):
            hi = min(L, lo + self.chunk)
            hit = windows[..., self.cand_y[lo:hi], self.cand_x[lo:hi]]        # [N, H, W, c]
            ranks = self.ranks[lo:hi]
            if exporting():
                ranks = ranks.int()     # ONNX Runtime has no int16 Where
            key = torch.where(hit.bool(), ranks, L)                 # L: inactive
            if best is not None:
                key = torch.cat([best, key], -1)
            best = torch.topk(key, NUM_TAPS, dim=-1, largest=False, sorted=True).values
        found = best < L
        return self.table[best.long()], found

    def extra_repr(self) -> str:
        return f"radius={self.radius}, candidates={self.num_candidates}, chunk={self.chunk}"


# TAP_INVERSE[tap] = the rank (k-th nearest) that tap receives
TAP_INVERSE: list[int] = [TAP_ORDER.index(k) for k in range(NUM_TAPS)]


def event_guided_offsets(active: torch.Tensor, radius: int = 3) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Eq. 11 offsets [N, 18, H, W] of a 3x3, stride-1, padding-1 deformable conv
    (torchvision layout) from an activity mask [N, H, W], and ``found``
    [N, 9, H, W] per kernel tap (taps without an event keep offset 0; the
    mapping makes them read zero)."""
    disp, found = NearestEvents(radius).to(active.device)(active)
    N, H, W = active.shape
    taps = torch.tensor([KERNEL_TAPS[TAP_ORDER[k]] for k in range(NUM_TAPS)],
                        device=active.device)
    off = (disp - taps) * found.unsqueeze(-1)                              # [N, H, W, 9, 2]
    inv = torch.tensor(TAP_INVERSE, device=active.device)
    off = off[:, :, :, inv].permute(0, 3, 4, 1, 2).reshape(N, 18, H, W)   # by kernel tap
    return off.float(), found[..., inv].permute(0, 3, 1, 2)


class EventDeformMapping(nn.Module):
    """One sparse event deformable mapping: 3x3 taps on the 9 nearest key
    events, BatchNorm, ReLU, zero outside key events. Resolution is kept.

    Works on channels-last rows ``[N*H*W, C]`` and a tap index from
    :meth:`EventDeformStack.tap_index` (row ``N*H*W`` is the zero row).
    BatchNorm statistics run over every position of the map (non-key
    positions enter as zeros from the previous mapping, or as the taps'
    values for the first one); the output is masked after it.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn = nn.BatchNorm1d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, rows: torch.Tensor, index: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        cout, cin = self.weight.shape[:2]
        padded = F.pad(rows, (0, 0, 0, 1))                                 # the zero row
        cols = padded.index_select(0, index).view(-1, NUM_TAPS * cin)      # [M, 9*C]
        out = cols @ self.weight.permute(0, 2, 3, 1).reshape(cout, -1).t()
        return self.relu(self.bn(out)) * mask


class EventDeformStack(nn.Module):
    """``num`` sparse event deformable mappings sharing one set of taps (one
    activity mask). ``forward(x [N, C, H, W], active [N, H, W]) -> [N, Cout, H, W]``;
    :meth:`forward_rows` does the same on channels-last rows."""

    def __init__(self, cin: int, cout: int, num: int = 3, radius: int = 3,
                 chunk: int = 64) -> None:
        super().__init__()
        if num < 0:
            raise EvreidError(f"MODEL.DEFORM.MAPPINGS must be >= 0; got {num}")
        self.radius = radius
        self.search = NearestEvents(radius, chunk)
        self.mappings = nn.ModuleList(
            EventDeformMapping(cin if i == 0 else cout, cout) for i in range(num))
        # with no mapping the stack is a (masked) 1x1 projection, same output width
        self.proj = None if num else nn.Sequential(
            nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True))
        self.out_channels = cout
        inv = torch.tensor(TAP_INVERSE)
        self.register_buffer("tap_inverse", inv, persistent=False)

    @torch.no_grad()
    def tap_index(self, active: torch.Tensor) -> torch.Tensor:
        """Row indices [N*H*W*9] (position-major, kernel-tap-minor) into the rows
        of the stacked maps, ``N*H*W`` (the zero row) for taps without an event."""
        N, H, W = active.shape
        disp, found = self.search(active)                                  # by rank
        pos = torch.arange(N * H * W, device=active.device).view(N, H, W, 1)
        target = pos + disp[..., 0] * W + disp[..., 1]
        index = torch.where(found, target, N * H * W)
        return index[..., self.tap_inverse].reshape(-1)                    # by kernel tap

    def forward_rows(self, rows: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        mask = active.reshape(-1, 1).to(rows.dtype)
        if self.proj is not None:
            return self.proj(rows) * mask
        index = self.tap_index(active)
        for mapping in self.mappings:
            rows = mapping(rows, index, mask)
        return rows

    def forward(self, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        N, _, H, W = x.shape
        if active.shape != (N, H, W):
            raise EvreidError(f"event mask must be [N, H, W] = {(N, H, W)}; "
                              f"got {tuple(active.shape)}")
        rows = self.forward_rows(_rows(x), active.bool())
        return rows.view(N, H, W, -1).permute(0, 3, 1, 2)
