"""What a model costs: parameters, MACs / FLOPs, spiking SynOps, time per clip.

Conventions (stated in every report):
- MACs are multiply-accumulates; FLOPs = 2 x MACs (torch's FlopCounterMode
  counts matmul / conv FLOPs as 2 per MAC; we divide by two for MACs).
- FlopCounterMode counts convolutions and matrix products only. Not counted:
  batch norm, activations, the LIF recurrence, the event-guided deformable
  gather (integral offsets: a copy, 0 MACs) and grid_sample in the cross
  alignment. The last one is added analytically as ``sampling_macs`` (4
  multiply-adds per bilinear sample and channel, 8 per trilinear sample from
  an event voxel, plus one per point for the attention weighting; the read
  of the other modality at the reference point when that is not the pixel
  itself) and reported separately.
- SynOps: for every spiking layer, input non-zeros (event counts for the
  first layer, spikes after) times the synapses each drives (fan-out), summed
  over the clip's T x bins steps; they depend on the events, so they are
  measured on the bench's synthetic events at a stated density.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from evreid.models.alignment import CrossAlignment
from evreid.models.deform import EventDeformMapping

__all__ = ["count_parameters", "count_macs", "sampling_macs", "time_forward_backward",
           "synthetic_inputs", "model_cost"]


def count_parameters(model: nn.Module) -> dict:
    """Total, trainable and per top-level child parameter counts."""
    by_module = {name: sum(p.numel() for p in child.parameters())
                 for name, child in model.named_children()}
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "by_module": {k: v for k, v in by_module.items() if v}}


def _call(model: nn.Module, frames: torch.Tensor, events: torch.Tensor | None):
    return model(frames, events if getattr(model, "uses_events", False) else None)


def count_macs(model: nn.Module, frames: torch.Tensor,
               events: torch.Tensor | None) -> tuple[int, dict[str, int]]:
    """MACs of one eval forward over the given batch, total and per top-level child."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            _call(model, frames, events)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    total = sum(counts.get("Global", {}).values()) // 2
    root = type(model).__name__
    by_module: dict[str, int] = {}
    for name, _ in model.named_children():
        prefix = f"{root}.{name}"
        keys = [k for k in counts if k == prefix or k.startswith(prefix + ".")]
        # a module called through a method (not __call__) has no entry of its
        # own; count its outermost tracked descendants instead
        top = [prefix] if prefix in keys else [
            k for k in keys if k.rsplit(".", 1)[0] not in keys]
        macs = sum(sum(counts[k].values()) for k in top) // 2
        if macs:
            by_module[name] = macs
    return total, by_module


def sampling_macs(model: nn.Module, frames: torch.Tensor,
                  events: torch.Tensor | None) -> dict[str, int]:
    """Analytic cost of the sampling FlopCounterMode skips (see module docstring)."""
    totals = {"alignment_bilinear": 0, "deform_gathered_values": 0}
    hooks = []

    def on_align(mod: CrossAlignment, inputs: tuple, _out: torch.Tensor) -> None:
        query, value = inputs[0], inputs[1]
        q_vox, v_vox = query.dim() == 5, value.dim() == 5
        n, c, h, w = query.shape[0], query.shape[-3], query.shape[-2], query.shape[-1]
        positions = query.numel() // c                         # N x (Z) x h x w queries
        corners = 8 if v_vox else 4                            # trilinear from a voxel
        per_head = mod.embed_dim // mod.heads
        totals["alignment_bilinear"] += positions * mod.heads * mod.points * per_head * (
            corners + 1)                                       # corners + the weighting
        # P read at the reference points: a copy when they are the pixels themselves
        same = tuple(value.shape[-2:]) == (h, w) and torch.equal(
            mod.homography.cpu(), torch.eye(3, dtype=mod.homography.dtype))
        if not same:
            maps = n * query.shape[1] if (q_vox and v_vox) else n
            totals["alignment_bilinear"] += maps * h * w * c * 4

    def on_deform(_mod: EventDeformMapping, inputs: tuple, _out: torch.Tensor) -> None:
        x = inputs[0]
        totals["deform_gathered_values"] += x.numel() * 9

    for m in model.modules():
        if isinstance(m, CrossAlignment):
            hooks.append(m.register_forward_hook(on_align))
        elif isinstance(m, EventDeformMapping):
            hooks.append(m.register_forward_hook(on_deform))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _call(model, frames, events)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return totals


def time_forward_backward(model: nn.Module, frames: torch.Tensor, events: torch.Tensor | None,
                          repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Best-of-``repeats`` seconds for a train-mode forward, its backward, and an
    eval forward (no_grad), over the whole batch."""
    def loss_of(out) -> torch.Tensor:
        logits, feats = out
        return sum(x.float().mean() for x in (*logits, *feats))

    fwd, bwd, ev = [], [], []
    was_training = model.training
    try:
        for i in range(warmup + repeats):
            model.train()
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            out = _call(model, frames, events)
            t1 = time.perf_counter()
            loss_of(out).backward()
            t2 = time.perf_counter()
            model.eval()
            with torch.no_grad():
                t3 = time.perf_counter()
                _call(model, frames, events)
                t4 = time.perf_counter()
            if i >= warmup:
                fwd.append(t1 - t0)
                bwd.append(t2 - t1)
                ev.append(t4 - t3)
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return {"forward_s": min(fwd), "backward_s": min(bwd), "eval_forward_s": min(ev)}


def synthetic_inputs(batch: int, seq_len: int, bins: int, height: int, width: int,
                     event_density: float = 0.02, seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random frames and Bernoulli event counts (``event_density`` per bin,
    polarity and pixel) of the model's input shapes."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(batch, seq_len, 3, height, width, generator=g)
    events = (torch.rand(batch, seq_len, bins, 2, height, width, generator=g)
              < event_density).float()
    return frames, events


def model_cost(build: Callable[[], nn.Module], *, seq_len: int, bins: int, height: int,
               width: int, batch: int = 2, repeats: int = 3, event_density: float = 0.02,
               timing: bool = True) -> dict:
    """The full report for one configuration (see the module docstring)."""
    model = build()
    params = count_parameters(model)
    f1, e1 = synthetic_inputs(1, seq_len, bins, height, width, event_density)
    macs, macs_by_module = count_macs(model, f1, e1)
    extra = sampling_macs(model, f1, e1)
    # spiking statistics in train mode (batch statistics in BN, as in training);
    # BatchNorm1d needs two clips or more there
    n_stats = max(2, batch)
    fs, es = synthetic_inputs(n_stats, seq_len, bins, height, width, event_density, seed=2)
    model.train()
    with torch.no_grad():
        _call(model, fs, es)
    rates = model.firing_rates() if hasattr(model, "firing_rates") else {}
    synops = (model.synops() if hasattr(model, "synops") else 0.0) / n_stats
    report = {
        "arch": getattr(model, "arch", type(model).__name__),
        "input": {"seq_len": seq_len, "bins": bins, "height": height, "width": width,
                  "event_density": event_density},
        "params": params,
        "macs_per_clip": macs,
        "flops_per_clip": 2 * macs,
        "macs_per_frame": macs / seq_len,
        "macs_by_module": macs_by_module,
        "uncounted": {"alignment_bilinear_macs_per_clip": extra["alignment_bilinear"],
                      "deform_gathered_values_per_clip": extra["deform_gathered_values"]},
        "macs_per_clip_with_sampling": macs + extra["alignment_bilinear"],
        "synops_per_clip": synops,
        "firing_rates": rates,
        "uses_events": bool(getattr(model, "uses_events", False)),
        "threads": torch.get_num_threads(),
    }
    if timing:
        fb, eb = synthetic_inputs(batch, seq_len, bins, height, width, event_density, seed=1)
        times = time_forward_backward(model, fb, eb, repeats=repeats)
        report["timing"] = {"batch": batch, "repeats": repeats, **times,
                            "forward_s_per_clip": times["forward_s"] / batch,
                            "backward_s_per_clip": times["backward_s"] / batch,
                            "eval_forward_s_per_clip": times["eval_forward_s"] / batch}
    return report
