"""Reproduction tables: every row names a real arch and valid config overrides."""

from __future__ import annotations

import pytest

from evreid.config import load_preset
from evreid.engine.reproduce import TABLES, markdown
from evreid.models import list_models


@pytest.mark.parametrize("name", list(TABLES))
def test_rows_are_buildable_configs(name):
    for row in TABLES[name].rows:
        assert row.arch in list_models(), row
        cfg = load_preset("demo", ["MODEL.ARCH", row.arch, *row.overrides])
        assert row.arch == cfg.MODEL.ARCH
        assert row.protocol in ("clean", "blur", "occlusion", "lowlight")


def test_fig6_covers_one_to_four():
    rows = TABLES["fig6"].rows
    layers = sorted(int(r.overrides[1]) for r in rows if r.overrides[0] == "MODEL.SNN.LAYERS")
    maps = sorted(int(r.overrides[1]) for r in rows if r.overrides[0] == "MODEL.DEFORM.MAPPINGS")
    assert layers == maps == [1, 2, 3, 4]


def test_markdown_mean_and_std():
    report = {"title": "T", "dataset": "synthetic", "preset": "small", "seeds": [0, 1],
              "paper": {"a": "1 / 2"},
              "runs": [{"row": "a", "rank1": 50.0, "mAP": 40.0, "mINP": 10.0},
                       {"row": "a", "rank1": 70.0, "mAP": 60.0, "mINP": 30.0}]}
    text = markdown(report)
    assert "| a | 60.0 ± 10.0 | 50.0 ± 10.0 | 20.0 ± 10.0 | 2 | 1 / 2 |" in text


def test_run_table_records_runs_and_resumes(tmp_path, monkeypatch, one_torch_thread):
    from evreid.engine import trainer
    from evreid.engine.reproduce import Row, Table, run_table

    monkeypatch.setitem(TABLES, "tiny", Table("tiny", (Row("frames only", "frames_only"),)))
    opts = ["SOLVER.MAX_EPOCHS", "1", "SOLVER.EVAL_PERIOD", "1", "SOLVER.WARMUP_EPOCHS", "0",
            "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]", "INPUT.SEQ_LEN", "2",
            "DATALOADER.NUM_WORKERS", "0"]
    first = run_table("tiny", [0], tmp_path / "out", tmp_path / "data", opts, preset="tiny")
    (run,) = first["runs"]
    assert run["protocol"] == "clean" and first["protocol"] == "per row"
    assert run["seed"] == 0 and 0 <= run["mAP"] <= 100
    assert (tmp_path / "out" / "tiny" / "frames_only_seed0" / "metrics.json").is_file()

    # a second call reuses the finished run instead of training again...
    monkeypatch.setattr(trainer.Trainer, "train", lambda self: pytest.fail("retrained"))
    again = run_table("tiny", [0], tmp_path / "out", tmp_path / "data", opts, preset="tiny")
    assert again["runs"] == first["runs"]
    # ...but not one made with another config
    with pytest.raises(pytest.fail.Exception, match="retrained"):
        run_table("tiny", [0], tmp_path / "out", tmp_path / "data",
                  [*opts, "SOLVER.BASE_LR", "0.002"], preset="tiny")
    monkeypatch.undo()
    monkeypatch.setitem(TABLES, "tiny", Table("tiny", (Row("frames only", "frames_only"),)))
    blur = run_table("tiny", [0], tmp_path / "out", tmp_path / "data", opts, preset="tiny",
                     protocol="blur")
    assert blur["runs"][0]["protocol"] == "blur" and blur["protocol"] == "blur"
    assert (tmp_path / "data" / "synthetic_tiny_blur_seed0").is_dir()
    assert (tmp_path / "out" / "tiny" / "frames_only_blur_seed0" / "metrics.json").is_file()


def test_protocol_option_applies_to_tables_without_their_own(tmp_path):
    from evreid.engine.reproduce import run_table
    from evreid.errors import EvreidError

    with pytest.raises(EvreidError, match="sets a protocol per row"):
        run_table("table3", [0], tmp_path, tmp_path, [], protocol="blur")
    with pytest.raises(EvreidError, match="needs the synthetic benchmark"):
        run_table("table2", [0], tmp_path, tmp_path, [], dataset="mars", protocol="blur")
