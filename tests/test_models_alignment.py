"""Cross feature alignment (E2F / F2E): sampling geometry, homography, sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from evreid.errors import EvreidError
from evreid.models.alignment import CrossAlignment, homography_matrix, reference_points


def _static(module: CrossAlignment) -> CrossAlignment:
    """Offsets fixed at zero: every point samples exactly its reference point."""
    with torch.no_grad():
        module.sampling_offsets.weight.zero_()
        module.sampling_offsets.bias.zero_()
    return module


def _expected(module, x, y_values):
    out = module.output_proj(y_values.flatten(2).transpose(1, 2)).transpose(1, 2)
    return x + out.reshape(x.shape)


def test_zero_offsets_sample_the_same_position():
    torch.manual_seed(0)
    align = _static(CrossAlignment(6, 5, embed_dim=8, heads=2, points=1))
    x, y = torch.randn(2, 6, 4, 3), torch.randn(2, 5, 4, 3)
    with torch.no_grad():
        out = align(x, y)
        assert torch.allclose(out, _expected(align, x, align.value_proj(y)), atol=1e-5)


def test_other_map_of_twice_the_size_is_interpolated():
    torch.manual_seed(1)
    align = _static(CrossAlignment(6, 5, embed_dim=8, heads=4, points=1))
    x, y = torch.randn(1, 6, 4, 3), torch.randn(1, 5, 8, 6)
    with torch.no_grad():
        out = align(x, y)
        # centres of the small map fall between 2x2 pixels of the large one
        pooled = F.avg_pool2d(align.value_proj(y), 2)
        assert torch.allclose(out, _expected(align, x, pooled), atol=1e-5)


def test_homography_translation_shifts_the_sampling():
    torch.manual_seed(2)
    shift = homography_matrix([1, 0, 0.25, 0, 1, 0, 0, 0, 1])     # +1/4 width = 1 pixel of 4
    align = _static(CrossAlignment(3, 3, embed_dim=4, heads=2, points=1, homography=shift))
    x, y = torch.randn(1, 3, 2, 4), torch.randn(1, 3, 2, 4)
    with torch.no_grad():
        v = align.value_proj(y)
        shifted = torch.cat([v[..., 1:], torch.zeros_like(v[..., :1])], -1)   # zeros outside
        assert torch.allclose(align(x, y), _expected(align, x, shifted), atol=1e-5)


def test_reference_points_and_homography_validation():
    pts = reference_points(2, 4, torch.eye(3))
    assert torch.allclose(pts[:4, 0], torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert torch.allclose(pts[::4, 1], torch.tensor([0.25, 0.75]))
    assert torch.equal(homography_matrix(None), torch.eye(3))
    with pytest.raises(EvreidError, match="9 numbers"):
        homography_matrix([1, 0, 0])
    with pytest.raises(EvreidError, match="singular"):
        homography_matrix([1, 0, 0, 1, 0, 0, 0, 0, 1])
    with pytest.raises(EvreidError, match="multiple of"):
        CrossAlignment(4, 4, embed_dim=10, heads=4)


def test_any_map_size_and_gradients_reach_offsets():
    torch.manual_seed(3)
    align = CrossAlignment(8, 4, embed_dim=16, heads=8, points=4)
    for hq, wq, hv, wv in [(5, 3, 5, 3), (7, 2, 3, 9), (1, 1, 2, 2)]:
        x, y = torch.randn(2, 8, hq, wq), torch.randn(2, 4, hv, wv, requires_grad=True)
        out = align(x, y)
        assert out.shape == x.shape
        align.zero_grad()
        out.square().sum().backward()
        assert align.sampling_offsets.weight.grad.abs().sum() > 0
        assert y.grad.abs().sum() > 0


def test_same_grid_shortcut_equals_sampling_at_pixel_centres():
    torch.manual_seed(4)
    align = CrossAlignment(6, 5, embed_dim=8, heads=2, points=3)
    x, y = torch.randn(2, 6, 5, 3), torch.randn(2, 5, 5, 3)
    with torch.no_grad():
        fast = align(x, y)
        align._identity = False                      # force the grid_sample path
        sampled = align(x, y)
    assert torch.allclose(fast, sampled, atol=1e-5)


def _zero_offsets(module: CrossAlignment, dz: float = 0.0) -> CrossAlignment:
    """All offsets zero except a fixed dz (fraction of the frame interval)."""
    _static(module)
    with torch.no_grad():
        module.sampling_offsets.bias.view(-1, 3)[:, 2] = dz
    return module


def _proj(module, v):
    """output_proj(value_proj(v)) for a [N, C, h, w] map, as [N, Cq, h, w]."""
    out = module.output_proj(module.value_proj(v).permute(0, 2, 3, 1))
    return out.permute(0, 3, 1, 2)


def test_frame_query_on_a_voxel_reads_the_middle_bin_at_zero_offsets():
    torch.manual_seed(5)
    align = _zero_offsets(CrossAlignment(6, 5, embed_dim=8, heads=2, points=3))
    x, vox = torch.randn(2, 6, 4, 3), torch.randn(2, 3, 5, 4, 3)
    with torch.no_grad():
        out = align(x, vox)
        # reference z = 0.5: the centre of bin 1 of 3, exactly
        assert torch.allclose(out, x + _proj(align, vox[:, 1]), atol=1e-5)


def test_voxel_query_reads_its_own_bin_and_dz_moves_along_time():
    torch.manual_seed(6)
    align = _zero_offsets(CrossAlignment(6, 5, embed_dim=8, heads=2, points=2))
    q, vox = torch.randn(2, 4, 6, 3, 5), torch.randn(2, 4, 5, 3, 5)
    with torch.no_grad():
        out = align(q, vox)
        assert out.shape == q.shape
        for z in range(4):
            assert torch.allclose(out[:, z], q[:, z] + _proj(align, vox[:, z]), atol=1e-5)
        # dz = one bin (1/4 of the interval) later; the last bin is clamped to itself
        _zero_offsets(align, dz=0.25)
        out = align(q, vox)
        for z in range(4):
            src = vox[:, min(z + 1, 3)]
            assert torch.allclose(out[:, z], q[:, z] + _proj(align, src), atol=1e-5)
        # half a bin: the mean of two neighbouring bins (trilinear in time)
        _zero_offsets(align, dz=0.125)
        out = align(q, vox)
        mid = _proj(align, (vox[:, 1] + vox[:, 2]) / 2)
        assert torch.allclose(out[:, 1], q[:, 1] + mid, atol=1e-5)


def test_voxel_query_on_a_frame_map_every_bin_reads_the_frame():
    torch.manual_seed(7)
    align = _zero_offsets(CrossAlignment(6, 5, embed_dim=8, heads=2, points=2), dz=0.3)
    q, frame = torch.randn(2, 3, 6, 4, 3), torch.randn(2, 5, 4, 3)
    with torch.no_grad():
        out = align(q, frame)
        for z in range(3):
            assert torch.allclose(out[:, z], q[:, z] + _proj(align, frame), atol=1e-5)
    with pytest.raises(EvreidError, match=r"\[N, Z, C, h, w\]"):
        align(q[0, 0, 0], frame)
    with pytest.raises(EvreidError, match="depths differ"):
        align(q, torch.randn(2, 2, 5, 4, 3))


def test_initial_points_spread_over_the_interval_and_gradients_reach_every_bin():
    torch.manual_seed(8)
    align = CrossAlignment(6, 5, embed_dim=8, heads=2, points=4)
    dz = align.sampling_offsets.bias.view(2, 4, 3)[..., 2]
    assert torch.allclose(dz[0], torch.tensor([-0.375, -0.125, 0.125, 0.375]))
    vox = torch.randn(2, 3, 5, 4, 3, requires_grad=True)
    align(torch.randn(2, 6, 4, 3), vox).square().sum().backward()
    assert (vox.grad.abs().sum(dim=(0, 2, 3, 4)) > 0).all()


def test_sampling_runs_in_the_autocast_dtype():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Dtypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if "grid_sampler" in str(func):
                self.seen.append((args[0].dtype, args[1].dtype))
            return func(*args, **(kwargs or {}))

    align = CrossAlignment(6, 5, embed_dim=8, heads=2, points=2)
    with torch.autocast("cpu", dtype=torch.bfloat16), Dtypes() as mode:
        out = align(torch.randn(2, 6, 4, 3), torch.randn(2, 3, 5, 4, 3))
    assert out.shape == (2, 6, 4, 3)
    assert mode.seen and all(d == (torch.bfloat16, torch.bfloat16) for d in mode.seen)
