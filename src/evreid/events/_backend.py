"""A tiny array shim so the simulator core is written once for NumPy and torch.

Why not just torch everywhere: the NumPy path must work (and be fast) without
touching torch, and tests compare both paths event for event. The core uses
only the operations below; each is an IEEE-exact elementwise op, a gather /
scatter or a stable sort, so the two backends give bit-identical results for
the same float64 inputs on CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NumpyOps:
    name = "numpy"

    # Elementwise ops are the NumPy functions themselves: no wrapper call per op (the
    # simulator makes hundreds of calls per frame).
    repeat = staticmethod(np.repeat)
    cat = staticmethod(np.concatenate)
    where = staticmethod(np.where)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    rint = staticmethod(np.rint)
    exp = staticmethod(np.exp)
    abs = staticmethod(np.abs)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    clip = staticmethod(np.clip)

    def float64(self, a: Any) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)

    def int64(self, a: Any) -> np.ndarray:
        return np.asarray(a).astype(np.int64, copy=False)

    def int8(self, a: Any) -> np.ndarray:
        return np.asarray(a).astype(np.int8, copy=False)

    def numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def zeros(self, n: int, dtype: str) -> np.ndarray:
        return np.zeros(n, dtype=dtype)

    def full(self, n: int, value: float | int, dtype: str) -> np.ndarray:
        return np.full(n, value, dtype=dtype)

    def arange(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def nonzero(self, a: np.ndarray) -> np.ndarray:
        return a.nonzero()[0]       # 1-D only: the simulator's arrays are flat

    def cumsum(self, a: np.ndarray) -> np.ndarray:
        return a.cumsum()

    def cummax(self, a: np.ndarray) -> np.ndarray:
        return np.maximum.accumulate(a)

    def argsort(self, a: np.ndarray, bound: int | None = None) -> np.ndarray:
        """Stable argsort; 16-bit keys take NumPy's O(n) radix sort.

        ``bound``: the integer keys are known to lie in [0, bound), which spares the
        range check; keys below 2**32 then take two 16-bit radix passes (low half,
        then high half, both stable), many times faster than a comparison sort.
        """
        if bound is not None:
            small = bound <= 65536
            if not small and bound <= 2**32:
                order = np.argsort((a & 0xFFFF).astype(np.uint16), kind="stable")
                high = (a >> 16).astype(np.uint16)
                return order[np.argsort(high[order], kind="stable")]
        else:
            small = a.size and a.dtype.kind in "iu" and a.min() >= 0 and a.max() < 65536
        if small:
            a = a.astype(np.uint16)
        return np.argsort(a, kind="stable")

    def index_add(self, target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
        np.add.at(target, index, values)

    def any(self, a: np.ndarray) -> bool:
        return bool(a.any())

    def all(self, a: np.ndarray) -> bool:
        return bool(a.all())

    def max(self, a: np.ndarray) -> float:
        return a.max().item()

    def copy(self, a: np.ndarray) -> np.ndarray:
        return a.copy()


class TorchOps:
    """Same operations on torch tensors of one device."""

    name = "torch"

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        from evreid.utils import torch_device

        self.device = torch_device(device, "simulator device",
                                   "numpy, numba, cpu, cuda, cuda:N or auto")
        self._dtypes = {"float64": torch.float64, "int64": torch.int64, "int8": torch.int8,
                        "bool": torch.bool}

    def float64(self, a: Any) -> Any:
        if isinstance(a, self.torch.Tensor):
            return a.to(self.torch.float64)
        return self.torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.device)

    def int64(self, a: Any) -> Any:
        if isinstance(a, self.torch.Tensor):
            return a.to(self.torch.int64)
        return self.torch.as_tensor(np.asarray(a).astype(np.int64), device=self.device)

    def int8(self, a: Any) -> Any:
        if isinstance(a, self.torch.Tensor):
            return a.to(self.torch.int8)
        return self.torch.as_tensor(np.asarray(a).astype(np.int8), device=self.device)

    def numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    def zeros(self, n: int, dtype: str) -> Any:
        return self.torch.zeros(n, dtype=self._dtypes[dtype], device=self.device)

    def full(self, n: int, value: float | int, dtype: str) -> Any:
        return self.torch.full((n,), value, dtype=self._dtypes[dtype], device=self.device)

    def arange(self, n: int) -> Any:
        return self.torch.arange(n, dtype=self.torch.int64, device=self.device)

    def nonzero(self, a: Any) -> Any:
        return self.torch.nonzero(a, as_tuple=True)[0]

    def repeat(self, a: Any, counts: Any) -> Any:
        return self.torch.repeat_interleave(a, counts)

    def cumsum(self, a: Any) -> Any:
        return self.torch.cumsum(a, 0)

    def cummax(self, a: Any) -> Any:
        return self.torch.cummax(a, 0).values

    def argsort(self, a: Any, bound: int | None = None) -> Any:
        return self.torch.sort(a, stable=True).indices

    def cat(self, parts: list) -> Any:
        return self.torch.cat(parts)

    def index_add(self, target: Any, index: Any, values: Any) -> None:
        target.index_add_(0, index, values.to(target.dtype))

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        torch = self.torch
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            a = torch.as_tensor(a, device=self.device)
        return torch.where(cond, a, b)

    def floor(self, a: Any) -> Any:
        return self.torch.floor(a)

    def ceil(self, a: Any) -> Any:
        return self.torch.ceil(a)

    def rint(self, a: Any) -> Any:
        return self.torch.round(a)  # round half to even, as np.rint

    def exp(self, a: Any) -> Any:
        return self.torch.exp(a)

    def abs(self, a: Any) -> Any:
        return self.torch.abs(a)

    def _t(self, a: Any, like: Any) -> Any:
        if isinstance(a, self.torch.Tensor):
            return a
        return self.torch.as_tensor(a, dtype=like.dtype, device=self.device)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.torch.maximum(a, self._t(b, a))

    def minimum(self, a: Any, b: Any) -> Any:
        return self.torch.minimum(a, self._t(b, a))

    def clip(self, a: Any, lo: Any, hi: Any) -> Any:
        return self.torch.clamp(a, lo, hi)

    def any(self, a: Any) -> bool:
        return bool(a.any())

    def all(self, a: Any) -> bool:
        return bool(a.all())

    def max(self, a: Any) -> float:
        return a.max().item()

    def copy(self, a: Any) -> Any:
        return a.clone()


def get_ops(device: str | None) -> NumpyOps | TorchOps:
    """NumPy for ``device=None``; torch on ``device`` ("cpu", "cuda", "auto") otherwise."""
    if device is None:
        return NumpyOps()
    return TorchOps(device)
