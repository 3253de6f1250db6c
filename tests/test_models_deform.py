"""Deformable convolution and event-guided offsets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from evreid.errors import EvreidError
from evreid.models.deform import (
    KERNEL_TAPS,
    EventDeformMapping,
    EventDeformStack,
    candidate_displacements,
    deform_conv2d,
    event_guided_offsets,
    offsets_to_index,
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


def _offset(offsets, n, y, x, tap):
    return tuple(int(v) for v in offsets[n, 2 * tap:2 * tap + 2, y, x])


TAP = {t: k for k, t in enumerate(KERNEL_TAPS)}        # (dy, dx) -> tap index


def test_dense_events_give_regular_grid():
    active = torch.ones(1, 6, 5, dtype=torch.bool)
    off = event_guided_offsets(active, radius=3)
    # interior: the 3x3 square is the 9 nearest -> zero offsets
    assert off[0, :, 1:-1, 1:-1].abs().sum() == 0
    # corner (0, 0): taps off the map move onto the nearest in-map events
    assert off[0, :, 0, 0].abs().sum() > 0


def test_single_event_pulls_the_centre_tap():
    active = torch.zeros(1, 7, 7, dtype=torch.bool)
    active[0, 3, 5] = True                              # two columns right of (3, 3)
    off = event_guided_offsets(active, radius=3)
    assert _offset(off, 0, 3, 3, TAP[(0, 0)]) == (0, 2)
    others = [k for k in range(9) if k != TAP[(0, 0)]]
    assert all(_offset(off, 0, 3, 3, k) == (0, 0) for k in others)
    # from (0, 0) the event is at Manhattan distance 3 + 5 = 8 > radius: regular grid
    assert off[0, :, 0, 0].abs().sum() == 0
    # from (6, 6): dy = -3, dx = -1, distance 4 > 3
    assert off[0, :, 6, 6].abs().sum() == 0
    # from (4, 4): dy = -1, dx = 1 (distance 2)
    assert _offset(off, 0, 4, 4, TAP[(0, 0)]) == (-1, 1)


def test_tie_break_and_tap_assignment():
    active = torch.zeros(1, 7, 7, dtype=torch.bool)
    active[0, 3, 4] = True                              # (0, +1) from (3, 3)
    active[0, 2, 3] = True                              # (-1, 0) from (3, 3)
    active[0, 5, 3] = True                              # (+2, 0) from (3, 3)
    off = event_guided_offsets(active, radius=3)
    # nearest first; at equal distance 1, dy = -1 precedes dy = 0
    # 1st event (-1, 0) -> centre tap: offset (-1, 0)
    assert _offset(off, 0, 3, 3, TAP[(0, 0)]) == (-1, 0)
    # 2nd event (0, 1) -> second tap in priority order, the top tap (-1, 0)
    assert _offset(off, 0, 3, 3, TAP[(-1, 0)]) == (1, 1)
    # 3rd event (2, 0) -> third tap, the left tap (0, -1)
    assert _offset(off, 0, 3, 3, TAP[(0, -1)]) == (2, 1)
    for tap in [(0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)]:
        assert _offset(off, 0, 3, 3, TAP[tap]) == (0, 0)


def brute_force_offsets(active, radius):
    N, H, W = active.shape
    key = {d: r for r, d in enumerate(candidate_displacements(radius))}
    priority = sorted(range(9), key=lambda k: (abs(KERNEL_TAPS[k][0]) + abs(KERNEL_TAPS[k][1]),
                                               max(map(abs, KERNEL_TAPS[k])), *KERNEL_TAPS[k]))
    out = torch.zeros(N, 18, H, W)
    for n in range(N):
        for y in range(H):
            for x in range(W):
                found = sorted((key[(yy - y, xx - x)], (yy - y, xx - x))
                               for yy in range(H) for xx in range(W)
                               if active[n, yy, xx] and abs(yy - y) + abs(xx - x) <= radius)
                for rank, (_, (dy, dx)) in enumerate(found[:9]):
                    tap = priority[rank]
                    out[n, 2 * tap, y, x] = dy - KERNEL_TAPS[tap][0]
                    out[n, 2 * tap + 1, y, x] = dx - KERNEL_TAPS[tap][1]
    return out


@pytest.mark.parametrize("radius,density", [(2, 0.3), (3, 0.1), (1, 0.5)])
def test_vectorised_offsets_equal_brute_force(radius, density):
    g = torch.Generator().manual_seed(radius)
    active = torch.rand(2, 8, 6, generator=g) < density
    assert torch.equal(event_guided_offsets(active, radius), brute_force_offsets(active, radius))


def test_event_mapping_gather_equals_bilinear_deform_conv():
    torch.manual_seed(0)
    active = torch.rand(3, 10, 6) < 0.15
    x = torch.randn(3, 4, 10, 6)
    mapping = EventDeformMapping(4, 5)
    off = event_guided_offsets(active, radius=3)
    mapping.eval()
    with torch.no_grad():
        out = mapping(x, offsets_to_index(off))
        ref = F.relu(mapping.bn(deform_conv2d(x, off, mapping.weight)))
    assert torch.allclose(out, ref, atol=1e-5)


def test_stack_counts_and_zero_mappings():
    stack = EventDeformStack(4, 8, num=3, radius=2)
    assert len(stack.mappings) == 3
    x, active = torch.randn(2, 4, 6, 5), torch.rand(2, 6, 5) < 0.3
    assert stack(x, active).shape == (2, 8, 6, 5)
    flat = EventDeformStack(4, 8, num=0)
    assert flat(x, active).shape == (2, 8, 6, 5)
    with pytest.raises(EvreidError, match="RADIUS"):
        event_guided_offsets(active, radius=0)
    with pytest.raises(EvreidError, match="offset must be"):
        deform_conv2d(x, torch.zeros(2, 18, 3, 3), torch.zeros(8, 4, 3, 3))
