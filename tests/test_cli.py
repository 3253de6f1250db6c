"""The `evreid` command line: help, datasets, evaluate, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from evreid.cli import main
from evreid.metrics import evaluate
from evreid.metrics.features import save_features


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "datasets" in out and "evaluate" in out


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "evreid", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("evreid ")


def test_datasets_json(fixtures_dir, capsys):
    assert main(["datasets", "--dataset", "mars", "--root",
                 str(fixtures_dir / "mini_mars"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["ids"] == 16
    assert report["splits"]["train"]["frames"] == 1719
    assert report["splits"]["query"]["tracklets"] == 32


def test_datasets_table(fixtures_dir, capsys):
    assert main(["datasets", "--dataset", "mars", "--root", str(fixtures_dir / "mini_mars"),
                 "--protocol", "mars_official"]) == 0
    out = capsys.readouterr().out
    assert "mars_official" in out and "gallery" in out


def test_missing_dataset_is_one_line_error(tmp_path, capsys):
    assert main(["datasets", "--dataset", "mars", "--root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "expected layout" in err


def features_file(tmp_path, with_distmat=False):
    rng = np.random.default_rng(0)
    q_pids, g_pids = np.arange(6), np.repeat(np.arange(6), 3)
    qf = rng.normal(size=(6, 8))
    gf = qf[g_pids] + 0.5 * rng.normal(size=(18, 8))
    arrays = dict(query_pids=q_pids, gallery_pids=g_pids, query_camids=np.zeros(6),
                  gallery_camids=np.ones(18))
    if with_distmat:
        arrays["distmat"] = rng.random((6, 18))
    else:
        arrays.update(query_features=qf, gallery_features=gf)
    return save_features(tmp_path / "f.npz", **arrays), arrays


@pytest.mark.parametrize("with_distmat", [False, True])
def test_evaluate_command(tmp_path, capsys, with_distmat):
    path, arrays = features_file(tmp_path, with_distmat)
    out_json = tmp_path / "m.json"
    assert main(["evaluate", str(path), "--json", "--out", str(out_json)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads(out_json.read_text()) == report
    if with_distmat:
        expected = evaluate(arrays["distmat"], arrays["query_pids"], arrays["gallery_pids"],
                            arrays["query_camids"], arrays["gallery_camids"])
        assert report["mAP"] == pytest.approx(expected["mAP"] * 100)
    assert report["num_valid_queries"] == 6


def test_evaluate_rerank_and_errors(tmp_path, capsys):
    path, _ = features_file(tmp_path)
    assert main(["evaluate", str(path), "--rerank", "--k1", "4", "--k2", "2"]) == 0
    assert "rank1" in capsys.readouterr().out
    dist_path, _ = features_file(tmp_path / "d", with_distmat=True)
    assert main(["evaluate", str(dist_path), "--rerank"]) == 2
    assert "needs features" in capsys.readouterr().err
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(broken)]) == 2
    assert "cannot read features file" in capsys.readouterr().err
    np.savez(tmp_path / "partial.npz", query_pids=np.arange(2))
    assert main(["evaluate", str(tmp_path / "partial.npz")]) == 2
    assert "lacks ['gallery_pids'" in capsys.readouterr().err


def test_flags_after_positionals_and_overrides(monkeypatch):
    """Flags may come before, between or after the KEY VALUE overrides."""
    from evreid.commands import reproduce

    seen = {}
    monkeypatch.setattr(reproduce, "run", lambda args: seen.update(vars(args)) or 0)
    from evreid import cli

    assert cli.main(["reproduce", "table2", "SOLVER.BASE_LR", "0.1", "--seeds", "0,1",
                     "SEED", "3", "--epochs", "2"]) == 0
    assert seen["table"] == "table2" and seen["seeds"] == "0,1" and seen["epochs"] == 2
    assert seen["opts"] == ["SOLVER.BASE_LR", "0.1", "SEED", "3"]
    # a command without overrides keeps upper-case values as values
    assert cli.split_overrides(["datasets", "--dataset", "MARS"])[1] == []
