"""No device-to-host sync in the trainer's step between LOG_PERIOD boundaries.

``Trainer.train`` reads values back (NaN check, logged scalars) only every
``SOLVER.LOG_PERIOD`` steps. A sync inside ``Trainer._train_step`` -- an
``.item()``, a ``bool(tensor)``, a data-sized output, a copy to the host --
would stall a GPU's launch queue once per step. The test runs a real epoch of
SDCL (events computed on the fly, so the batch carries compact counts) with a
TorchDispatchMode around every step, and fails on any ATen call that would wait
for the device. On CPU every tensor is a host tensor, so the detector tells
apart the tensors that also live on the host on a GPU: the loader's batch (a
pinned CPU tensor there) and the optimizer's step counters (CPU tensors in
torch's non-capturable Adam / SGD); reading those is no device sync.
"""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.config import load_config
from evreid.data import build_dataset_from_cfg
from evreid.engine.trainer import Trainer
from sync_detector import HostSyncDetector

pytestmark = pytest.mark.usefixtures("one_torch_thread")

class StepSyncDetector(HostSyncDetector):
    """Ignores the ``host`` tensors and the ``optimizer``'s step counters (created in
    its first step, so looked up at each call)."""

    def __init__(self, host: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.host = {t.untyped_storage().data_ptr() for t in host}
        self.optimizer = optimizer

    def on_device(self, args) -> bool:
        host = self.host | {s["step"].untyped_storage().data_ptr()
                            for s in self.optimizer.state.values() if "step" in s}
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        return any(t.untyped_storage().data_ptr() not in host for t in tensors)


def _trainer(tmp_path, log_period: int) -> Trainer:
    root = tmp_path / "data"
    make_tiny_reid(root, ids=8, frames=6)
    opts = TINY_TRAIN_OPTS + [
        "DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR", str(tmp_path / "run"),
        "SOLVER.MAX_EPOCHS", "1", "SOLVER.EVAL_PERIOD", "5", "SOLVER.LOG_PERIOD",
        str(log_period), "MODEL.ARCH", "sdcl", "EVENTS.ENABLED", "True",
        "EVENTS.SOURCE", "simulate", "EVENTS.DTYPE", "uint8", "SOLVER.GRAD_CLIP", "5.0"]
    cfg = load_config(None, opts)
    return Trainer(cfg, build_dataset_from_cfg(cfg), show_progress=False)


def _watch_steps(trainer: Trainer, monkeypatch, leak=None) -> list[list[str]]:
    """Run ``trainer``'s epoch with a detector around each step; per step its syncs."""
    original = Trainer._train_step
    found: list[list[str]] = []

    def watched(self, batch):
        host = [v for v in batch.values() if isinstance(v, torch.Tensor)]
        with StepSyncDetector(host, self.optimizer) as detector:
            out = original(self, batch)
            if leak is not None:
                leak(out)
        found.append(detector.syncs)
        return out

    monkeypatch.setattr(Trainer, "_train_step", watched)
    trainer.train()
    return found


def test_train_step_reads_nothing_back_between_log_periods(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, log_period=100)
    steps = _watch_steps(trainer, monkeypatch)
    assert len(steps) >= 2 and trainer.uses_events
    assert all(s == [] for s in steps), f"host syncs in Trainer._train_step: {steps}"


@pytest.mark.parametrize("how", ["item", "bool", "mask"])
def test_the_detector_fails_a_step_that_syncs(tmp_path, monkeypatch, how):
    """What the test above must catch: the usual ways a step reads a value back."""
    leaks = {"item": lambda out: out["loss"].item(),
             "bool": lambda out: bool(out["loss"] > 0),
             "mask": lambda out: out["ce"][out["ce"] > 0].sum()}
    steps = _watch_steps(_trainer(tmp_path, log_period=100), monkeypatch, leaks[how])
    assert steps and all(s for s in steps), how
