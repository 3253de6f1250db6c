"""`evreid demo` end to end on the tiny synthetic preset (the real demo uses `small`)."""

from __future__ import annotations

import json

import pytest

from evreid.cli import main


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    out, data = tmp_path / "run", tmp_path / "data"
    args = ["demo", "--preset", "tiny", "--epochs", "1", "--out", str(out), "--data", str(data),
            "--no-progress", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["runs"]) == {"sdcl / clean", "sdcl / blur", "frames_only / clean",
                                   "frames_only / blur"}
    for name in ("cmc.png", "demo_metrics.json", "ranked_sdcl_blur.png",
                 "ranked_frames_only_blur.png", "sdcl/config.yaml", "sdcl/last.pth",
                 "frames_only/metrics.json"):
        assert (out / name).is_file(), name
    # the same seed gives the same figures; the datasets are reused from the cache
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert {k: v["mAP"] for k, v in again["runs"].items()} == {
        k: v["mAP"] for k, v in report["runs"].items()}
    assert again["generation_seconds"] < report["generation_seconds"] + 1.0


@pytest.mark.slow
def test_viz_subcommands_on_a_trained_run(tmp_path, capsys):
    import cv2

    out, data = tmp_path / "run", tmp_path / "data"
    assert main(["demo", "--preset", "tiny", "--epochs", "1", "--out", str(out), "--data",
                 str(data), "--no-progress", "--archs", "sdcl"]) == 0
    run = out / "sdcl"
    assert main(["test", "--config-file", str(run / "config.yaml"),
                 "--checkpoint", str(run / "last.pth")]) == 0
    pictures = {
        "cmc": ["viz", "cmc", str(run / "features.npz"), str(run / "features.npz"),
                "--labels", "a,b"],
        "ranked": ["viz", "ranked", "--run", str(run), "--queries", "2", "--topk", "2"],
        "features": ["viz", "features", "--checkpoint", str(run / "last.pth")],
        "contact": ["viz", "contact", "--root", str(next(data.glob("*clean*"))),
                    "--ids", "2", "--frames", "2"],
    }
    for name, args in pictures.items():
        png = tmp_path / f"{name}.png"
        assert main([*args, "--out", str(png)]) == 0, name
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] > 20 and image.std() > 0, name
    assert main(["viz", "cmc", str(run / "features.npz"), "--labels", "a,b",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "--labels names 2 curves for 1 files" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
