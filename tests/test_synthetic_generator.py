"""Synthetic benchmark generation: determinism, cache, refusal, loader, errors, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evreid.cli import main
from evreid.data import build_dataset
from evreid.data.datasets import DatasetError
from evreid.data.synthetic import ensure_synthetic, generate_synthetic, synthetic_folder
from evreid.data.synthetic.events_io import load
from evreid.errors import EvreidError


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "tiny_clean"
    generate_synthetic(root, "tiny", "clean", seed=3, workers=1)
    return root


def test_same_seed_same_bytes_whatever_the_workers(tiny, tmp_path):
    other = tmp_path / "again"
    report = generate_synthetic(other, "tiny", "clean", seed=3, workers=2)
    assert not report.cache_hit and report.workers == 2
    first, second = tree_hashes(tiny), tree_hashes(other)
    assert len(first) > 100            # frames of 16 tracklets, 16 event files, splits, card
    assert first == second


def test_another_seed_gives_other_people(tiny, tmp_path):
    other = tmp_path / "seed4"
    generate_synthetic(other, "tiny", "clean", seed=4, workers=1)
    a = json.loads((tiny / "dataset_card.json").read_text())["identities"]
    b = json.loads((other / "dataset_card.json").read_text())["identities"]
    assert a != b


def test_layout_splits_and_card(tiny):
    card = json.loads((tiny / "dataset_card.json").read_text())
    assert card["preset"]["name"] == "tiny" and card["protocol"] == "clean" and card["seed"] == 3
    assert [c["name"] for c in card["cameras"]] == ["cam_a", "cam_b"]
    assert len(card["fairness_rules"]) == 3
    splits = json.loads((tiny / "splits_synthetic.json").read_text())
    assert len(splits) == 10
    names = {f"person_{i:04d}" for i in range(1, 9)}
    for split in splits:
        assert set(split["train"]) | set(split["test"]) == names
        assert not set(split["train"]) & set(split["test"])
        assert len(split["train"]) == len(split["test"]) == 4
    assert len({tuple(s["train"]) for s in splits}) > 1
    for t in card["tracklets"]:
        folder = tiny / card["cameras"][t["cam"]]["name"] / t["person"]
        assert len(list(folder.glob("*.png"))) == t["frames"]
    assert card["statistics"]["frames"] == sum(t["frames"] for t in card["tracklets"])
    assert not list(tiny.parent.glob(".*partial*"))     # the staging folder is gone


def test_events_are_time_and_pixel_aligned_with_frames(tiny):
    import cv2

    frames = sorted((tiny / "cam_b" / "person_0002").glob("*.png"))
    per_frame = load(tiny / "events" / "cam_b" / "person_0002.evs", len(frames), 20.0)
    events = per_frame.events
    height, width = cv2.imread(str(frames[0])).shape[:2]
    assert (events.height, events.width) == (height, width)
    stamps = per_frame.windows[:, 1]
    assert np.array_equal(stamps, np.arange(len(frames)) * 50_000)
    # frame k owns (t_{k-1}, t_k]; frame 0 owns the interval before it
    assert per_frame.windows[0, 0] == -50_000
    assert events.t.min() > -50_000 and events.t.max() <= stamps[-1]
    counts = [len(per_frame.frame_events(k)) for k in range(len(frames))]
    assert sum(counts) == len(events) and min(counts) > 0
    assert set(np.unique(events.p)) == {-1, 1}
    # the library's loader reads the cache (pipeline path), frame 0 window given explicitly
    from evreid.events import load_tracklet_events

    tensor = load_tracklet_events(str(tiny / "events" / "cam_b" / "person_0002.evs"),
                                  len(frames), 20.0, first_window_us=50_000).tensor(
        [0, len(frames) - 1], bins=3, representation="count")
    assert tensor.shape == (2, 3, 2, height, width) and tensor[0].sum() > 0


def test_cache_hit_rewrites_nothing(tiny):
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()}
    report = generate_synthetic(tiny, "tiny", "clean", seed=3, workers=1)
    assert report.cache_hit
    assert report.stats["tracklets"] == 16
    assert {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()} == before


def test_events_from_another_simulator_version_are_stale(tiny, monkeypatch):
    from evreid.data.synthetic.generator import card_matches
    from evreid.events import simulator

    assert card_matches(tiny, "tiny", "clean", 3)
    monkeypatch.setattr(simulator, "SIMULATOR_VERSION", simulator.SIMULATOR_VERSION + 1)
    assert not card_matches(tiny, "tiny", "clean", 3)


def test_refuses_non_empty_folder_unless_forced(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(EvreidError, match="not empty.*--force"):
        generate_synthetic(out, "tiny", "clean", seed=0, workers=1)
    assert (out / "notes.txt").read_text() == "mine"
    generate_synthetic(out, "tiny", "clean", seed=0, workers=1, force=True)
    assert not (out / "notes.txt").exists() and (out / "dataset_card.json").is_file()


def test_stale_card_is_not_a_cache_hit(tiny, tmp_path):
    out = tmp_path / "stale"
    shutil.copytree(tiny, out)
    with pytest.raises(EvreidError, match="not empty"):
        generate_synthetic(out, "tiny", "clean", seed=5, workers=1)


def test_interrupted_generation_leaves_nothing_loadable(tmp_path, monkeypatch):
    from evreid.data.synthetic import generator

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generator, "make_splits", crash)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(out, "tiny", "clean", seed=0, workers=1)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_abandoned_staging_folder_is_cleaned(tmp_path):
    dead = tmp_path / ".gone.partial-999999999"      # no such process
    dead.mkdir()
    (dead / "0001.png").write_bytes(b"half")
    generate_synthetic(tmp_path / "gone", "tiny", "clean", seed=0, workers=1, with_events=False)
    assert not dead.exists() and (tmp_path / "gone" / "dataset_card.json").is_file()


def test_ensure_synthetic_generates_once(tmp_path):
    folder = ensure_synthetic(tmp_path, "tiny", "blur", seed=1, workers=1)
    assert folder == synthetic_folder(tmp_path, "tiny", "blur", 1)
    card = folder / "dataset_card.json"
    mtime = card.stat().st_mtime_ns
    assert ensure_synthetic(tmp_path, "tiny", "blur", seed=1, workers=1) == folder
    assert card.stat().st_mtime_ns == mtime


def test_build_dataset_synthetic_and_event_variant(tiny):
    dataset = build_dataset("synthetic", tiny, split_id=2)
    stats = dataset.summary()
    assert stats["train"]["ids"] == 4 and stats["train"]["tracklets"] == 8
    assert stats["query"]["tracklets"] == 4 and stats["gallery"]["tracklets"] == 4
    assert {t.camid for t in dataset.query} == {0} and {t.camid for t in dataset.gallery} == {1}
    assert sorted({t.pid for t in dataset.train}) == [0, 1, 2, 3]
    assert all(t.events and t.events.endswith(".evs") for t in dataset.query + dataset.gallery)
    assert dataset.query[0].fps == 20.0
    assert dataset.extra["synthetic_protocol"] == "clean" and dataset.extra["num_splits"] == 10
    splits = json.loads((tiny / "splits_synthetic.json").read_text())
    test_pids = {int(name[-4:]) for name in splits[2]["test"]}
    assert {t.pid for t in dataset.query} == test_pids
    events = build_dataset("synthetic_event", tiny)
    assert events.name == "synthetic_event"
    assert all(t.events is not None for t in events.train)


def test_synthetic_event_requires_events(tiny, tmp_path):
    root = tmp_path / "frames_only"
    shutil.copytree(tiny, root)
    shutil.rmtree(root / "events")
    assert all(t.events is None for t in build_dataset("synthetic", root).query)
    with pytest.raises(DatasetError, match="events"):
        build_dataset("synthetic_event", root)


@pytest.mark.parametrize("missing", ["dataset_card.json", "splits_synthetic.json"])
def test_missing_card_or_splits_names_the_file(tiny, tmp_path, missing):
    root = tmp_path / "broken"
    shutil.copytree(tiny, root)
    (root / missing).unlink()
    with pytest.raises(DatasetError, match=missing):
        build_dataset("synthetic", root)


def test_corrupt_card_and_bad_split_id(tiny, tmp_path):
    root = tmp_path / "corrupt"
    shutil.copytree(tiny, root)
    (root / "dataset_card.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset_card.json"):
        build_dataset("synthetic", root)
    with pytest.raises(DatasetError, match="split_id 10"):
        build_dataset("synthetic", tiny, split_id=10)


def test_cli_synth_json_and_refusal(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--preset", "tiny", "--workers", "1",
                 "--no-events", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tracklets"] == 16 and report["events"] == 0 and not report["cache_hit"]
    assert not (out / "events").exists()
    assert main(["synth", "--out", str(out), "--preset", "tiny", "--no-events", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cache_hit"]
    assert main(["synth", "--out", str(out), "--preset", "tiny", "--seed", "9"]) == 2
    assert "--force" in capsys.readouterr().err
