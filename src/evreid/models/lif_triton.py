"""Triton kernels of the multi-step LIF recurrence (CUDA implementation of
``evreid::lif_multistep`` and its backward; see :mod:`evreid.models.snn`).

One program per block of neurons runs the whole time loop with the membrane
in registers: S steps cost one launch instead of a few kernels per step.
Arithmetic in fp32 whatever the storage dtype (the reference computes in the
storage dtype, so bf16 / fp16 results may differ by rounding; fp32 agrees up
to a fused multiply-add).

``AVAILABLE`` is False when Triton cannot be imported; the operator then
falls back to its loop of torch kernels. With ``TRITON_INTERPRET=1`` the
kernels run on CPU tensors (how the tests check them without a GPU).
"""

from __future__ import annotations

import math

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None
    tl = None

AVAILABLE = triton is not None

__all__ = ["AVAILABLE", "lif_forward", "lif_backward"]

BLOCK = 512
SURROGATE_CODES = {"atan": 0, "sigmoid": 1}

if AVAILABLE:

    @triton.jit
    def _forward_kernel(cur_ptr, spk_ptr, mem_ptr, steps, numel, decay, threshold,
                        BLOCK_SIZE: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < numel
        v = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
        keep = tl.zeros([BLOCK_SIZE], dtype=tl.float32) + decay
        for t in range(steps):
            at = t * numel + offs
            i = tl.load(cur_ptr + at, mask=mask, other=0.0).to(tl.float32)
            v = v * keep + i
            s = (v >= threshold).to(tl.float32)
            tl.store(mem_ptr + at, v.to(mem_ptr.dtype.element_ty), mask=mask)
            tl.store(spk_ptr + at, s.to(spk_ptr.dtype.element_ty), mask=mask)
            keep = (1.0 - s) * decay

    @triton.jit
    def _backward_kernel(gs_ptr, mem_ptr, spk_ptr, gi_ptr, steps, numel, decay, threshold,
                         alpha, SURROGATE: tl.constexpr, DETACH_RESET: tl.constexpr,
                         BLOCK_SIZE: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < numel
        g = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
        for k in range(steps):
            at = (steps - 1 - k) * numel + offs
            v = tl.load(mem_ptr + at, mask=mask, other=0.0).to(tl.float32)
            s = tl.load(spk_ptr + at, mask=mask, other=0.0).to(tl.float32)
            gs = tl.load(gs_ptr + at, mask=mask, other=0.0).to(tl.float32)
            x = v - threshold
            if SURROGATE == 0:
                y = 1.5707963267948966 * alpha * x
                sg = alpha / 2 / (1 + y * y)
            else:
                sig = 1.0 / (1.0 + tl.exp(-alpha * x))
                sg = alpha * sig * (1.0 - sig)
            c = (1.0 - s) * decay
            if not DETACH_RESET:
                c = c - v * sg * decay
            g = gs * sg + c * g
            tl.store(gi_ptr + at, g.to(gi_ptr.dtype.element_ty), mask=mask)


def _grid(numel: int) -> tuple[int]:
    return (max(1, math.ceil(numel / BLOCK)),)


def lif_forward(current: torch.Tensor, decay: float,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, membrane) of a contiguous ``[S, ...]`` current."""
    current = current.contiguous()
    spikes, mem = torch.empty_like(current), torch.empty_like(current)
    steps = current.shape[0]
    numel = current.numel() // max(1, steps)
    if current.numel():
        _forward_kernel[_grid(numel)](current, spikes, mem, steps, numel, float(decay),
                                      float(threshold), BLOCK_SIZE=BLOCK)
    return spikes, mem


def lif_backward(grad_spikes: torch.Tensor, mem: torch.Tensor, spikes: torch.Tensor,
                 decay: float, threshold: float, surrogate: str, alpha: float,
                 detach_reset: bool) -> torch.Tensor:
    """dL/dI from dL/dS and the saved membrane and spikes (all ``[S, ...]``)."""
    grad_spikes = grad_spikes.contiguous()
    grad = torch.empty_like(mem)
    steps = mem.shape[0]
    numel = mem.numel() // max(1, steps)
    if mem.numel():
        _backward_kernel[_grid(numel)](grad_spikes, mem.contiguous(), spikes.contiguous(), grad,
                                       steps, numel, float(decay), float(threshold),
                                       float(alpha), SURROGATE=SURROGATE_CODES[surrogate],
                                       DETACH_RESET=bool(detach_reset), BLOCK_SIZE=BLOCK)
    return grad
