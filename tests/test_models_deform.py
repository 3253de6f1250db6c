"""Deformable convolution and the sparse event deformable mapping (nearest-event taps)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from evreid.errors import EvreidError
from evreid.models.deform import (
    KERNEL_TAPS,
    TAP_ORDER,
    EventDeformStack,
    NearestEvents,
    deform_conv2d,
    event_guided_offsets,
)


def naive_deform_conv2d(x, offset, weight, stride=1, padding=1, dilation=1):
    """Loop-over-everything reference: scalar bilinear sampling, per output pixel."""
    N, C, H, W = x.shape
    Cout, _, kh, kw = weight.shape
    Ho, Wo = offset.shape[-2:]

    def pixel(n, y, xx):
        if 0 <= y < H and 0 <= xx < W:
            return x[n, :, y, xx]
        return x.new_zeros(C)

    out = []
    for n in range(N):
        rows = []
        for i in range(Ho):
            cols = []
            for j in range(Wo):
                acc = x.new_zeros(Cout)
                for a in range(kh):
                    for b in range(kw):
                        k = a * kw + b
                        py = i * stride - padding + a * dilation + offset[n, 2 * k, i, j]
                        px = j * stride - padding + b * dilation + offset[n, 2 * k + 1, i, j]
                        y0, x0 = math.floor(float(py.detach())), math.floor(float(px.detach()))
                        ly, lx = py - y0, px - x0
                        val = ((1 - ly) * (1 - lx) * pixel(n, y0, x0)
                               + (1 - ly) * lx * pixel(n, y0, x0 + 1)
                               + ly * (1 - lx) * pixel(n, y0 + 1, x0)
                               + ly * lx * pixel(n, y0 + 1, x0 + 1))
                        acc = acc + weight[:, :, a, b] @ val
                cols.append(acc)
            rows.append(torch.stack(cols, -1))
        out.append(torch.stack(rows, -2))
    return torch.stack(out)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_zero_offsets_equal_conv2d(stride, padding, dilation):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 7, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    off = torch.zeros(2, 18, *ref.shape[-2:], dtype=torch.float64)
    out = deform_conv2d(x, off, w, b, stride=stride, padding=padding, dilation=dilation)
    assert torch.allclose(out, ref, atol=1e-10)


def test_matches_naive_reference_forward_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    # fractional offsets, some far enough to leave the map (zero contributions)
    off = (torch.randn(2, 18, 5, 4, dtype=torch.float64) * 1.5).requires_grad_()
    g = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    out = deform_conv2d(x, off, w)
    ref = naive_deform_conv2d(x, off, w)
    assert torch.allclose(out, ref, atol=1e-10)
    grads = torch.autograd.grad((out * g).sum(), (x, w, off))
    grads_ref = torch.autograd.grad((ref * g).sum(), (x, w, off))
    for a, b in zip(grads, grads_ref, strict=True):
        assert a.abs().sum() > 0
        assert torch.allclose(a, b, atol=1e-9)


def test_strided_matches_naive_reference():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    off = torch.randn(1, 18, 3, 3, dtype=torch.float64)
    assert torch.allclose(deform_conv2d(x, off, w, stride=2),
                          naive_deform_conv2d(x, off, w, stride=2), atol=1e-10)


TAP = {t: k for k, t in enumerate(KERNEL_TAPS)}        # (dy, dx) -> tap index


def _key(dy, dx):
    """The documented tie-break: Manhattan, Chebyshev, dy, dx."""
    return (abs(dy) + abs(dx), max(abs(dy), abs(dx)), dy, dx)


def brute_force_nearest(active, radius):
    """Per position, the (dy, dx) of the up-to-9 nearest active positions, by scanning
    every pixel of the map."""
    N, H, W = active.shape
    out = {}
    for n in range(N):
        for y in range(H):
            for x in range(W):
                near = sorted((_key(yy - y, xx - x), (yy - y, xx - x))
                              for yy in range(H) for xx in range(W)
                              if active[n, yy, xx] and abs(yy - y) + abs(xx - x) <= radius)
                out[n, y, x] = [d for _, d in near[:9]]
    return out


@pytest.mark.parametrize("radius,density,chunk", [(2, 0.3, 64), (3, 0.1, 10), (5, 0.05, 9),
                                                  (4, 0.6, 16)])
def test_nearest_events_equal_brute_force(radius, density, chunk):
    g = torch.Generator().manual_seed(radius)
    active = torch.rand(2, 9, 7, generator=g) < density
    disp, found = NearestEvents(radius, chunk)(active)
    ref = brute_force_nearest(active, radius)
    for (n, y, x), near in ref.items():
        k = len(near)
        assert found[n, y, x].tolist() == [True] * k + [False] * (9 - k)
        assert [tuple(d) for d in disp[n, y, x, :k].tolist()] == near
        assert disp[n, y, x, k:].abs().sum() == 0


def test_dense_events_give_regular_grid_and_a_key_event_taps_itself_first():
    active = torch.ones(1, 6, 5, dtype=torch.bool)
    off, found = event_guided_offsets(active, radius=3)
    # interior: the 3x3 square is the 9 nearest -> zero offsets (a plain conv)
    assert off[0, :, 1:-1, 1:-1].abs().sum() == 0
    assert found.all()
    # corner (0, 0): taps off the map move onto the nearest in-map events
    assert off[0, :, 0, 0].abs().sum() > 0
    sparse = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.2
    disp, found = NearestEvents(3)(sparse)
    assert found[..., 0][sparse].all() and disp[..., 0, :][sparse].abs().sum() == 0


def test_tie_break_and_tap_assignment():
    active = torch.zeros(1, 7, 7, dtype=torch.bool)
    active[0, 3, 4] = True                              # (0, +1) from (3, 3)
    active[0, 2, 3] = True                              # (-1, 0) from (3, 3)
    active[0, 5, 3] = True                              # (+2, 0) from (3, 3)
    off, found = event_guided_offsets(active, radius=3)

    def offset(tap):
        return tuple(int(v) for v in off[0, 2 * TAP[tap]:2 * TAP[tap] + 2, 3, 3])

    # nearest first; at equal distance 1, dy = -1 precedes dy = 0
    assert offset((0, 0)) == (-1, 0)                   # 1st event (-1, 0) -> centre tap
    assert offset((-1, 0)) == (1, 1)                    # 2nd (0, 1) -> the top tap
    assert offset((0, -1)) == (2, 1)                    # 3rd (2, 0) -> the left tap
    assert TAP_ORDER[:3] == [TAP[(0, 0)], TAP[(-1, 0)], TAP[(0, -1)]]
    assert found[0, :, 3, 3].sum() == 3
    for tap in [(0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)]:
        assert offset(tap) == (0, 0) and not found[0, TAP[tap], 3, 3]


def naive_sparse_mapping(x, active, weight, radius):
    """Eq. 8 by hand: at every key event, sum over the 9 nearest key events of
    w_tap . X(event); zero at positions without a key event."""
    N, C, H, W = x.shape
    near = brute_force_nearest(active, radius)
    out = torch.zeros(N, weight.shape[0], H, W, dtype=x.dtype)
    for (n, y, xx), events in near.items():
        if not active[n, y, xx]:
            continue
        for rank, (dy, dx) in enumerate(events):
            ky, kx = KERNEL_TAPS[TAP_ORDER[rank]]
            out[n, :, y, xx] += weight[:, :, ky + 1, kx + 1] @ x[n, :, y + dy, xx + dx]
    return out


def test_mapping_is_zero_off_events_and_taps_land_on_the_nearest_events():
    torch.manual_seed(0)
    active = torch.rand(3, 10, 7) < 0.15
    x = torch.randn(3, 4, 10, 7, dtype=torch.float64)
    stack = EventDeformStack(4, 5, num=1, radius=3).double().eval()   # BN at init: identity
    with torch.no_grad():
        out = stack(x, active)
        ref = F.relu(naive_sparse_mapping(x, active, stack.mappings[0].weight, 3))
    assert out.shape == (3, 5, 10, 7)
    assert out[~active.unsqueeze(1).expand_as(out)].abs().sum() == 0     # exactly zero
    assert out[active.unsqueeze(1).expand_as(out)].abs().sum() > 0
    assert torch.allclose(out, ref, atol=1e-12)


def test_mapping_equals_bilinear_deform_conv_at_eq11_offsets():
    torch.manual_seed(1)
    active = torch.rand(2, 9, 6) < 0.25
    x = torch.randn(2, 3, 9, 6)
    stack = EventDeformStack(3, 4, num=1, radius=4).eval()
    off, found = event_guided_offsets(active, radius=4)
    # a tap with no event reads zero: send it far outside the map
    off = off.view(2, 9, 2, 9, 6).masked_fill(~found.unsqueeze(2), -1000.0).view(2, 18, 9, 6)
    with torch.no_grad():
        ref = F.relu(stack.mappings[0].bn(
            deform_conv2d(x, off, stack.mappings[0].weight).permute(0, 2, 3, 1).reshape(-1, 4)))
        ref = ref.view(2, 9, 6, 4).permute(0, 3, 1, 2) * active.unsqueeze(1)
        assert torch.allclose(stack(x, active), ref, atol=1e-5)


def test_stack_gradients_counts_and_bad_options():
    stack = EventDeformStack(4, 8, num=3, radius=2)
    assert len(stack.mappings) == 3
    x = torch.randn(2, 4, 6, 5, requires_grad=True)
    active = torch.rand(2, 6, 5) < 0.3
    out = stack(x, active)
    assert out.shape == (2, 8, 6, 5)
    out.square().sum().backward()
    assert all(m.weight.grad.abs().sum() > 0 for m in stack.mappings)
    # inputs reach the output only through taps on key events
    assert x.grad[~active.unsqueeze(1).expand_as(x)].abs().sum() == 0
    flat = EventDeformStack(4, 8, num=0)
    assert flat(x, active).shape == (2, 8, 6, 5)
    assert flat(x, active)[~active.unsqueeze(1).expand(-1, 8, -1, -1)].abs().sum() == 0
    with pytest.raises(EvreidError, match="RADIUS"):
        NearestEvents(1)
    with pytest.raises(EvreidError, match="event mask"):
        stack(x, active[0])
    with pytest.raises(EvreidError, match="offset must be"):
        deform_conv2d(x, torch.zeros(2, 18, 3, 3), torch.zeros(8, 4, 3, 3))
