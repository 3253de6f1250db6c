"""Leaky integrate-and-fire neurons with surrogate gradients, and the spiking encoder.

Discrete LIF dynamics (the SDCL paper's eq., hard reset to zero)::

    V[t+1] = V[t] * decay * (1 - S[t]) + I[t+1]          I = W x + b
    S[t+1] = Heaviside(V[t+1] - V_th)                    Heaviside(0) = 1

In backward the Heaviside step is replaced by the derivative of a smooth
surrogate (arctan by default, sigmoid optional). ``detach_reset`` stops the
gradient through the reset term ``(1 - S[t])``, as snntorch always does.

Multi-step convention: tensors are time-major ``[S, B, ...]``. Convolutions
and batch norm see all time steps at once (time folded into the batch, one
kernel call); only the membrane recurrence loops over time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError
from evreid.utils import exporting

__all__ = ["ATanSpike", "SigmoidSpike", "spike_fn", "LIFNeuron", "SpikingConvLayer",
           "SpikingEncoder", "SURROGATES"]


class _HeavisideSurrogate(torch.autograd.Function):
    """Heaviside step forward; a smooth surrogate derivative backward
    (subclasses give ``surrogate_grad``)."""

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @classmethod
    def backward(cls, ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * cls.surrogate_grad(x, ctx.alpha), None


class ATanSpike(_HeavisideSurrogate):
    """Surrogate: d/dx of (1/pi) arctan(pi/2 * alpha * x)."""

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


class SigmoidSpike(_HeavisideSurrogate):
    """Surrogate: d/dx of sigmoid(alpha * x)."""

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1 - s)


SURROGATES = {"atan": ATanSpike, "sigmoid": SigmoidSpike}


def spike_fn(x: torch.Tensor, surrogate: str = "atan", alpha: float = 2.0) -> torch.Tensor:
    return SURROGATES[surrogate].apply(x, alpha)


class _LIFMultiStep(torch.autograd.Function):
    """The whole LIF recurrence as one autograd node.

    Same maths as looping :meth:`LIFNeuron.step` under autograd, but the
    backward is one hand-written reverse loop instead of a graph of ~10 nodes
    per time step: about 3x faster on CPU for the event branch. Backward::

        dL/dV[t] = dL/dS[t] * sg(V[t] - th) + dL/dV[t+1] * decay * (1 - S[t])
        dL/dS[t] += -dL/dV[t+1] * decay * V[t]        (unless detach_reset)
        dL/dI[t] = dL/dV[t]
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, decay: float, threshold: float,  # type: ignore[override]
                surrogate: str, alpha: float, detach_reset: bool) -> torch.Tensor:
        v = torch.zeros_like(current[0])
        vs = torch.empty_like(current)
        spikes = torch.empty_like(current)
        s = torch.zeros_like(current[0])
        for t in range(current.shape[0]):
            v = v * (decay * (1.0 - s)) + current[t]
            s = (v >= threshold).to(current.dtype)
            vs[t] = v
            spikes[t] = s
        ctx.save_for_backward(vs, spikes)
        ctx.args = (decay, threshold, surrogate, alpha, detach_reset)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        vs, spikes = ctx.saved_tensors
        decay, threshold, surrogate, alpha, detach_reset = ctx.args
        grad_current = torch.empty_like(vs)
        grad_v_next = torch.zeros_like(vs[0])
        for t in range(vs.shape[0] - 1, -1, -1):
            grad_s = grad_spikes[t]
            if not detach_reset:
                grad_s = grad_s - grad_v_next * (decay * vs[t])
            grad_v = (grad_s * SURROGATES[surrogate].surrogate_grad(vs[t] - threshold, alpha)
                      + grad_v_next * (decay * (1.0 - spikes[t])))
            grad_current[t] = grad_v
            grad_v_next = grad_v
        return grad_current, None, None, None, None, None


def _lif_forward_loop(current: torch.Tensor, decay: float,
                      threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward recurrence, written into preallocated outputs (same float
    operations, in the same order, as :class:`_LIFMultiStep`)."""
    vs = torch.empty_like(current)
    spikes = torch.empty_like(current)
    keep = torch.full_like(current[0], decay)    # decay * (1 - S[t-1])
    leak = torch.zeros_like(current[0])          # V[t-1] * keep
    v = torch.zeros_like(current[0])
    for t in range(current.shape[0]):
        torch.mul(v, keep, out=leak)
        torch.add(leak, current[t], out=vs[t])
        v = vs[t]
        torch.ge(v, threshold, out=spikes[t])
        torch.mul(torch.sub(1.0, spikes[t], out=keep), decay, out=keep)
    return spikes, vs


def _lif_backward_coefficients(grad_spikes: torch.Tensor, vs: torch.Tensor, spikes: torch.Tensor,
                               decay: float, threshold: float, surrogate: str, alpha: float,
                               detach_reset: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward of the recurrence is linear in dL/dV: ``g[t] = a[t] + c[t] * g[t+1]``
    with ``a = dL/dS * sg`` and ``c = decay * (1 - S) - decay * V * sg`` (the second
    term only without detach_reset). All of ``a`` and ``c`` at once, vectorised."""
    sg = SURROGATES[surrogate].surrogate_grad(vs - threshold, alpha)
    a = grad_spikes * sg
    c = (1.0 - spikes) * decay
    if not detach_reset:
        c = c - vs * sg * decay
    return a, c


# torch.library.custom_op arrived in torch 2.4: older releases run the reference
# autograd node (_LIFMultiStep), the same numbers with a Python loop per direction
HAS_LIF_OP = hasattr(torch.library, "custom_op")

if HAS_LIF_OP:
    @torch.library.custom_op("evreid::lif_multistep", mutates_args=())
    def lif_multistep(current: torch.Tensor, decay: float, threshold: float, surrogate: str,
                      alpha: float, detach_reset: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole multi-step LIF forward as one operator: (spikes, membrane) ``[S, ...]``.

        One dispatcher call for all S steps (a TorchDispatchMode, the profiler and
        torch.compile see one opaque node). The CPU kernel loops over time inside
        the operator; on CUDA a Triton kernel (:mod:`evreid.models.lif_triton`) runs
        the loop with the membrane in registers, one launch for all steps, when
        Triton is importable (else the same loop of torch kernels). ``surrogate``,
        ``alpha`` and ``detach_reset`` are only used by the backward.
        """
        return _lif_forward_loop(current.contiguous(), decay, threshold)


    @lif_multistep.register_fake
    def _(current, decay, threshold, surrogate, alpha, detach_reset):
        return torch.empty_like(current), torch.empty_like(current)


    @lif_multistep.register_kernel("cuda")
    def _(current, decay, threshold, surrogate, alpha, detach_reset):
        # imported on first use: Triton is slow to load
        from evreid.models import lif_triton

        if lif_triton.AVAILABLE:
            return lif_triton.lif_forward(current, decay, threshold)
        return _lif_forward_loop(current.contiguous(), decay, threshold)


    def _lif_backward_loop(grad_spikes: torch.Tensor, vs: torch.Tensor, spikes: torch.Tensor,
                           decay: float, threshold: float, surrogate: str, alpha: float,
                           detach_reset: bool) -> torch.Tensor:
        a, c = _lif_backward_coefficients(grad_spikes, vs, spikes, decay, threshold, surrogate,
                                          alpha, detach_reset)
        grad = torch.empty_like(a)
        g = torch.zeros_like(a[0])
        for t in range(a.shape[0] - 1, -1, -1):
            torch.addcmul(a[t], c[t], g, out=grad[t])
            g = grad[t]
        return grad


    @torch.library.custom_op("evreid::lif_multistep_backward", mutates_args=())
    def lif_multistep_backward(grad_spikes: torch.Tensor, vs: torch.Tensor, spikes: torch.Tensor,
                               decay: float, threshold: float, surrogate: str, alpha: float,
                               detach_reset: bool) -> torch.Tensor:
        """dL/dI of :func:`lif_multistep` as one operator (reverse-time loop inside)."""
        return _lif_backward_loop(grad_spikes, vs, spikes, decay, threshold, surrogate, alpha,
                                  detach_reset)


    @lif_multistep_backward.register_fake
    def _(grad_spikes, vs, spikes, decay, threshold, surrogate, alpha, detach_reset):
        return torch.empty_like(vs)


    @lif_multistep_backward.register_kernel("cuda")
    def _(grad_spikes, vs, spikes, decay, threshold, surrogate, alpha, detach_reset):
        from evreid.models import lif_triton

        if lif_triton.AVAILABLE:
            return lif_triton.lif_backward(grad_spikes, vs, spikes, decay, threshold, surrogate,
                                           alpha, detach_reset)
        return _lif_backward_loop(grad_spikes, vs, spikes, decay, threshold, surrogate, alpha,
                                  detach_reset)


    def _lif_setup_context(ctx, inputs, output) -> None:
        _, decay, threshold, surrogate, alpha, detach_reset = inputs
        spikes, vs = output
        ctx.save_for_backward(vs, spikes)
        ctx.args = (decay, threshold, surrogate, alpha, detach_reset)


    def _lif_backward(ctx, grad_spikes, grad_vs):
        vs, spikes = ctx.saved_tensors
        if grad_spikes is None:
            grad_spikes = torch.zeros_like(vs)
        # the membrane output is for inspection only: its gradient (grad_vs) is not
        # propagated; nothing in the models reads it
        grad = lif_multistep_backward(grad_spikes.contiguous(), vs, spikes, *ctx.args)
        return grad, None, None, None, None, None


    lif_multistep.register_autograd(_lif_backward, setup_context=_lif_setup_context)


class LIFNeuron(nn.Module):
    """Multi-step LIF layer: ``forward(I)`` with I ``[S, ...]`` returns spikes ``[S, ...]``.

    The membrane starts at zero for every call (one clip = one sequence).
    """

    def __init__(self, decay: float = 0.5, threshold: float = 1.0, surrogate: str = "atan",
                 alpha: float = 2.0, detach_reset: bool = False) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise EvreidError(f"unknown MODEL.SNN.SURROGATE {surrogate!r}; "
                              f"valid: {', '.join(SURROGATES)}")
        if not 0.0 <= decay <= 1.0:
            raise EvreidError(f"MODEL.SNN.DECAY must lie in [0, 1]; got {decay}")
        self.decay = float(decay)
        self.threshold = float(threshold)
        self.surrogate = surrogate
        self.alpha = float(alpha)
        self.detach_reset = bool(detach_reset)

    def step(self, current: torch.Tensor, v: torch.Tensor,
             s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: (input current, V[t], S[t]) -> (S[t+1], V[t+1])."""
        reset = s.detach() if self.detach_reset else s
        v = v * (self.decay * (1.0 - reset)) + current
        return spike_fn(v - self.threshold, self.surrogate, self.alpha), v

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if not HAS_LIF_OP or exporting():
            # ONNX has no evreid::lif_multistep: export traces the same recurrence as
            # plain torch ops (the numbers are equal; tests/test_models_snn.py)
            return self.forward_reference(current)
        spikes, _ = lif_multistep(current, self.decay, self.threshold, self.surrogate,
                                  self.alpha, self.detach_reset)
        return spikes

    def forward_reference(self, current: torch.Tensor) -> torch.Tensor:
        """Reference: the autograd.Function with Python loops forward and backward
        (the implementation before :func:`lif_multistep`; kept for the tests)."""
        return _LIFMultiStep.apply(current, self.decay, self.threshold, self.surrogate,
                                   self.alpha, self.detach_reset)

    def forward_steps(self, current: torch.Tensor) -> torch.Tensor:
        """Reference: the same as :meth:`forward`, looping :meth:`step` under autograd."""
        v = torch.zeros_like(current[0])
        s = torch.zeros_like(current[0])
        out = []
        for t in range(current.shape[0]):
            s, v = self.step(current[t], v, s)
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return (f"decay={self.decay}, threshold={self.threshold}, surrogate={self.surrogate}, "
                f"alpha={self.alpha}, detach_reset={self.detach_reset}")


class SpikingConvLayer(nn.Module):
    """3x3 conv + BatchNorm (time folded into the batch) + multi-step LIF."""

    def __init__(self, cin: int, cout: int, stride: int, lif: LIFNeuron) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.lif = lif
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, B = x.shape[:2]
        current = self.bn(self.conv(x.flatten(0, 1)))
        return self.lif(current.unflatten(0, (S, B)))

    def fan_out(self) -> float:
        """Synapses one input spike drives on average (for SynOps)."""
        k = self.conv.kernel_size[0] * self.conv.kernel_size[1]
        return self.conv.out_channels * k / (self.stride ** 2)


class SpikingEncoder(nn.Module):
    """Stack of spiking conv layers over the clip's T x bins event time steps.

    Input: events ``[B, T, bins, 2, H, W]``. The first two layers halve the
    resolution (total stride 4, the frame branch's layer1 resolution); further
    layers keep it. :meth:`forward_spikes` returns the last layer's spikes
    with every time step; :meth:`forward` per-frame spike rates
    ``[B*T, C, H/4, W/4]`` (spikes averaged over the bins of each frame).

    After each forward, :attr:`last_stats` holds per layer the spike count, the
    number of neurons x steps, the input non-zeros and the fan-out (detached);
    :meth:`firing_rates` and :meth:`synops` summarise them.
    """

    def __init__(self, layers: int = 2, width: int = 32, in_channels: int = 2,
                 decay: float = 0.5, threshold: float = 1.0, surrogate: str = "atan",
                 alpha: float = 2.0, detach_reset: bool = False) -> None:
        super().__init__()
        if layers < 1:
            raise EvreidError(f"MODEL.SNN.LAYERS must be >= 1; got {layers}")
        self.layers = nn.ModuleList()
        cin = in_channels
        for i in range(layers):
            stride = 2 if i < 2 else 1
            lif = LIFNeuron(decay, threshold, surrogate, alpha, detach_reset)
            self.layers.append(SpikingConvLayer(cin, width, stride, lif))
            cin = width
        self.out_channels = width
        self.last_stats: list[dict] = []

    def forward_spikes(self, events: torch.Tensor) -> torch.Tensor:
        """Spikes of the last layer at stride 4, every step kept:
        ``[T*bins, B, C, H/4, W/4]`` (time-major, step = frame * bins + bin).

        With a single (stride-2) layer a stride-4 neuron fires where any of its
        2x2 stride-2 neurons fired (max pooling keeps the map binary).
        """
        if events.dim() != 6:
            raise EvreidError(f"events must be [B, T, bins, 2, H, W]; got {tuple(events.shape)}")
        B, T, bins, P, H, W = events.shape
        # time-major: the membrane runs over t = frame * bins + bin, continuously across frames
        x = events.permute(1, 2, 0, 3, 4, 5).reshape(T * bins, B, P, H, W)
        stats = []
        for layer in self.layers:
            # kept as detached tensors: converting here would force a GPU sync per layer
            nonzero_in = (x.detach() != 0).sum()
            x = layer(x)
            stats.append({"spikes": x.detach().sum(), "numel": x.numel(),
                          "nonzero_in": nonzero_in, "fan_out": layer.fan_out()})
        self.last_stats = stats
        if len(self.layers) == 1:
            x = F.max_pool2d(x.flatten(0, 1), 2, ceil_mode=True).unflatten(0, x.shape[:2])
        return x

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        """Per-frame spike rates ``[B*T, C, H/4, W/4]``: the last layer's spikes
        averaged over the bins of each frame interval."""
        B, T, bins = events.shape[:3]
        x = self.forward_spikes(events)
        rates = x.reshape(T, bins, B, *x.shape[2:]).mean(1)             # [T, B, C, h, w]
        return rates.transpose(0, 1).flatten(0, 1)                     # [B*T, C, h, w]

    def firing_rates(self) -> dict[str, float]:
        """Mean spikes per neuron per time step of each layer in the last forward."""
        return {f"snn.layer{i}": float(s["spikes"]) / max(1, s["numel"])
                for i, s in enumerate(self.last_stats)}

    def synops(self) -> float:
        """Synaptic operations of the last forward: input non-zeros x fan-out, summed.

        The first layer's inputs are event counts, the others' are spikes.
        """
        return sum(float(s["nonzero_in"]) * s["fan_out"] for s in self.last_stats)
