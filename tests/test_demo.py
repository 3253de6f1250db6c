"""`evreid demo` end to end on the tiny synthetic preset (the real demo uses `small`)."""

from __future__ import annotations

import json

from evreid.cli import main


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
