"""Modality diagnostics: a fused model evaluated with events zeroed and frames zeroed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from evreid.config import load_preset
from evreid.data import build_dataset
from evreid.data.synthetic import generate_synthetic
from evreid.engine.diagnostics import (
    DIAGNOSTICS,
    ModalityAblation,
    is_fused,
    modality_diagnostics,
    write_diagnostics,
)
from evreid.engine.evaluator import evaluate_model

OPTS = ["INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]", "INPUT.SEQ_LEN", "2",
        "DATALOADER.NUM_WORKERS", "0", "TEST.IMS_PER_BATCH", "8"]


class Probe(torch.nn.Module):
    """Mean colour of the frames and event count per polarity, each scaled by a weight."""

    uses_events = True
    uses_frames = True

    def __init__(self, w_frames: float, w_events: float) -> None:
        super().__init__()
        self.w_frames, self.w_events = w_frames, w_events
        self.seen: list[tuple[float, float]] = []

    def forward(self, frames: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        self.seen.append((float(frames.abs().sum()), float(events.abs().sum())))
        colour = frames.mean(dim=(1, 3, 4))                   # [B, 3]
        counts = events.float().sum(dim=(1, 2, 4, 5)) / 100   # [B, 2]
        return torch.cat([self.w_frames * colour, self.w_events * counts, torch.ones_like(
            counts[:, :1])], dim=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("diag") / "tiny"
    generate_synthetic(root, "tiny", "clean", seed=2, workers=1)
    return root


def test_ablation_zeroes_one_input_only():
    probe = Probe(1.0, 1.0)
    frames, events = torch.rand(2, 2, 3, 8, 4) + 0.1, torch.rand(2, 2, 3, 2, 8, 4) + 0.1
    ModalityAblation(probe, "events")(frames, events)
    ModalityAblation(probe, "frames")(frames, events)
    (f1, e1), (f2, e2) = probe.seen
    assert f1 == pytest.approx(float(frames.sum())) and e1 == 0.0
    assert f2 == 0.0 and e2 == pytest.approx(float(events.sum()))
    assert ModalityAblation(probe, "events").uses_events is True
    with pytest.raises(ValueError, match="frames' or 'events"):
        ModalityAblation(probe, "audio")


def test_a_model_that_ignores_events_loses_nothing_without_them(tiny):
    cfg = load_preset("demo", OPTS)
    data = build_dataset("synthetic", tiny)
    result = modality_diagnostics(cfg, Probe(1.0, 0.0), data, torch.device("cpu"))
    assert result["events_zeroed"] == result["full"]
    assert all(v == 0.0 for v in result["drop"]["events_zeroed"].values())
    # without frames the probe gives every tracklet one feature: every query is tied
    assert result["tied_queries"] == {"events_zeroed": 0, "frames_zeroed": len(data.query)}
    for key, value in result["drop"]["frames_zeroed"].items():
        assert value == pytest.approx(result["full"][key] - result["frames_zeroed"][key],
                                      abs=1e-4)


def test_a_model_that_ignores_frames_loses_nothing_without_them(tiny):
    cfg = load_preset("demo", OPTS)
    data = build_dataset("synthetic", tiny)
    full = evaluate_model(cfg, Probe(0.0, 1.0), data, torch.device("cpu"),
                          progress=False)["summary"]
    result = modality_diagnostics(cfg, Probe(0.0, 1.0), data, torch.device("cpu"), full=full)
    assert result["frames_zeroed"] == full
    drop = result["drop"]["events_zeroed"]
    assert drop["mAP"] == pytest.approx(full["mAP"] - result["events_zeroed"]["mAP"], abs=1e-4)


def test_written_for_fused_runs_only(tiny, tmp_path):
    cfg = load_preset("demo", OPTS)
    data = build_dataset("synthetic", tiny)
    frames_only = torch.nn.Linear(1, 1)
    frames_only.uses_events = False
    assert not is_fused(frames_only) and is_fused(Probe(1.0, 1.0))
    assert write_diagnostics(cfg, frames_only, data, torch.device("cpu"), tmp_path) is None
    assert not (tmp_path / DIAGNOSTICS).exists()
    written = write_diagnostics(cfg, Probe(1.0, 1.0), data, torch.device("cpu"), tmp_path)
    on_disk = json.loads((tmp_path / DIAGNOSTICS).read_text())
    assert on_disk["protocol"] == "clean" and set(on_disk) >= {
        "full", "events_zeroed", "frames_zeroed", "drop"}
    assert on_disk["full"] == pytest.approx(written["full"])


def test_trainer_writes_diagnostics_of_a_fused_run(tiny, tmp_path, one_torch_thread):
    from evreid.engine.trainer import Trainer

    opts = [*OPTS, "SOLVER.MAX_EPOCHS", "1", "SOLVER.EVAL_PERIOD", "1",
            "SOLVER.WARMUP_EPOCHS", "0", "MODEL.ARCH", "sdcl"]
    cfg = load_preset("demo", opts)
    Trainer(cfg, build_dataset("synthetic", tiny), tmp_path / "sdcl",
            show_progress=False).train()
    metrics = json.loads((tmp_path / "sdcl" / "metrics.json").read_text())
    diag = json.loads((tmp_path / "sdcl" / DIAGNOSTICS).read_text())
    assert diag["arch"] == "sdcl" and diag["full"] == metrics["final"]
    assert diag["config_hash"] == metrics["config_hash"]
    cfg = load_preset("demo", [*opts[:-2], "MODEL.ARCH", "frames_only"])
    Trainer(cfg, build_dataset("synthetic", tiny), tmp_path / "fo", show_progress=False).train()
    assert (tmp_path / "fo" / "metrics.json").is_file()
    assert not (tmp_path / "fo" / DIAGNOSTICS).exists()
