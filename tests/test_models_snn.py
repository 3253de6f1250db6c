"""LIF neurons and the spiking encoder."""

from __future__ import annotations

import math

import pytest
import torch

from evreid.errors import EvreidError
from evreid.models.snn import LIFNeuron, SpikingEncoder, spike_fn


def test_lif_hand_computed_sequence():
    # decay 0.5, threshold 1: V = 0.6, 0.9, 1.05 (spike), 0 + 1.5 (spike), 0 + 0.2
    lif = LIFNeuron(decay=0.5, threshold=1.0)
    current = torch.tensor([0.6, 0.6, 0.6, 1.5, 0.2]).view(5, 1)
    assert lif(current).view(-1).tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    v, s = torch.zeros(1), torch.zeros(1)
    vs = []
    for t in range(5):
        s, v = lif.step(current[t], v, s)
        vs.append(round(float(v), 6))
    assert vs == [0.6, 0.9, 1.05, 1.5, 0.2]


def test_threshold_is_inclusive_and_surrogates_have_expected_slope():
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    assert spike_fn(x, "atan", 2.0).tolist() == [0.0, 1.0, 1.0]
    spike_fn(x, "atan", 2.0).sum().backward()
    expected = [1 / (1 + (math.pi / 2 * 2 * v) ** 2) for v in (-0.5, 0.0, 0.5)]
    assert torch.allclose(x.grad, torch.tensor(expected))
    x.grad = None
    spike_fn(x, "sigmoid", 4.0).sum().backward()
    s = torch.sigmoid(4 * x.detach())
    assert torch.allclose(x.grad, 4 * s * (1 - s))


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_operator_equals_the_reference_autograd_function(surrogate, detach_reset, dtype):
    torch.manual_seed(0)
    lif = LIFNeuron(decay=0.6, threshold=0.7, surrogate=surrogate, alpha=2.5,
                    detach_reset=detach_reset)
    x = (torch.randn(24, 3, 5, 7, dtype=dtype) * 0.8 + 0.2).requires_grad_()
    g = torch.randn(24, 3, 5, 7, dtype=dtype)
    out = lif(x)
    (out * g).sum().backward()
    grad, x.grad = x.grad.clone(), None
    ref = lif.forward_reference(x)
    (ref * g).sum().backward()
    assert torch.equal(out, ref)
    assert 0.05 < out.mean() < 0.95
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(grad, x.grad, atol=tol, rtol=tol)


def test_operator_is_one_call_forward_and_backward():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Calls(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view:                  # (detach etc. launch nothing)
                self.names.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    x = torch.randn(48, 2, 8, requires_grad=True)
    with Calls() as fwd:
        spikes = LIFNeuron()(x)
    with Calls() as bwd:
        spikes.sum().backward()
    # whatever the number of steps: one operator each way, no per-step kernels
    assert fwd.names == ["evreid.lif_multistep"]
    assert bwd.names.count("evreid.lif_multistep_backward") == 1
    assert len(bwd.names) < 10


def test_torch_without_custom_op_runs_the_reference_node(monkeypatch):
    # torch < 2.4 has no torch.library.custom_op: the same spikes and gradients
    import evreid.models.snn as snn

    lif = LIFNeuron(decay=0.6, threshold=0.8)
    current = torch.randn(7, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a, b = current.clone().requires_grad_(), current.clone().requires_grad_()
    fused = lif(a)
    monkeypatch.setattr(snn, "HAS_LIF_OP", False)
    fallback = lif(b)
    assert torch.equal(fused, fallback)
    fused.sum().backward()
    fallback.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_fused_multistep_equals_step_loop(surrogate, detach_reset):
    torch.manual_seed(0)
    lif = LIFNeuron(decay=0.7, threshold=0.8, surrogate=surrogate, alpha=3.0,
                    detach_reset=detach_reset)
    x = torch.randn(12, 4, 6, requires_grad=True)
    g = torch.randn(12, 4, 6)
    fused = lif(x)
    (fused * g).sum().backward()
    grad_fused, x.grad = x.grad.clone(), None
    ref = lif.forward_steps(x)
    (ref * g).sum().backward()
    assert torch.equal(fused, ref)
    assert 0 < fused.mean() < 1
    assert torch.allclose(grad_fused, x.grad, atol=1e-6)


def test_detach_reset_changes_gradient_only():
    torch.manual_seed(1)
    x = torch.randn(8, 50, requires_grad=True)
    grads = []
    for detach in (False, True):
        out = LIFNeuron(0.9, 0.5, detach_reset=detach)(x)
        x.grad = None
        out.sum().backward()
        grads.append((out.detach(), x.grad.clone()))
    assert torch.equal(grads[0][0], grads[1][0])
    assert not torch.allclose(grads[0][1], grads[1][1])


def test_matches_snntorch_leaky_step_for_step():
    snn = pytest.importorskip("snntorch")
    from snntorch import surrogate

    torch.manual_seed(2)
    decay, threshold, alpha = 0.6, 0.7, 2.0
    ours = LIFNeuron(decay, threshold, "atan", alpha, detach_reset=True)
    leaky = snn.Leaky(beta=decay, threshold=threshold, spike_grad=surrogate.atan(alpha),
                      reset_mechanism="zero")
    x = (torch.randn(20, 3, 16) * 0.8 + 0.3).requires_grad_()
    mem = leaky.init_leaky()
    ref_spikes, ref_mems = [], []
    for t in range(x.shape[0]):
        spk, mem = leaky(x[t], mem)
        ref_spikes.append(spk)
        ref_mems.append(mem)
    ref = torch.stack(ref_spikes)
    v, s = torch.zeros(3, 16), torch.zeros(3, 16)
    for t in range(x.shape[0]):
        s, v = ours.step(x[t], v, s)
        assert torch.allclose(v, ref_mems[t], atol=1e-6), t
    g = torch.randn_like(ref)
    (ref * g).sum().backward()
    grad_ref, x.grad = x.grad.clone(), None
    out = ours(x)
    (out * g).sum().backward()
    assert torch.equal(out, ref)
    assert 0 < out.mean() < 1
    assert torch.allclose(x.grad, grad_ref, atol=1e-5)


def test_encoder_folds_time_into_batch_and_shapes():
    B, T, bins, H, W = 2, 3, 3, 32, 16
    enc = SpikingEncoder(layers=2, width=8)
    calls = []
    for layer in enc.layers:
        layer.conv.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    events = (torch.rand(B, T, bins, 2, H, W) < 0.1).float()
    rates = enc(events)
    assert rates.shape == (B * T, 8, H // 4, W // 4)
    assert calls == [T * bins * B] * 2              # one conv call per layer, all steps at once
    assert ((rates >= 0) & (rates <= 1)).all()
    # a rate is a mean of `bins` binary spikes
    assert torch.allclose(rates * bins, (rates * bins).round(), atol=1e-5)


def test_encoder_is_causal_and_keeps_clips_apart():
    torch.manual_seed(0)
    enc = SpikingEncoder(layers=2, width=8).eval()   # BN at init: zero input -> zero current
    with torch.no_grad():
        enc.layers[1].conv.weight.abs_().mul_(4)      # make layer 1 fire on layer 0's spikes
    events = torch.zeros(2, 4, 3, 2, 16, 16)
    events[0, 2] = (torch.rand(3, 2, 16, 16) < 0.3).float() * 3
    with torch.no_grad():
        rates = enc(events).view(2, 4, 8, 4, 4)
    assert rates[0, :2].abs().sum() == 0            # frames before the first event
    assert rates[0, 2:].sum() > 0
    assert rates[1].abs().sum() == 0                # the other clip saw no event


def test_firing_rates_and_synops():
    torch.manual_seed(0)
    enc = SpikingEncoder(layers=3, width=8)
    events = (torch.rand(2, 2, 3, 2, 16, 16) < 0.2).float()
    enc(events)
    rates = enc.firing_rates()
    assert list(rates) == ["snn.layer0", "snn.layer1", "snn.layer2"]
    assert all(0 < r < 1 for r in rates.values())
    # layer 0: every non-zero event count drives 8 channels x 9 taps / stride 2^2
    first = float((events != 0).sum()) * 8 * 9 / 4
    spikes0 = enc.last_stats[0]["spikes"]
    spikes1 = enc.last_stats[1]["spikes"]
    expected = first + float(spikes0) * 8 * 9 / 4 + float(spikes1) * 8 * 9
    assert enc.synops() == pytest.approx(expected)


def test_single_layer_pools_to_stride_four_and_bad_options():
    enc = SpikingEncoder(layers=1, width=4)
    assert enc(torch.rand(1, 2, 3, 2, 32, 16)).shape == (2, 4, 8, 4)
    with pytest.raises(EvreidError, match="LAYERS"):
        SpikingEncoder(layers=0)
    with pytest.raises(EvreidError, match="SURROGATE"):
        LIFNeuron(surrogate="relu")
    with pytest.raises(EvreidError, match=r"\[B, T, bins, 2, H, W\]"):
        enc(torch.rand(2, 3, 2, 32, 16))
