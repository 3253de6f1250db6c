"""No device-to-host synchronisation in any model's forward or backward.

A TorchDispatchMode sees every ATen call of a training forward + backward on
a tiny config; calls that must wait for the device (a scalar read back, an
output whose shape depends on the data, a copy to the host) fail the test.
On a GPU each would stall the launch queue once per step and stop CUDA
graphs / torch.compile from capturing the step.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evreid.config import load_config, preset_path
from evreid.models import MODELS, build_model
from sync_detector import HostSyncDetector

CONFIGS = preset_path("sdcl_cpu").parent   # the presets shipped in the package

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _step_syncs(model: nn.Module, frames: torch.Tensor, events: torch.Tensor | None) -> list:
    with HostSyncDetector() as detector:
        logits, feats = model(frames, events)
        loss = sum(t.float().square().mean() for t in (*logits, *feats))
        loss.backward()
    return detector.syncs


def _inputs(cfg, batch: int = 2):
    g = torch.Generator().manual_seed(0)
    h, w = cfg.INPUT.SIZE_TRAIN
    T, bins = cfg.INPUT.SEQ_LEN, cfg.EVENTS.BINS
    frames = torch.randn(batch, T, 3, h, w, generator=g)
    events = (torch.rand(batch, T, bins, 2, h, w, generator=g) < 0.05).float()
    return frames, events


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_train_step_has_no_host_sync(arch):
    torch.manual_seed(0)
    cfg = load_config(CONFIGS / "sdcl_cpu.yaml", ["MODEL.ARCH", arch])
    model = build_model(cfg, 5).train()
    frames, events = _inputs(cfg)
    syncs = _step_syncs(model, frames, events if model.uses_events else None)
    assert syncs == [], f"{arch}: host syncs in forward/backward: {sorted(set(syncs))}"


class _Leaky(nn.Module):
    """What the detector must catch: each a classic sync hidden in a forward."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        if self.how == "item":
            return y * y.abs().max().item()
        if self.how == "any":
            return y * 2 if (y > 0).any() else y
        if self.how == "mask":
            return y[y > 0].sum() + y.sum()
        return y[torch.nonzero(y > 0, as_tuple=True)].sum() + y.sum()


@pytest.mark.parametrize("how", ["item", "any", "mask", "nonzero"])
def test_detector_catches_the_usual_syncs(how):
    with HostSyncDetector() as detector:
        _Leaky(how)(torch.randn(3, 4)).sum().backward()
    assert detector.syncs, how
