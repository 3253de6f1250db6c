"""Device options, timing and model FLOP utilisation for the benchmark scripts.

Shared by ``bench_model.py`` and ``bench_engine.py`` (one copy of each rule):

- ``add_device_arguments``: ``--device cpu|cuda|auto`` (default cpu), ``--amp``,
  ``--channels-last``, ``--compile``, ``--warmup``, ``--peak-tflops``,
  ``--threads``; ``resolve_setup`` turns them into a ``Setup``.
- ``Setup``: the resolved options; ``Setup.runner(model)`` gives the model as
  the benchmark calls it (on the device, memory format set, autocast around the
  forward, optionally ``torch.compile``-d with a fall-back to eager that is
  reported instead of raised).
- ``timed``: wall seconds of a callable, with ``torch.cuda.synchronize`` before
  and after on CUDA (kernels are asynchronous; without it the clock stops
  when the last kernel is queued, not when it finishes).
- ``mfu`` / ``lookup_peak`` / ``Setup.peak``: model FLOP utilisation against
  the device's peak (table ``PEAK_TFLOPS``).

Conventions
-----------
``--amp`` means bfloat16 autocast around the model's forward on both devices
(the loss and the optimiser stay fp32). On CPU it is applied too: bf16 kernels
are fast on CPUs with AVX512-BF16 / AMX and slower than fp32 on others, so
measure before relying on it. The trainer's own AMP (fp16 + GradScaler on
CUDA, ``SOLVER.AMP``) is overridden by this inner bf16 autocast in
``bench_engine.py``.

FLOPs: MACs per clip are counted by ``evreid.models.cost`` (torch
FlopCounterMode: convolutions and matrix products, eval forward of one clip);
FLOPs = 2 x MACs. A training step (forward + backward) counts 3 x the forward
(backward = 2 x forward), so training FLOPs/clip = 6 x MACs; an inference
(eval forward) timing counts 2 x MACs. Achieved FLOP/s = FLOPs/clip x clips/s;
MFU = achieved / peak. Uncounted work (BN, activations, LIF recurrence,
sampling, data loading, optimiser) is real time but no FLOPs here, so the MFU
is a lower bound on how busy the matrix units are.

Peak: NVIDIA datasheet figures, dense (the datasheets quote tensor-core
figures with 2:4 sparsity; dense is half of that). The precision picks the
column: bf16 with ``--amp``; otherwise tf32 when cuDNN may use TF32 for
convolutions (torch's default ``torch.backends.cudnn.allow_tf32 = True``; the
convolutions are most of these models' FLOPs), else fp32. ``--peak-tflops``
overrides the table; on CPU there is no table and MFU is "n/a" without it.

Also on CUDA: ``torch.backends.cudnn.benchmark = True`` (fixed shapes; the
warm-up pays for the autotuning), listed in the flags.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch

#: (regex on torch.cuda.get_device_name, label, dense TFLOP/s by precision):
#: bf16 (= fp16) and tf32 on tensor cores without sparsity, fp32 on the CUDA
#: cores; NVIDIA datasheets. First match wins, so the specific names come first.
PEAK_TFLOPS: list[tuple[str, str, dict[str, float]]] = [
    (r"GH200", "GH200", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"H200 NVL", "H200 NVL", {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    (r"H200", "H200 SXM", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"H100 NVL", "H100 NVL", {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    (r"H100 PCIe", "H100 PCIe", {"bf16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    (r"H100", "H100 SXM", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"A100", "A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (r"L40S", "L40S", {"bf16": 362.1, "tf32": 183.0, "fp32": 91.6}),
    (r"\bL4\b", "L4", {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3}),
]
PEAK_SOURCE = "vendor datasheet, dense"


def add_device_arguments(parser: argparse.ArgumentParser, warmup: int = 1) -> None:
    group = parser.add_argument_group("device (GPU mode)")
    group.add_argument("--threads", type=int, default=0,
                       help="torch CPU threads (default: torch's choice)")
    group.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                       help="where to time (default cpu; auto: cuda when available)")
    group.add_argument("--amp", action="store_true",
                       help="bfloat16 autocast around the forward (CUDA and CPU)")
    group.add_argument("--channels-last", action="store_true",
                       help="model weights in channels_last memory format")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the model (a failure falls back to eager and is "
                            "reported in the output)")
    group.add_argument("--warmup", type=int, default=warmup,
                       help=f"untimed warm-up steps before timing (default {warmup}; at least "
                            "1 with --compile: the first compiled call compiles)")
    group.add_argument("--peak-tflops", type=float, default=None,
                       help="device peak in TFLOP/s for MFU (default: the GPU table; "
                            "CPU: none, MFU n/a)")


def device_label(device: torch.device) -> str:
    """What the output rows call the device: 'NAME (GPU)' or 'CPU (N threads)'."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (GPU)"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


def lookup_peak(name: str, precision: str) -> tuple[float | None, str]:
    """Dense peak TFLOP/s of a GPU called ``name`` at ``precision`` (bf16, tf32, fp32)."""
    for pattern, label, peaks in PEAK_TFLOPS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return peaks[precision], f"{label} {precision}, {PEAK_SOURCE}"
    return None, f"no peak known for {name!r}; pass --peak-tflops"


def mfu(macs_per_clip: float, clips_per_s: float, peak: float | None,
        train: bool) -> dict:
    """FLOPs/clip, achieved TFLOP/s and MFU (fraction; None without a peak).

    FLOPs/clip = 2 x MACs for an inference timing, 3 x 2 x MACs for a training
    step (forward + backward = 3 forwards).
    """
    flops_per_clip = 2.0 * macs_per_clip * (3 if train else 1)
    achieved = flops_per_clip * clips_per_s / 1e12
    return {"flops_per_clip": flops_per_clip, "achieved_tflops": achieved,
            "mfu": achieved / peak if peak else None}


def fmt_mfu(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


@dataclass
class Setup:
    device: torch.device
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    warmup: int = 1
    peak_override: float | None = None
    label: str = ""

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def precision(self) -> str:
        if self.amp:
            return "bf16"
        if self.cuda and torch.backends.cudnn.allow_tf32:
            return "tf32"
        return "fp32"

    def flags(self, compile_error: str | None = None) -> str:
        parts = ["amp bf16" if self.amp else
                 ("fp32 (tf32 convs)" if self.precision == "tf32" else "fp32"),
                 "channels_last" if self.channels_last else "contiguous"]
        if self.compile:
            parts.append("compile FAILED, eager" if compile_error else "compile")
        else:
            parts.append("eager")
        if self.cuda:
            parts.append("cudnn.benchmark")
        parts.append(f"warm-up {self.warmup}")
        return ", ".join(parts)

    def peak(self) -> tuple[float | None, str]:
        if self.peak_override:
            return self.peak_override, "--peak-tflops"
        if not self.cuda:
            return None, "no CPU peak; pass --peak-tflops"
        return lookup_peak(torch.cuda.get_device_name(self.device), self.precision)

    def autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def runner(self, model: torch.nn.Module) -> Runner:
        """Move ``model`` to the device in the chosen memory format and wrap it."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        model.to(self.device).to(memory_format=fmt)
        return Runner(model, self)


def resolve_setup(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Setup:
    from evreid.engine.distributed import resolve_device
    from evreid.errors import EvreidError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except EvreidError as exc:
        parser.error(f"--device {args.device}: {exc}")
    setup = Setup(device, args.amp, args.channels_last, args.compile, max(0, args.warmup),
                  args.peak_tflops)
    setup.label = device_label(device)
    if setup.cuda:  # fixed input shapes: let cuDNN pick its fastest kernels (warm-up pays)
        torch.backends.cudnn.benchmark = True
    return setup


class Runner:
    """The model as a benchmark calls it: autocast around the forward, compiled
    when asked. A compiled call that raises (e.g. no C++ toolchain for inductor
    on CPU) switches to eager for good and records the error for the output."""

    def __init__(self, model: torch.nn.Module, setup: Setup) -> None:
        self.module = model
        self.setup = setup
        self.compile_error: str | None = None
        self.clips = 0
        self._fn: Callable = torch.compile(model) if setup.compile else model

    @property
    def uses_events(self) -> bool:
        return bool(getattr(self.module, "uses_events", False))

    @property
    def compiled(self) -> bool:
        return self._fn is not self.module

    def fall_back(self, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        self.compile_error = f"{type(exc).__name__}: {first}"
        self._fn = self.module

    def train(self, mode: bool = True) -> Runner:
        self.module.train(mode)
        return self

    def eval(self) -> Runner:
        return self.train(False)

    def __call__(self, frames: torch.Tensor, events: torch.Tensor | None = None):
        self.clips += frames.shape[0]
        with self.setup.autocast():
            return self._fn(frames, events if self.uses_events else None)

    def warm_up(self, step: Callable[[], object], steps: int) -> None:
        """Run ``step`` ``steps`` times untimed; a compiled step that fails is
        retried once in eager mode (the failure is kept in ``compile_error``)."""
        for _ in range(max(steps, 1) if self.compiled else steps):
            try:
                step()
            except Exception as exc:
                if not self.compiled:
                    raise
                self.fall_back(exc)
                step()
        self.setup.sync()

    def row_fields(self) -> dict:
        """Device, flags and the compile note for an output row."""
        return {"device": self.setup.label, "flags": self.setup.flags(self.compile_error),
                "note": f"compile failed ({self.compile_error}); timed eager"
                if self.compile_error else ""}


def timed(fn: Callable[[], object], setup: Setup) -> float:
    """Wall seconds of ``fn()``, device work included."""
    setup.sync()
    start = time.perf_counter()
    fn()
    setup.sync()
    return time.perf_counter() - start


def time_forward_backward(runner: Runner, frames: torch.Tensor, events: torch.Tensor | None,
                          repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds of a train-mode forward, its backward, and an
    eval forward (no_grad) over the whole batch, after ``setup.warmup`` untimed
    rounds. Same protocol as ``evreid.models.cost.time_forward_backward``, plus
    device synchronisation, autocast and compilation."""
    model = runner.module
    state: dict = {}

    def forward() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        state["out"] = runner(frames, events)

    def backward() -> None:
        logits, feats = state.pop("out")
        sum(x.float().mean() for x in (*logits, *feats)).backward()

    def eval_forward() -> None:
        model.eval()
        with torch.no_grad():
            runner(frames, events)

    def one_round() -> None:
        forward()
        backward()
        eval_forward()

    was_training = model.training
    fwd, bwd, ev = [], [], []
    try:
        runner.warm_up(one_round, runner.setup.warmup)
        for _ in range(max(1, repeats)):
            fwd.append(timed(forward, runner.setup))
            bwd.append(timed(backward, runner.setup))
            ev.append(timed(eval_forward, runner.setup))
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return {"forward_s": min(fwd), "backward_s": min(bwd), "eval_forward_s": min(ev)}


def count_clip_macs(model: torch.nn.Module, seq_len: int, bins: int, height: int, width: int,
                    device: torch.device, events: bool = True) -> int:
    """Forward MACs of one clip (evreid.models.cost.count_macs on synthetic input)."""
    from evreid.models.cost import count_macs, synthetic_inputs

    f1, e1 = synthetic_inputs(1, seq_len, bins, height, width)
    macs, _ = count_macs(model, f1.to(device), e1.to(device) if events else None)
    return macs
