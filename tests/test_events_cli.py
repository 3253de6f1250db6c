"""`evreid simulate` and `evreid viz events`, on tiny frames and on the real MARS fixture."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from evreid.cli import main
from evreid.events import SimulatorConfig, read_events, simulate
from evreid.events.cache import tracklet_seed
from evreid.events.io import read_events_with_meta
from evreid.events.simulator import frame_timestamps_us

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MINI_MARS = FIXTURES / "mini_mars"


def _frames_dir(tmp_path: Path, n: int = 6) -> tuple[Path, np.ndarray]:
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = np.full((n, 32, 16), 60, np.uint8)
    for k in range(n):
        frames[k, 8:20, 2 + 2 * k:8 + 2 * k] = 200
        cv2.imwrite(str(folder / f"img{k + 1}.png"), frames[k])   # img10 after img9
    return folder, frames


def test_simulate_frames_to_file(tmp_path, capsys):
    folder, frames = _frames_dir(tmp_path, 11)
    out = tmp_path / "ev.npz"
    assert main(["simulate", "--frames", str(folder), "--fps", "30", "--out", str(out),
                 "--preset", "clean", "--seed", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ev, meta = read_events_with_meta(out)
    assert summary["frames"] == 11 and summary["events"] == len(ev) > 0
    times = frame_timestamps_us(11, 30)
    assert meta["frame_timestamps_us"].tolist() == times.tolist()
    # numeric frame order, same events as the library call
    expected = simulate(frames, times, SimulatorConfig.preset("clean"), seed=3)
    assert ev.equals(expected)


def test_simulate_set_override_and_aedat(tmp_path, capsys):
    folder, _ = _frames_dir(tmp_path)
    out = tmp_path / "ev.aedat"
    assert main(["simulate", "--frames", str(folder), "--out", str(out),
                 "--set", "pos_threshold=0.3", "--set", "refractory_us=0"]) == 0
    assert len(read_events(out)) > 0
    assert main(["simulate", "--frames", str(folder), "--out", str(out),
                 "--set", "pos_thresh=0.3"]) == 2
    assert "pos_thresh" in capsys.readouterr().err


def test_simulate_settings_are_key_value_like_config_overrides(tmp_path, capsys):
    folder, frames = _frames_dir(tmp_path, 8)
    times = frame_timestamps_us(8, 25)
    expected = simulate(frames, times, SimulatorConfig.preset(
        "realistic", pos_threshold=0.3, refractory_us=0), seed=0)
    runs = {"key_value": ["pos_threshold", "0.3", "refractory_us", "0"],
            "flags_after": ["pos_threshold", "0.3", "refractory_us", "0", "--seed", "0"],
            "set_alias": ["--set", "pos_threshold=0.3", "--set", "refractory_us=0"]}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.npz"
        argv = ["simulate", "--frames", str(folder), "--out", str(out), "--preset",
                "realistic"]
        assert main(argv[:1] + extra + argv[1:] if name == "flags_after" else argv + extra) == 0
        assert read_events(out).equals(expected), name
        err = capsys.readouterr().err
        deprecated = ("evreid simulate: --set KEY=VALUE is deprecated and goes in the next "
                      "release; write KEY VALUE (e.g. cutoff_hz 200)")
        assert (deprecated in err.splitlines()) == (name == "set_alias")
    bad = {"pos_thresh": "evreid simulate: error: unknown simulator setting 'pos_thresh'; one of",
           "refractory_us": "evreid simulate: error: simulator settings must be KEY VALUE "
                            "pairs; 'refractory_us' has no value"}
    for key, message in bad.items():
        argv = ["simulate", "--frames", str(folder), "--out", str(tmp_path / "x.npz"), key]
        assert main(argv + (["0.3"] if key == "pos_thresh" else [])) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines
    assert main(["simulate", "--frames", str(folder), "--out", str(tmp_path / "x.npz"),
                 "cutoff_hz", "fast"]) == 2
    assert capsys.readouterr().err == ("evreid simulate: error: simulator setting cutoff_hz "
                                       "needs a number; got 'fast'\n")


def test_simulate_errors_name_the_problem(tmp_path, capsys):
    assert main(["simulate", "--frames", str(tmp_path / "nope"), "--out", "x.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evreid simulate: error:") and "nope" in err
    assert main(["simulate", "--out", "x.npz"]) == 2
    assert "exactly one source" in capsys.readouterr().err
    folder, _ = _frames_dir(tmp_path)
    (folder / "img99.png").write_bytes(b"\x89PNG broken")
    assert main(["simulate", "--frames", str(folder), "--out", str(tmp_path / "a.npz")]) == 2
    assert "img99.png" in capsys.readouterr().err


def test_viz_events_from_frames(tmp_path, capsys):
    folder, _ = _frames_dir(tmp_path)
    out = tmp_path / "viz.png"
    assert main(["viz", "events", "--frames", str(folder), "--out", str(out), "--json",
                 "--num-frames", "4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (summary["height"], summary["width"])
    assert summary["width"] == 4 * 16 + 3 * 4
    # the events row shows red (ON) and blue (OFF) pixels of the moving bar
    events_row = img[32 + 4:, :, :]
    red = (events_row[..., 2] > 150) & (events_row[..., 0] < 100)
    blue = (events_row[..., 0] > 150) & (events_row[..., 2] < 100)
    assert red.sum() > 10 and blue.sum() > 10


def _need_mini_mars() -> None:
    if not (MINI_MARS / "info").is_dir():
        pytest.skip(f"real MARS fixture not found at {MINI_MARS}")


def test_simulate_dataset_cache_is_resumable(tmp_path, capsys):
    _need_mini_mars()
    out = tmp_path / "events"
    args = ["simulate", "--dataset", "mars", "--root", str(MINI_MARS), "--out", str(out),
            "--shard", "5/96", "--workers", "1", "--preset", "realistic", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["tracklets"] == 1 and first["simulated"] == 1 and first["events"] > 0
    files = list(out.rglob("*.evs"))
    assert len(files) == 1
    key = str(files[0].relative_to(out).with_suffix(""))
    ev, meta = read_events_with_meta(files[0])
    assert meta["config_hash"] == SimulatorConfig.preset("realistic").hash()
    assert meta["seed"] == tracklet_seed(0, key) and len(ev) == first["events"]
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["simulated"] == 0 and again["skipped"] == 1
    # a different preset is a stale cache: simulated again
    assert main(args[:-3] + ["--preset", "clean", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["simulated"] == 1


def test_events_on_real_frames_follow_brightness_changes():
    _need_mini_mars()
    from evreid.events.frames import read_frames
    from evreid.events.simulator import log_intensity

    folder = MINI_MARS / "bbox_test" / "0004"
    paths = sorted(folder.glob("0004C1T0002F*.jpg"))[:12]
    frames = read_frames(paths)
    times = frame_timestamps_us(len(frames), 25.0)
    cfg = SimulatorConfig.preset("clean", threshold_sigma=0.0)
    ev = simulate(frames, times, cfg)
    assert (ev.width, ev.height) == (128, 256)
    L = log_intensity(frames.astype(np.float64), cfg)
    for k in (3, 7, 11):
        win = ev.window(int(times[k - 1]), int(times[k]))
        on = np.zeros((256, 128))
        off = np.zeros((256, 128))
        np.add.at(on, (win.y[win.p > 0], win.x[win.p > 0]), 1)
        np.add.at(off, (win.y[win.p < 0], win.x[win.p < 0]), 1)
        signed = on - off
        dL = L[k] - L[k - 1]
        # events track the signed log change: strong correlation, right polarity
        assert np.corrcoef(signed.ravel(), dL.ravel())[0, 1] > 0.8
        assert np.all(signed[dL > 0.5] > 0) and np.all(signed[dL < -0.5] < 0)
