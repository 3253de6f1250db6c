"""The results page (benchmarks/RESULTS.md) is generated from benchmarks/results/*.json:
the committed page matches its JSON, each renderer gives exact markdown, record.py
stores what a command printed (and nothing when it fails), and the README quotes no
figure the page does not carry."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report = _load("report")
record = _load("record")

SANDBOX = {"cpu": "Test CPU 9000", "cores": 2, "python": "3.11.7", "torch": "2.13.0+cpu"}


def _doc(name: str, result: dict, **extra) -> dict:
    return {"name": name, "command": "python x.py --json", "commit": "abc1234",
            "date": "2026-12-06T05:00:00Z", "machine": SANDBOX,
            "load": {"start": 1.5, "end": 1.75}, "wall_s": 12.34, "result": result, **extra}


# ------------------------------------------------------------- the committed page

def test_committed_page_matches_its_json():
    assert report.main(["--check"]) == 0


def test_check_names_the_stale_section(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("ci", "eval"):
        doc = json.loads((BENCH / "results" / f"{name}.json").read_text())
        (results / f"{name}.json").write_text(json.dumps(doc))
    page = tmp_path / "RESULTS.md"
    assert report.main(["--results", str(results), "--page", str(page)]) == 0
    assert report.main(["--check", "--results", str(results), "--page", str(page)]) == 0
    doc = json.loads((results / "ci.json").read_text())
    doc["result"]["passed"] += 1                       # a new figure, page not regenerated
    (results / "ci.json").write_text(json.dumps(doc))
    assert report.main(["--check", "--results", str(results), "--page", str(page)]) == 1
    err = capsys.readouterr().err
    assert "in: ci;" in err and "eval" not in err.split("in:")[1]


def test_every_result_has_a_renderer_and_provenance():
    docs = report.load_results()
    assert docs, "no results"
    for doc in docs:
        assert {"name", "command", "commit", "date", "machine", "result"} <= set(doc)
        assert doc["name"] == Path(doc["name"]).stem
        assert doc["machine"]["cpu"] and doc["machine"]["cores"]


def test_unknown_result_name_is_refused(tmp_path):
    (tmp_path / "mystery.json").write_text(json.dumps(_doc("mystery", {})))
    with pytest.raises(SystemExit, match="no renderer for \\['mystery'\\]"):
        report.load_results(tmp_path)


def test_page_is_short():
    # issue 21: "at most about 400 lines"; two 5-seed reproduce tables took it past 400
    assert (BENCH / "RESULTS.md").read_text().count("\n") <= 420


# ------------------------------------------------------------- renderers

def test_provenance_of_a_recorded_and_a_transcribed_result():
    assert report.provenance(_doc("eval", {})) == [
        "commit `abc1234`; 2026-12-06T05:00:00Z; Test CPU 9000 (2 cores); Python 3.11.7, "
        "torch 2.13.0+cpu; load 1.5 -> 1.75; 12 s wall.", "", "    python x.py --json", ""]
    busy = report.provenance(_doc("eval", {}, load={"start": 1.5, "end": 2.25}))
    assert busy[4:] == ["The load exceeded the 2 cores: wall-clock figures in this section are "
                        "slower than on a free machine (lower bounds of its throughput).", ""]
    old = _doc("eval", {}, load=None, wall_s=None, load_note="load average ~9",
               transcribed_from="benchmarks/RESULTS.md at b6abcaf",
               dirty=["src/evreid/x.py"], commit="abc1234-dirty")
    assert report.provenance(old) == [
        "commit `abc1234-dirty` (uncommitted: src/evreid/x.py); 2026-12-06T05:00:00Z; "
        "Test CPU 9000 (2 cores); Python 3.11.7, torch 2.13.0+cpu; load average ~9.", "",
        "    python x.py --json", "", "Transcribed from benchmarks/RESULTS.md at b6abcaf.", ""]


def _demo_run(seed: int, sdcl: tuple[float, float], frames: tuple[float, float]) -> dict:
    """An `evreid demo --json` report; (clean, blur) mAP per arch, rank-1 = mAP - 10."""
    runs = {}
    for arch, maps in (("sdcl", sdcl), ("frames_only", frames)):
        for protocol, m in zip(("clean", "blur"), maps, strict=True):
            runs[f"{arch} / {protocol}"] = {"mAP": m, "mINP": m, "rank1": m - 10,
                                            "rank5": m, "rank10": m, "rank20": m,
                                            "train_seconds": 10.0}
    return {"generation_seconds": 5.0, "preset": "small", "runs": runs, "seed": seed,
            "total_seconds": 100.0 + seed, "train_protocol": "clean"}


def test_demo_seeds_renders_rows_and_paired_statistics():
    # SDCL - frames-only: clean +1, +2, +3 (mean 2, std 1, t(2) = 4.303: half 2.484);
    # blur +5 on every seed (std 0: the interval is the mean)
    seeds = {"0": _demo_run(0, (81, 65), (80, 60)), "1": _demo_run(1, (72, 55), (70, 50)),
             "2": _demo_run(2, (93, 45), (90, 40))}
    lines = report.demo_seeds(_doc("demo_seeds", {"train_protocol": "clean", "seeds": seeds}))
    assert lines == [
        "mAP (percent), trained on clean, each seed its own draw of the benchmark and "
        "initialisation:", "",
        "| seed | SDCL clean | frames-only clean | SDCL blur | frames-only blur | Δ clean "
        "| Δ blur | wall s (load-sensitive) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| 0 | 81.00 | 80.00 | 65.00 | 60.00 | +1.0 | +5.0 | 100 |",
        "| 1 | 72.00 | 70.00 | 55.00 | 50.00 | +2.0 | +5.0 | 101 |",
        "| 2 | 93.00 | 90.00 | 45.00 | 40.00 | +3.0 | +5.0 | 102 |", "",
        "SDCL minus frames-only over seeds, mean ± std [95 % t-interval] (evreid.stats):", "",
        "- clean, mAP: +2.0 ± 1.0 [-0.5, +4.5], positive on 3 of 3",
        "- clean, rank-1: +2.0 ± 1.0 [-0.5, +4.5], positive on 3 of 3",
        "- blur, mAP: +5.0 ± 0.0 [+5.0, +5.0], positive on 3 of 3",
        "- blur, rank-1: +5.0 ± 0.0 [+5.0, +5.0], positive on 3 of 3", "",
        "Metrics are exact per run; training is not bit-identical across CPUs, so another "
        "machine gives other digits (compare within the CIs)."]


def _reproduce_report() -> dict:
    """`evreid reproduce --json` structure (engine/reproduce.py run_table), two rows x 3
    seeds: frames-only mAP 10 / 20 / 30, SDCL 5 points above on every seed and metric."""
    runs = []
    for seed, base in zip((0, 1, 2), (10.0, 20.0, 30.0), strict=True):
        for row, arch, add in (("frames only", "frames_only", 0.0), ("SDCL", "sdcl", 5.0)):
            run = {"row": row, "arch": arch, "protocol": "blur", "seed": seed,
                   "data_seed": seed, "config_hash": "h", "seconds": 1.0,
                   **{m: base + add for m in ("rank1", "rank5", "mAP", "mINP")}}
            if arch == "sdcl":
                run["diagnostics"] = {
                    "events_zeroed": {"rank1": base + 1, "mAP": base + 1},
                    "frames_zeroed": {"rank1": 2.0, "mAP": 2.0}}
            runs.append(run)
    return {"table": "table1", "title": "Table 1: test", "seeds": [0, 1, 2],
            "dataset": "synthetic", "preset": "medium", "protocol": "blur",
            "data_seed": "run seed", "runs": runs, "paper": {},
            "references": {"SDCL": "frames only"}, "statistics": {"stale": "ignored"}}


def test_reproduce_renders_statistics_recomputed_from_the_runs():
    # mean 20, std 10, t(2) = 4.303: half 24.84; SDCL +5 -> 25 [0.2, 49.8]
    lines = report.reproduce(_doc("reproduce_table1_medium_blur", _reproduce_report()))
    assert lines == [
        "### Table 1: test", "",
        "dataset synthetic (medium), protocol blur, seeds [0, 1, 2] (data seed: run seed). "
        "Percent; mean ± std [95 % t-interval of the mean] over seeds.", "",
        "Only 3 seed(s): these figures describe these runs; a claim needs at least 5.", "",
        "| row | rank-1 | mAP | mINP | seeds |", "| --- | --- | --- | --- | --- |",
        "| frames only | 20.0 ± 10.0 [-4.8, 44.8] | 20.0 ± 10.0 [-4.8, 44.8] | "
        "20.0 ± 10.0 [-4.8, 44.8] | 3 |",
        "| SDCL | 25.0 ± 10.0 [0.2, 49.8] | 25.0 ± 10.0 [0.2, 49.8] | "
        "25.0 ± 10.0 [0.2, 49.8] | 3 |", "",
        "Paired differences, row minus its reference on the same seeds (percent points):", "",
        "| row − reference | Δ rank-1 | Δ mAP | Δ mINP | seeds with Δ mAP > 0 |",
        "| --- | --- | --- | --- | --- |",
        "| SDCL − frames only | +5.0 ± 0.0 [+5.0, +5.0] | +5.0 ± 0.0 [+5.0, +5.0] | "
        "+5.0 ± 0.0 [+5.0, +5.0] | 3 / 3 |", "",
        "Modality diagnostics of the fused rows: mAP of the trained model with one input "
        "zeroed at test time, and the drop from the full mAP:", "",
        "| row | mAP | events zeroed | drop | frames zeroed | drop |",
        "| --- | --- | --- | --- | --- | --- |",
        "| SDCL | 25.0 ± 10.0 [0.2, 49.8] | 21.0 ± 10.0 [-3.8, 45.8] | "
        "+4.0 ± 0.0 [+4.0, +4.0] | 2.0 ± 0.0 [2.0, 2.0] | +23.0 ± 10.0 [-1.8, +47.8] |"]


def test_reproduce_names_get_their_own_titled_section():
    doc = _doc("reproduce_table1_medium_blur", _reproduce_report())
    text = report.render_section(doc)
    assert text.startswith("<!-- section: reproduce_table1_medium_blur -->\n"
                           "## `evreid reproduce`: table1_medium_blur (table_preset_protocol)\n\n"
                           "commit `abc1234`;")
    assert report.section_key("reproduce_table3_medium_clean")[0] \
        == report.section_key("reproduce_table1_small_blur")[0]


def test_model_renderer():
    result = {"arch": "frames_only", "input": {"seq_len": 8, "bins": 3, "height": 256,
                                               "width": 128},
              "params": {"total": 35_423_436, "by_module": {"heads": 1_000_000,
                                                            "backbone": 23_510_000}},
              "macs_per_clip": 37_370_000_000, "flops_per_clip": 74_740_000_000,
              "macs_per_frame": 4_671_250_000, "macs_by_module": {"backbone": 32_430_000_000},
              "synops_per_clip": 0.0}
    assert report.model(_doc("model_frames_only", result)) == [
        "`frames_only`: **35.4 M parameters, 37.4 GMACs per clip** (35,423,436 parameters; "
        "37.37 GMACs = 74.74 GFLOPs per clip of 8 frames at 256x128, 3 bins; 4.67 GMACs per "
        "frame; 0.0 M SynOps). Counts: exact, machine-independent.", "",
        "Target: PSTA: 35.4 M parameters, 37.3 GMACs (+-3 %).", "",
        "| part | params (M) | GMACs / clip |", "| --- | ---: | ---: |",
        "| backbone | 23.51 | 32.43 |", "| heads | 1.00 | 0.00 |"]


def test_loader_renderer_reads_bench_loader_keys():
    result = {"tracklets": 2, "seq_len": 8, "size": [256, 128], "bins": 3,
              "cache": {"frames": 100, "events": 3_000_000, "events_per_frame": 30_000.0,
                        "kib_per_frame": {"npz": 80.0, "evs": 50.0},
                        "seconds": {"simulate": 0.2, "write_evs": 0.1, "write_npz": 0.3}},
              "per_clip_cpu": {"frames+store": {"median_ms": 4.0, "x_frames": 2.0,
                                                "rounds_ms": [4.0, 4.5]},
                               "frames": {"median_ms": 2.0, "x_frames": 1.0,
                                          "rounds_ms": [2.0, 2.1]}},
              "loader_clips_per_s": {"frames_workers_0": 300.0, "frames_workers_2": 310.4,
                                     "frames+store_workers_0": 150.0}}
    assert report.loader(_doc("loader", result)) == [
        "2 mini_mars training tracklets, 100 frames, 3,000,000 events (30,000 per frame); "
        "clips of 8 frames at 256 x 128, 3 count bins.", "",
        "Bytes on disk, the same events: the `.evs` store: 50.0 KiB per frame, 61 GB for "
        "MARS' 1.19 M frames; the old `.npz` cache: 80.0 KiB per frame, 97 GB for MARS' "
        "1.19 M frames.", "",
        "Simulating and writing the store: 3.0 ms per frame (wall clock, one process).", "",
        "Per-clip CPU time of the loading thread (`time.thread_time`, robust to load), ms per "
        "`__getitem__`; and loader clips/s (wall clock, batches of 8 clips; load-sensitive):",
        "",
        "| clip | median ms | x frames only | clips/s, 0 workers | clips/s, 2 workers | rounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| frames only | 2.00 | 1.00 | 300 | 310 | 2.00, 2.10 |",
        "| frames + events, `.evs` store | 4.00 | 2.00 | 150 | - | 4.00, 4.50 |"]


def test_loader_renderer_with_paired_rounds_gives_the_ratio_interval():
    clips = {"frames": {"median_ms": 2.0, "x_frames": 1.0, "rounds_ms": [2.0, 2.0, 2.0],
                        "x_frames_rounds": [1.0, 1.0, 1.0]},
             "frames+store": {"median_ms": 4.0, "x_frames": 2.0, "rounds_ms": [3.8, 4.0, 4.4],
                              "x_frames_rounds": [1.9, 2.0, 2.2]}}
    result = {"tracklets": 2, "seq_len": 8, "size": [256, 128], "bins": 3,
              "cache": {"frames": 100, "events": 3_000_000, "events_per_frame": 30_000.0,
                        "kib_per_frame": {"evs": 50.0}},
              "per_clip_cpu": clips, "loader_clips_per_s": {"frames_workers_0": 300.0}}
    lines = report.loader(_doc("loader", result))
    assert lines[4].startswith("Per-clip CPU time") and "(3 rounds; each mode in a process" \
        in lines[4]
    # mean 2.033, std 0.153, t(0.975, 2) = 4.303: half-width 0.379
    assert lines[6:10] == [
        "| clip | median ms | x frames only | ratio, mean [95 % CI] | clips/s, 0 workers | "
        "rounds (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| frames only | 2.00 | 1.00 | - | 300 | 2.00, 2.00, 2.00 |",
        "| frames + events, `.evs` store | 4.00 | 2.00 | 2.03 [1.65, 2.41] | - | 3.80, 4.00, "
        "4.40 |"]


def test_loader_renderer_gives_each_fidelity_table():
    row = {"frame_count_ratio_median": 1.05, "frame_count_ratio_p10_p90": [0.98, 1.19],
           "pixel_count_dist_max_abs_diff": 0.0085}
    result = {"tracklets": 2, "seq_len": 8, "size": [256, 128], "bins": 3,
              "cache": {"frames": 100, "events": 3_000_000, "events_per_frame": 30_000.0,
                        "kib_per_frame": {"evs": 50.0}},
              "per_clip_cpu": {"frames": {"median_ms": 2.0, "x_frames": 1.0,
                                          "rounds_ms": [2.0]}},
              "loader_clips_per_s": {"frames_workers_0": 300.0},
              "fidelity": {"warmup_1": row, "warmup_1_anchored": row, "windows": 10},
              "fidelity_synthetic": {"warmup_1": row, "windows": 20,
                                     "root": "/tmp/x/synthetic_small_blur_seed0"}}
    lines = report.loader(_doc("loader", result))
    at = lines.index("On the fly against the exact simulator (10 and 20 windows of 8 training "
                     "tracklets):")
    assert lines[at + 2:] == [
        "| data | warm-up windows | per-frame count ratio, median | p10-p90 | pixel count "
        "distribution, max abs diff |", "| --- | --- | ---: | ---: | ---: |",
        "| mini_mars | 1 | 1.050 | 0.980-1.190 | 0.0085 |",
        "| mini_mars | 1, anchored | 1.050 | 0.980-1.190 | 0.0085 |",
        "| `synthetic_small_blur_seed0` | 1 | 1.050 | 0.980-1.190 | 0.0085 |"]


def test_events_source_renderer_pairs_the_sources_by_seed():
    def runs(blur: float, clean: float) -> dict:
        return {"sdcl / blur": {"mAP": blur}, "sdcl / clean": {"mAP": clean}}

    result = {"preset": "small_lookalike", "train_protocol": "blur", "sources": {
        "on_the_fly": {"0": runs(50.0, 60.0), "1": runs(52.0, 61.0)},
        "simulated_store": {"0": runs(51.0, 60.0), "1": runs(55.0, 62.0)},
        "rendered": {"0": runs(60.0, 70.0), "1": runs(58.0, 66.0), "2": runs(1.0, 1.0)}}}
    lines = report.events_source(_doc("events_source", result))
    assert lines[0].endswith("on the fly: `EVENTS.SOURCE simulate`, computed from the same "
                             "frames in the loader):")
    assert lines[2:7] == [
        "| seed | rendered, blur | simulated store, blur | on the fly, blur | rendered, clean "
        "| simulated store, clean | on the fly, clean |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| 0 | 60.00 | 51.00 | 50.00 | 70.00 | 60.00 | 60.00 |",
        "| 1 | 58.00 | 55.00 | 52.00 | 66.00 | 62.00 | 61.00 |", ""]
    # blur: differences -1, -3: mean -2, std 1.41, t(0.975, 1) = 12.71 -> +-12.7
    assert lines[7:] == [
        "Differences over seeds, mean ± std [95 % t-interval]:",
        "- on the fly - simulated store, blur, mAP: -2.0 ± 1.4 [-14.7, +10.7], positive on 0 "
        "of 2",
        "- on the fly - simulated store, clean, mAP: -0.5 ± 0.7 [-6.9, +5.9], positive on 0 "
        "of 2",
        "- simulated store - rendered, blur, mAP: -6.0 ± 4.2 [-44.1, +32.1], positive on 0 "
        "of 2",
        "- simulated store - rendered, clean, mAP: -7.0 ± 4.2 [-45.1, +31.1], positive on 0 "
        "of 2"]


def test_store_bound_renderer_sums_streams_per_part():
    streams = {"mask": 2.5, "n": 3.5, "n_big": 0.25, "pol": 1.0, "pol_events": 0.0,
               "t_single": 11.0, "t_ends": 26.0, "inner": 1.5, "inner_big": 0.0, "order": 0.0}
    floor = {"occupancy": 2.0, "run_lengths": 2.5, "polarity": 0.25, "single_times": 10.5,
             "multi_span_and_gap": 22.0, "inner_residuals": 1.25}
    result = {"tracklets": 3, "frames": 300, "events": 9_000_000, "file_kib_per_frame": 46.0,
              "stream_kib_per_frame": streams, "floor_kib_per_frame": floor,
              "floor_total_kib_per_frame": 38.5}
    lines = report.store_bound(_doc("store_bound", result))
    assert lines[0].startswith("All 3 mini_mars tracklets") and "**46.00 KiB per frame**" \
        in lines[0] and lines[0].endswith("A 40 KiB store is 3.9 % above the floor.")
    assert lines[2:] == [
        "| part | context of the floor | stored | floor |", "| --- | --- | ---: | ---: |",
        "| occupancy | the 4 causal neighbours' bits | 2.50 | 2.00 |",
        "| run lengths | the left and upper lengths | 3.75 | 2.50 |",
        "| polarity | the left and upper polarities | 1.00 | 0.25 |",
        "| single-event times | none (neighbours tell nothing) | 11.00 | 10.50 |",
        "| longer runs: first time, span | span given the length; the end gap below the "
        "spacing | 26.00 | 22.00 |",
        "| inner residuals | none | 1.50 | 1.25 |",
        "| all streams |  | 45.75 | 38.50 |"]


# ------------------------------------------------------------- record.py

def _json_command(obj: object) -> list[str]:
    return [sys.executable, "-c", f"import json; print(json.dumps({obj!r}))"]


def test_record_stores_the_command_output_with_provenance(tmp_path):
    cmd = _json_command({"a": 1})
    assert record.main(["x1", "--out-dir", str(tmp_path), "--", *cmd]) == 0
    doc = json.loads((tmp_path / "x1.json").read_text())
    assert doc["result"] == {"a": 1}
    assert doc["name"] == "x1" and doc["command"] == record.shlex.join(cmd)
    assert re.fullmatch(r"[0-9a-f]{7,}(-dirty)?", doc["commit"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["date"])
    assert set(doc["machine"]) == {"cpu", "cores", "python", "torch"}
    assert set(doc["load"]) == {"start", "end"} and doc["wall_s"] >= 0


@pytest.mark.parametrize("code", ["import sys; sys.exit(3)", "print('not json')"])
def test_record_writes_nothing_when_the_command_fails(tmp_path, code):
    with pytest.raises(SystemExit) as exc:
        record.main(["x2", "--out-dir", str(tmp_path), "--", sys.executable, "-c", code])
    assert exc.value.code not in (0, None)
    assert list(tmp_path.iterdir()) == []


def test_record_from_file_with_overrides(tmp_path):
    out = tmp_path / "out.json"
    out.write_text(json.dumps({"b": [1, 2]}))
    assert record.main(["x3", "--out-dir", str(tmp_path), "--from-file", str(out),
                        "--command", "evreid demo --json", "--commit", "1234abc",
                        "--date", "2026-12-01T00:00:00Z"]) == 0
    doc = json.loads((tmp_path / "x3.json").read_text())
    assert (doc["result"], doc["command"], doc["commit"], doc["date"]) == (
        {"b": [1, 2]}, "evreid demo --json", "1234abc", "2026-12-01T00:00:00Z")


def test_record_per_seed_files_become_the_demo_seeds_structure(tmp_path):
    paths = []
    for seed in (1, 0):
        paths.append(tmp_path / f"seed{seed}.json")
        paths[-1].write_text(json.dumps(_demo_run(seed, (80, 60), (70, 50))))
    assert record.main(["x4", "--out-dir", str(tmp_path), "--per-seed", "--from-file",
                        *map(str, paths), "--command", "evreid demo --seed S --json"]) == 0
    result = json.loads((tmp_path / "x4.json").read_text())["result"]
    assert list(result["seeds"]) == ["0", "1"]
    assert result["seeds"]["1"] == _demo_run(1, (80, 60), (70, 50))
    # shared scalars kept; per-seed ones (seed, total_seconds) and dicts (runs) not
    assert {k: v for k, v in result.items() if k != "seeds"} == {
        "generation_seconds": 5.0, "preset": "small", "train_protocol": "clean"}
    assert report.demo_seeds(_doc("demo_seeds", result))[4].startswith("| 0 | 80.00 |")


def test_record_refuses_bad_names_and_missing_commands(tmp_path):
    for argv in (["Bad-Name", "--", "true"], ["ok"], ["ok", "--from-file", "x.json"],
                 ["ok", "--from-file", "a.json", "b.json", "--command", "c"],
                 ["ok", "--per-seed", "--", "true"]):
        with pytest.raises(SystemExit):
            record.main(["--out-dir", str(tmp_path), *argv])


# ------------------------------------------------------------- the README

#: a number with a unit: "341 s", "35.4 M", "21.8x", "~61 GB", "2.7 %"
FIGURE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:x\b|\s?(?:ms|s|min|minutes|seconds|hours"
                    r"|core-hours|GB|GiB|MB|KiB|M|GMACs|GFLOPs|frames/s|clips/s|%)(?![\w/]))")
#: README figures that are not results (no measurement to carry), with why
NOT_RESULTS = {"135.7 s": "an example recording clock in the --rebase-time text",
               "33.3 ms": "iLIDS-VID's frame period in the authors' partition rule"}


def readme_figures() -> list[str]:
    """Every number-with-unit in the README's prose (code blocks aside)."""
    figures, fenced = [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            figures += [m.group(0) for m in FIGURE.finditer(line)]
    return figures


def test_readme_quotes_only_figures_the_page_carries():
    page = (BENCH / "RESULTS.md").read_text()
    missing = [f for f in readme_figures() if f not in NOT_RESULTS and f not in page]
    assert not missing, f"README figures not on benchmarks/RESULTS.md: {missing}"
