"""The Triton LIF kernels (CUDA implementation of evreid::lif_multistep) against the
reference autograd function. Without a GPU they run in Triton's interpreter
(TRITON_INTERPRET=1, set before Triton is imported: a fresh process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

CHECK = """
import torch
from evreid.models import lif_triton
from evreid.models.snn import LIFNeuron
assert lif_triton.AVAILABLE
dev = "cuda" if torch.cuda.is_available() else "cpu"
for surrogate in ("atan", "sigmoid"):
    for detach in (False, True):
        torch.manual_seed(0)
        lif = LIFNeuron(0.6, 0.7, surrogate, 2.5, detach)
        x = (torch.randn(24, 3, 5, 37, device=dev) * 0.8 + 0.2).requires_grad_()
        g = torch.randn_like(x)
        ref = lif.forward_reference(x)
        (ref * g).sum().backward()
        spikes, mem = lif_triton.lif_forward(x.detach(), 0.6, 0.7)
        grad = lif_triton.lif_backward(g, mem, spikes, 0.6, 0.7, surrogate, 2.5, detach)
        assert torch.equal(spikes, ref), (surrogate, detach)
        assert 0.05 < float(spikes.mean()) < 0.95
        assert torch.allclose(grad, x.grad, atol=1e-5, rtol=1e-5), (surrogate, detach)
        if dev == "cuda":                      # through the operator's CUDA kernel
            x.grad = None
            (lif(x) * g).sum().backward()
            assert torch.allclose(x.grad, grad, atol=1e-6)
print("ok")
"""


def test_triton_kernels_equal_the_reference():
    pytest.importorskip("triton")
    env = dict(os.environ)
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
