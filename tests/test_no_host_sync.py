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
from torch.utils._python_dispatch import TorchDispatchMode

from evreid.config import load_config, preset_path
from evreid.models import MODELS, build_model

CONFIGS = preset_path("sdcl_cpu").parent   # the presets shipped in the package

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# read a value back, or size an output by the data
SYNC_OPS = {"_local_scalar_dense", "item", "nonzero", "masked_select", "is_nonzero", "equal",
            "allclose", "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "histc", "_assert_async", "repeat_interleave"}


class HostSyncDetector(TorchDispatchMode):
    """Records ATen calls that synchronise with the host (see :data:`SYNC_OPS`),
    boolean-mask indexing (its output size is the mask's count) and copies
    from a device to the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in SYNC_OPS and not (name == "repeat_interleave"
                                     and kwargs.get("output_size") is not None):
            self.syncs.append(str(func))
        elif name in ("index", "index_put", "index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for i in (args[1] if len(args) > 1 else ()) if i is not None):
            self.syncs.append(f"{func} with a boolean mask")
        elif name in ("_to_copy", "copy_"):
            src = args[1] if name == "copy_" else args[0]
            dst = args[0].device if name == "copy_" else kwargs.get("device", src.device)
            if src.device.type != "cpu" and torch.device(dst).type == "cpu":
                self.syncs.append(f"{func} to the host")
        return func(*args, **kwargs)


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
