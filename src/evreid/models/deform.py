"""Deformable convolution in pure PyTorch, and SDCL's event-guided offsets.

Offsets follow torchvision's layout: ``offset[:, 2k]`` is the row (dy) and
``offset[:, 2k + 1]`` the column (dx) shift of kernel tap k, taps in row-major
order of the kernel (the order of ``weight[:, :, i, j]``). Sampling is
bilinear with zeros outside the input, corner by corner (as torchvision's
``deform_conv2d``); gradients flow to the input, the weights and the offsets
through autograd (gather + arithmetic, no custom kernel).

Event-guided offsets (SDCL's event deformable mapping): for every position
m0 = (y0, x0) the N = 9 active (event-carrying) positions nearest in Manhattan
distance within ``radius`` are found; the k-th nearest goes to the k-th tap and
that tap's offset is ``(y_k - y0 - m_k.y, x_k - x0 - m_k.x)`` so the tap lands
on it. Taps left over (fewer than 9 active positions in reach) keep the
regular grid. Tie-break, deterministic: candidates are ordered by Manhattan
distance, then Chebyshev distance, then dy, then dx; taps are ordered by the
same key. The Chebyshev step makes a fully active neighbourhood select
exactly the 3x3 square, each tap its own position (zero offsets): dense
events reduce to a regular convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError

__all__ = ["deform_conv2d", "bilinear_gather", "event_guided_offsets", "offsets_to_index",
           "gather_taps", "EventDeformMapping", "EventDeformStack", "KERNEL_TAPS", "TAP_ORDER",
           "candidate_displacements"]


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


@torch.no_grad()
def event_guided_offsets(active: torch.Tensor, radius: int = 3,
                         num_points: int = 9) -> torch.Tensor:
    """Offsets [N, 18, H, W] of a 3x3, stride-1, padding-1 deformable conv from an
    activity mask [N, H, W] (True where events are). See the module docstring.

    Vectorised: one shifted copy of the mask per candidate displacement, then a
    top-k over candidate ranks (no loop over pixels).
    """
    if active.dim() != 3:
        raise EvreidError(f"event mask must be [N, H, W]; got {tuple(active.shape)}")
    if radius < 1:
        raise EvreidError(f"MODEL.DEFORM.RADIUS must be >= 1; got {radius}")
    N, H, W = active.shape
    cands = candidate_displacements(radius)
    L = len(cands)
    padded = F.pad(active.bool(), (radius, radius, radius, radius), value=False)
    never = L  # rank that marks "inactive"; larger than any real rank
    keys = torch.full((N, L, H, W), never, dtype=torch.int32, device=active.device)
    for rank, (dy, dx) in enumerate(cands):
        shifted = padded[:, radius + dy:radius + dy + H, radius + dx:radius + dx + W]
        keys[:, rank].masked_fill_(shifted, rank)
    k = min(num_points, 9, L)
    ranks, _ = torch.topk(keys, k, dim=1, largest=False, sorted=True)   # [N, k, H, W]
    found = ranks < never
    table = torch.tensor(cands + [(0, 0)], device=active.device)           # index L -> (0, 0)
    disp = table[ranks.clamp(max=never).long()]                            # [N, k, H, W, 2]
    taps = torch.tensor([KERNEL_TAPS[TAP_ORDER[i]] for i in range(k)], device=active.device)
    off = torch.where(found.unsqueeze(-1), disp - taps.view(1, k, 1, 1, 2),
                      torch.zeros_like(disp))                              # [N, k, H, W, 2]
    offsets = torch.zeros(N, 9, 2, H, W, device=active.device)
    offsets[:, TAP_ORDER[:k]] = off.permute(0, 1, 4, 2, 3).float()
    return offsets.reshape(N, 18, H, W)


def _in_graph_capture() -> bool:
    return (torch.jit.is_tracing() or torch.compiler.is_compiling()
            or torch.compiler.is_exporting())


def offsets_to_index(offsets: torch.Tensor) -> torch.Tensor:
    """Integer offsets [N, 18, H, W] -> row indices [N*H*W*9] into the channels-last
    rows of the input zero-padded by one pixel (all N images stacked).

    With integral offsets a bilinear sample is a single pixel, so the event
    mapping reduces to one row gather; the one-pixel zero border covers the
    regular-grid taps that fall off the map (event taps never do).
    """
    N, _, H, W = offsets.shape
    dev = offsets.device
    off = offsets.round().long().view(N, 9, 2, H, W)
    ky = torch.tensor([t[0] for t in KERNEL_TAPS], device=dev).view(1, 9, 1, 1)
    kx = torch.tensor([t[1] for t in KERNEL_TAPS], device=dev).view(1, 9, 1, 1)
    ys = torch.arange(H, device=dev).view(1, 1, H, 1) + ky + off[:, :, 0] + 1
    xs = torch.arange(W, device=dev).view(1, 1, 1, W) + kx + off[:, :, 1] + 1
    # an invariant of the offset construction; data-dependent, so not checked
    # while a graph is traced or exported
    if not _in_graph_capture() and (
            (ys < 0).any() or (ys > H + 1).any() or (xs < 0).any() or (xs > W + 1).any()):
        raise EvreidError("event-guided offsets point outside the padded feature map")
    batch = (torch.arange(N, device=dev) * ((H + 2) * (W + 2))).view(N, 1, 1, 1)
    index = ys * (W + 2) + xs + batch                                     # [N, 9, H, W]
    return index.permute(0, 2, 3, 1).reshape(-1)                          # position-major


def gather_taps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] and an index from :func:`offsets_to_index` -> [N, H*W, 9*C]
    (tap-major, channel-minor, matching ``weight.permute(0, 2, 3, 1)``)."""
    N, C, H, W = x.shape
    rows = _rows(F.pad(x, (1, 1, 1, 1)))
    return rows.index_select(0, index).view(N, H * W, 9 * C)


class EventDeformMapping(nn.Module):
    """One event deformable mapping: 3x3 deformable conv at event-guided offsets,
    BatchNorm, ReLU. Resolution is kept (stride 1)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        N, _, H, W = x.shape
        cout = self.weight.shape[0]
        out = gather_taps(x, index) @ self.weight.permute(0, 2, 3, 1).reshape(cout, -1).t()
        return self.relu(self.bn(out.transpose(1, 2).reshape(N, cout, H, W)))


class EventDeformStack(nn.Module):
    """``num`` event deformable mappings sharing one set of offsets (one event mask)."""

    def __init__(self, cin: int, cout: int, num: int = 3, radius: int = 3) -> None:
        super().__init__()
        if num < 0:
            raise EvreidError(f"MODEL.DEFORM.MAPPINGS must be >= 0; got {num}")
        self.radius = radius
        self.mappings = nn.ModuleList(
            EventDeformMapping(cin if i == 0 else cout, cout) for i in range(num))
        # with no mapping the stack is a 1x1 projection so the output width is the same
        self.proj = None if num else nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.out_channels = cout

    def forward(self, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            return self.proj(x)
        index = offsets_to_index(event_guided_offsets(active, self.radius))
        for mapping in self.mappings:
            x = mapping(x, index)
        return x

