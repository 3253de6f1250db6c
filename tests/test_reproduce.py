"""Reproduction tables: every row names a real arch and valid config overrides."""

from __future__ import annotations

import pytest

from evreid.config import load_preset
from evreid.engine.reproduce import TABLES, markdown, table_statistics
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


def test_references_name_rows_of_their_table():
    for table in TABLES.values():
        names = [r.name for r in table.rows]
        for row in table.rows:
            assert row.reference is None or row.reference in names, row
            if row.reference:   # same data: a paired difference is meaningful
                ref = next(r for r in table.rows if r.name == row.reference)
                assert ref.protocol == row.protocol and ref.reference is None


def test_table3_has_events_only_on_every_protocol():
    rows = {(r.arch, r.protocol): r for r in TABLES["table3"].rows}
    for protocol in ("clean", "blur", "occlusion", "lowlight"):
        for arch in ("frames_only", "events_only", "sdcl"):
            assert (arch, protocol) in rows
        assert rows["sdcl", protocol].reference == f"frames_only / {protocol}"


def _run(row, seed, r1, mAP, **extra):
    return {"row": row, "seed": seed, "rank1": r1, "rank5": 100.0, "mAP": mAP, "mINP": 10.0,
            **extra}


def test_statistics_and_markdown_by_hand():
    diag = {"events_zeroed": {"rank1": 50.0, "mAP": 60.0},
            "frames_zeroed": {"rank1": 5.0, "mAP": 10.0}}
    report = {"title": "T", "dataset": "synthetic", "preset": "small", "seeds": [0, 1],
              "paper": {"a": "1 / 2"}, "references": {"b": "a"},
              "runs": [_run("a", 0, 50.0, 40.0), _run("a", 1, 70.0, 60.0),
                       _run("b", 1, 80.0, 65.0, diagnostics=diag),
                       _run("b", 0, 52.0, 44.0, diagnostics=diag)]}
    stats = table_statistics(report)
    # a: mAP 40, 60 -> mean 50, std sqrt(200) = 14.142, half = 12.7062 * 14.142 / sqrt(2) = 127.06
    a_map = stats["rows"]["a"]["mAP"]
    assert (a_map["n"], a_map["mean"], a_map["std"]) == (2, 50.0, pytest.approx(14.1421, abs=1e-4))
    assert a_map["ci_low"] == pytest.approx(50.0 - 127.0620, abs=1e-3)
    # b - a per seed: mAP 4 (seed 0) and 5 (seed 1): mean 4.5, std 0.7071, half 6.3531
    d = stats["differences"]["b"]
    assert d["reference"] == "a" and d["mAP"]["differences"] == [4.0, 5.0]
    assert d["mAP"]["mean"] == 4.5 and d["mAP"]["ci_high"] == pytest.approx(4.5 + 6.3531, abs=1e-3)
    assert d["mAP"]["positive"] == 2 and d["rank1"]["differences"] == [2.0, 10.0]
    drop = stats["diagnostics"]["b"]["drop_events_zeroed"]["mAP"]
    assert drop["differences"] == [-16.0, 5.0]           # 44 - 60, 65 - 60
    assert "a" not in stats["diagnostics"]
    text = markdown(report)
    assert "| a | 60.0 ± 14.1 [-67.1, 187.1] | 50.0 ± 14.1 [-77.1, 177.1] | 10.0 ± 0.0 " \
        "[10.0, 10.0] | 2 | 1 / 2 |" in text
    assert "| b − a | +6.0 ± 5.7 [-44.8, +56.8] | +4.5 ± 0.7 [-1.9, +10.9] | " in text
    assert "| 2 / 2 |" in text
    assert "| b | 54.5 ± 14.8 [-78.9, 187.9] | 60.0 ± 0.0 [60.0, 60.0] | -5.5 ± 14.8 " in text
    assert "Only 2 seed(s)" in text


def test_five_seeds_make_no_warning_and_one_seed_no_interval():
    runs = [_run("a", s, 60.0 + s, 50.0 + s) for s in range(5)]
    text = markdown({"title": "T", "dataset": "synthetic", "preset": "medium",
                     "seeds": list(range(5)), "runs": runs})
    assert "seed(s)" not in text and "| a | 62.0 ± 1.6 [60.0, 64.0] |" in text
    one = markdown({"title": "T", "dataset": "synthetic", "preset": "small", "seeds": [3],
                    "runs": [_run("a", 3, 61.0, 51.0)]})
    assert "| a | 61.0 | 51.0 | 10.0 | 1 |" in one


@pytest.mark.slow
def test_run_table_records_runs_and_resumes(tmp_path, monkeypatch, one_torch_thread):
    from evreid.engine import trainer
    from evreid.engine.reproduce import Row, Table, run_table
    from evreid.errors import EvreidError

    monkeypatch.setitem(TABLES, "tiny", Table("tiny", (Row("frames only", "frames_only"),)))
    opts = ["SOLVER.MAX_EPOCHS", "1", "SOLVER.EVAL_PERIOD", "1", "SOLVER.WARMUP_EPOCHS", "0",
            "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]", "INPUT.SEQ_LEN", "2",
            "DATALOADER.NUM_WORKERS", "0"]
    first = run_table("tiny", [0], tmp_path / "out", tmp_path / "data", opts, preset="tiny")
    (run,) = first["runs"]
    assert run["protocol"] == "clean" and first["protocol"] == "per row"
    assert run["seed"] == 0 and run["data_seed"] == 0 and 0 <= run["mAP"] <= 100
    assert first["statistics"]["rows"]["frames only"]["mAP"]["mean"] == run["mAP"]
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
    # one benchmark for every seed when the data seed is fixed
    fixed = run_table("tiny", [1], tmp_path / "out", tmp_path / "data", opts, preset="tiny",
                      data_seed=0)
    assert fixed["runs"][0]["data_seed"] == 0 and fixed["data_seed"] == 0
    assert not (tmp_path / "data" / "synthetic_tiny_clean_seed1").exists()
    with pytest.raises(EvreidError, match="distinct"):
        run_table("tiny", [1, 1], tmp_path / "out", tmp_path / "data", opts, preset="tiny")


def test_protocol_option_applies_to_tables_without_their_own(tmp_path):
    from evreid.engine.reproduce import run_table
    from evreid.errors import EvreidError

    with pytest.raises(EvreidError, match="sets a protocol per row"):
        run_table("table3", [0], tmp_path, tmp_path, [], protocol="blur")
    with pytest.raises(EvreidError, match="needs the synthetic benchmark"):
        run_table("table2", [0], tmp_path, tmp_path, [], dataset="mars", protocol="blur")


def test_cli_defaults_to_five_seeds_and_takes_a_preset():
    import argparse

    from evreid.commands.reproduce import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["table3"])
    assert len(args.seeds.split(",")) == 5 and args.preset is None and args.data_seed is None
    args = parser.parse_args(["table3", "--preset", "medium", "--data-seed", "0"])
    assert (args.preset, args.data_seed) == ("medium", 0)


def test_diagnostics_of_a_run_are_read_only_with_its_config(tmp_path):
    import json

    from evreid.engine.reproduce import _diagnostics

    diag = {"config_hash": "abc", "full": {"mAP": 80.0},
            "events_zeroed": {"rank1": 70.0, "mAP": 75.0},
            "frames_zeroed": {"rank1": 5.0, "mAP": 9.0}}
    (tmp_path / "diagnostics.json").write_text(json.dumps(diag))
    assert _diagnostics(tmp_path, "abc") == {"events_zeroed": diag["events_zeroed"],
                                             "frames_zeroed": diag["frames_zeroed"]}
    assert _diagnostics(tmp_path, "other") is None
    (tmp_path / "diagnostics.json").write_text("[1, 2")
    assert _diagnostics(tmp_path, "abc") is None
