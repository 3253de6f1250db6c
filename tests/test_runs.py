"""Whole runs as the commands start them (evreid.engine.runs): `evreid train --splits`
and `evreid test` are these calls plus printing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.cli import main
from evreid.config import load_config
from evreid.engine.runs import evaluate_checkpoint, train_splits

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_two_splits_give_a_run_each_and_their_mean(tmp_path, capsys):
    root = make_tiny_reid(tmp_path / "data").parent
    cfg = load_config(None, TINY_TRAIN_OPTS + ["DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR",
                                               str(tmp_path / "run"), "SOLVER.MAX_EPOCHS", "1"])
    report = train_splits(cfg, [0, 1], progress=False)
    assert list(report["runs"]) == ["split 0", "split 1"]
    for split in (0, 1):
        metrics = json.loads((tmp_path / "run" / f"split_{split}" / "metrics.json").read_text())
        assert metrics["final"] == report["runs"][f"split {split}"]
    finals = list(report["runs"].values())
    for key in ("rank1", "mAP"):
        assert report["mean"][key] == pytest.approx(np.mean([f[key] for f in finals]))
        assert report["std"][key] == pytest.approx(np.std([f[key] for f in finals]))
    assert json.loads((tmp_path / "run" / "splits_summary.json").read_text()) == report
    # the command is the same call: its JSON is the report
    assert main(["test", "--json", "--config-file", str(tmp_path / "run/split_1/config.yaml"),
                 "--checkpoint", str(tmp_path / "run/split_1/last.pth"), "--out",
                 str(tmp_path / "tested")]) == 0
    printed = json.loads(capsys.readouterr().out)
    tested, warning = evaluate_checkpoint(load_config(tmp_path / "run/split_1/config.yaml"),
                                          tmp_path / "run/split_1/last.pth",
                                          tmp_path / "tested_again")
    assert warning is None and tested["mAP"] == printed["mAP"]
    assert tested["mAP"] == pytest.approx(report["runs"]["split 1"]["mAP"])
    assert json.loads((tmp_path / "tested" / "test_metrics.json").read_text()) == printed
