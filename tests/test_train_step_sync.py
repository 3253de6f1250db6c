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
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.config import load_config
from evreid.data import build_dataset_from_cfg
from evreid.engine.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# calls that read a value back or size an output by the data
SYNC_OPS = {"_local_scalar_dense", "item", "nonzero", "masked_select", "is_nonzero", "equal",
            "allclose", "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "histc", "_assert_async", "repeat_interleave", "tolist"}


class StepSyncDetector(TorchDispatchMode):
    """Records the syncing ATen calls on tensors other than the ``host`` ones and the
    ``optimizer``'s step counters (created in its first step, so looked up then)."""

    def __init__(self, host: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.host = {t.untyped_storage().data_ptr() for t in host}
        self.optimizer = optimizer
        self.syncs: list[str] = []

    def _on_device(self, args) -> bool:
        host = self.host | {s["step"].untyped_storage().data_ptr()
                            for s in self.optimizer.state.values() if "step" in s}
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        return any(t.untyped_storage().data_ptr() not in host for t in tensors)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in SYNC_OPS and self._on_device(args) and not (
                name == "repeat_interleave" and kwargs.get("output_size") is not None):
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
