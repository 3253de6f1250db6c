"""`evreid demo` end to end on the tiny synthetic preset (the real demo uses
`small_lookalike`, trained on blur)."""

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
    assert report["train_protocol"] == "blur" and report["preset"] == "tiny"


def test_demo_defaults_and_the_single_run_caveat(tmp_path, capsys, monkeypatch):
    from evreid.commands import demo as demo_command
    from evreid.commands.synth import PRESET_CHOICES
    from evreid.data.synthetic.protocols import PRESETS
    from evreid.engine import demo as demo_engine

    assert tuple(PRESETS) == PRESET_CHOICES   # the CLI spells the generator's presets out
    assert PRESETS["small_lookalike"].outfit_group == 4
    calls = {}

    def fake_run_demo(out, data, archs, train_protocol, test_protocols, **kw):
        calls.update(archs=archs, train=train_protocol, test=test_protocols, **kw)
        from evreid.metrics import REPORTED_RANKS
        row = {**{f"rank{r}": 50.0 for r in REPORTED_RANKS}, "mAP": 60.0, "mINP": 40.0}
        return {"runs": {"sdcl / blur": row}, "total_seconds": 1.0, "generation_seconds": 0.0}

    monkeypatch.setattr(demo_engine, "run_demo", fake_run_demo)
    assert main(["demo", "--out", str(tmp_path / "o"), "--data", str(tmp_path / "d")]) == 0
    assert calls["train"] == "blur" and calls["test"] == ["clean", "blur"]
    assert calls["preset"] == "small_lookalike" and calls["archs"] == ["sdcl", "frames_only"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == demo_command.SINGLE_RUN_CAVEAT
    assert "does not measure SDCL against frames-only" in printed[-1]


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
