"""The event branch: spiking encoder + sparse event mappings, time axis kept."""

from __future__ import annotations

import pytest
import torch

from evreid.config import get_cfg
from evreid.errors import EvreidError
from evreid.models.event_branch import build_event_branch


def _branch(**deform):
    cfg = get_cfg()
    cfg.MODEL.SNN.WIDTH = 8
    cfg.MODEL.DEFORM.CHANNELS = 6
    for k, v in deform.items():
        setattr(cfg.MODEL.DEFORM, k, v)
    torch.manual_seed(0)
    branch = build_event_branch(cfg.MODEL)
    with torch.no_grad():
        # BN at init is the identity in eval mode: excitatory weights so both layers
        # fire on sparse events
        for layer in branch.encoder.layers:
            layer.conv.weight.abs_().mul_(4)
    return branch


def test_voxel_shape_and_zero_exactly_where_no_key_event():
    branch = _branch().eval()
    events = (torch.rand(2, 3, 4, 2, 32, 16) < 0.02).float() * 2
    with torch.no_grad():
        vox = branch(events)
        spikes = branch.encoder.forward_spikes(events)           # [S, B, C, h, w]
    assert vox.shape == (2 * 3, 4, 6, 8, 4)
    assert branch.out_channels == 6
    # key events: where the last spiking layer fired, per step (b, t, z)
    key = (spikes.amax(2) > 0).transpose(0, 1).reshape(2, 3, 4, 8, 4).flatten(0, 1)
    assert 0 < key.float().mean() < 1
    assert vox.abs().sum(2)[~key].sum() == 0
    assert (vox.abs().sum(2)[key] > 0).float().mean() > 0.5
    assert branch.key_fraction() == pytest.approx(float(key.float().mean()))


def test_time_axis_is_kept_and_clips_stay_apart():
    branch = _branch().eval()
    events = torch.zeros(2, 3, 3, 2, 32, 16)
    events[0, 1, 2] = (torch.rand(2, 32, 16) < 0.3).float() * 3    # frame 1, last bin only
    with torch.no_grad():
        vox = branch(events).view(2, 3, 3, 6, 8, 4)
    assert vox[0, 0].abs().sum() == 0                          # before the events
    assert vox[0, 1, :2].abs().sum() == 0                      # earlier bins of that frame
    assert vox[0, 1, 2].abs().sum() > 0                        # the bin with events
    assert vox[1].abs().sum() == 0                             # the other clip saw nothing


def test_gradients_reach_the_encoder_and_every_mapping():
    branch = _branch(MAPPINGS=2, RADIUS=3).train()
    events = (torch.rand(2, 2, 3, 2, 32, 16) < 0.1).float()
    vox = branch(events)
    vox.square().sum().backward()
    assert len(branch.mappings.mappings) == 2 and branch.mappings.search.radius == 3
    assert branch.encoder.layers[0].conv.weight.grad.abs().sum() > 0
    assert all(m.weight.grad.abs().sum() > 0 for m in branch.mappings.mappings)
    assert set(branch.firing_rates()) == {"snn.layer0", "snn.layer1"}
    assert branch.synops() > 0


def test_bad_input_and_radius():
    branch = _branch()
    with pytest.raises(EvreidError, match=r"\[B, T, bins, 2, H, W\]"):
        branch(torch.zeros(2, 3, 2, 32, 16))
    with pytest.raises(EvreidError, match="MODEL.DEFORM.RADIUS"):
        _branch(RADIUS=1)


def test_branch_and_alignment_capture_as_one_graph():
    """torch.compile(fullgraph=True) fails on any graph break (a host read, a
    data-dependent branch or shape): the event side can be captured whole."""
    from evreid.models.alignment import CrossAlignment

    branch = _branch().train()
    events = (torch.rand(2, 2, 3, 2, 32, 16) < 0.1).float()
    compiled = torch.compile(branch, fullgraph=True, backend="eager")
    vox = compiled(events)
    vox.sum().backward()
    assert torch.allclose(vox, branch(events))
    align = CrossAlignment(6, 6, embed_dim=4, heads=2, points=2)
    aligned = torch.compile(align, fullgraph=True, backend="eager")
    frames = torch.randn(4, 6, 8, 4)
    assert aligned(frames, vox.detach()).shape == frames.shape
    assert aligned(vox.detach(), frames).shape == vox.shape
