"""The host-sync detector both sync tests use (model forward/backward, trainer step).

A TorchDispatchMode that records ATen calls which must wait for the device: a
value read back, an output sized by the data (boolean-mask indexing included),
a copy from a device to the host. Subclasses narrow ``on_device`` to ignore
tensors that live on the host even on a GPU.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# read a value back, or size an output by the data
SYNC_OPS = {"_local_scalar_dense", "item", "nonzero", "masked_select", "is_nonzero", "equal",
            "allclose", "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "histc", "_assert_async", "repeat_interleave", "tolist"}


class HostSyncDetector(TorchDispatchMode):
    """Records the syncing calls in ``self.syncs`` (see :data:`SYNC_OPS`)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []

    def on_device(self, args) -> bool:
        """Whether a syncing call on ``args`` would wait for a device (all do here)."""
        return True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in SYNC_OPS and self.on_device(args) and not (
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
