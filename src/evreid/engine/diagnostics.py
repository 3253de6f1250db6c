"""Do the events carry weight? A fused model evaluated with one modality removed.

At test time the same trained model is evaluated three times: as it is, with
its event input zeroed (no events at all: every bin empty) and with its frame
input zeroed (after normalisation, so every pixel is the training mean, a
grey image with no identity in it). If the events-zeroed metric is about the
full one, the model ignores its event branch; if the frames-zeroed metric is
near chance, it relies on the frames alone. Written as ``diagnostics.json``
beside a fused run's ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from evreid.config import config_hash
from evreid.data.datasets.base import VideoDataset
from evreid.engine.evaluator import evaluate_model
from evreid.utils import atomic_write_json

DIAGNOSTICS = "diagnostics.json"
ABLATIONS = ("events_zeroed", "frames_zeroed")


class ModalityAblation(torch.nn.Module):
    """``model`` with its ``frames`` or ``events`` input replaced by zeros."""

    def __init__(self, model: torch.nn.Module, zero: str) -> None:
        super().__init__()
        if zero not in ("frames", "events"):
            raise ValueError(f"zero must be 'frames' or 'events'; got {zero!r}")
        self.model, self.zero = model, zero
        # the loaders must feed it exactly what they feed the model
        self.uses_events = bool(getattr(model, "uses_events", True))

    def forward(self, frames: torch.Tensor, events: torch.Tensor | None = None) -> torch.Tensor:
        if self.zero == "frames":
            frames = torch.zeros_like(frames)
        elif events is not None:
            events = torch.zeros_like(events)
        return self.model(frames, events)


def is_fused(model: torch.nn.Module) -> bool:
    """Whether the model reads both frames and events (the diagnostics apply)."""
    return bool(getattr(model, "uses_events", False)) and bool(getattr(model, "uses_frames",
                                                                       False))


def modality_diagnostics(cfg, model: torch.nn.Module, dataset: VideoDataset,
                         device: torch.device, full: dict | None = None,
                         progress: bool = False) -> dict:
    """The summary metrics (percent) of ``model`` as it is and with each input zeroed.

    ``full``: the summary of the unablated model when already computed (the
    trainer's final evaluation), to save one evaluation. ``drop`` is full minus
    ablated, per metric: what the removed modality contributes; ``tied_queries``
    counts the queries whose ablated ranking is arbitrary.
    """
    if full is None:
        full = evaluate_model(cfg, model, dataset, device, progress=progress)["summary"]
    out: dict = {"full": dict(full), "tied_queries": {}}
    for name in ABLATIONS:
        ablated = ModalityAblation(model, name.split("_")[0])
        result = evaluate_model(cfg, ablated, dataset, device, progress=progress)
        out[name] = result["summary"]
        # queries at one distance from the whole gallery (e.g. a branch-less constant
        # feature) rank by gallery order: their metric means nothing, so say how many
        out["tied_queries"][name] = int(result.get("num_tied_queries", 0))
    out["drop"] = {name: {k: round(full[k] - out[name][k], 4) for k in full
                          if isinstance(full[k], (int, float)) and k in out[name]}
                   for name in ABLATIONS}
    return out


def write_diagnostics(cfg, model: torch.nn.Module, dataset: VideoDataset, device: torch.device,
                      output_dir: str | Path, full: dict | None = None,
                      progress: bool = False) -> dict | None:
    """Compute the diagnostics of a fused model and write ``<output_dir>/diagnostics.json``;
    None (nothing written) for a single-modality model."""
    if not is_fused(model):
        return None
    result = modality_diagnostics(cfg, model, dataset, device, full, progress)
    result["arch"] = cfg.MODEL.ARCH
    result["config_hash"] = config_hash(cfg)   # ties the file to its run (reproduce checks)
    result["dataset"] = dataset.name
    result["protocol"] = dataset.extra.get("synthetic_protocol")
    atomic_write_json(Path(output_dir) / DIAGNOSTICS, result)
    return result
