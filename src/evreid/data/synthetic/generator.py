"""Generate a synthetic dataset folder: frames, events, splits and the dataset card.

Why staged writing: the whole folder is generated in a hidden sibling
``.<name>.partial-<pid>`` and renamed into place only when complete, with the
dataset card written last inside it. An interrupted run therefore leaves no
folder that loads (the loader requires the card), and the files inside the
staging folder need no per-file atomic rename (thousands of fsyncs would
dominate the run time).

Why a card-based cache: the demo calls :func:`ensure_synthetic` on every run;
when the folder's card has the same cache key (format and generator versions,
preset, protocol, seed, simulator version) nothing is regenerated.

Determinism: each tracklet is a pure function of (seed, preset, protocol,
pid, camera) -- see :mod:`evreid.data.synthetic.tracklet` -- and the files are
encoded with fixed settings, so the bytes do not depend on the number of
workers or the order in which they finish.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from evreid.data.datasets.synthetic import CARD_NAME, EVENTS_DIR, SPLITS_NAME, read_card
from evreid.data.synthetic import events_io
from evreid.data.synthetic.identities import Identity
from evreid.data.synthetic.protocols import (
    EFFECTS,
    MIXED_PROBABILITY,
    PROTOCOLS,
    Preset,
    check_protocol,
    get_preset,
)
from evreid.data.synthetic.tracklet import (
    STREAM_SPLITS,
    camera_of,
    identity_of,
    plan_tracklet,
    render_tracklet,
    rng_for,
)
from evreid.errors import EvreidError
from evreid.parallel import imap_unordered
from evreid.utils import atomic_write_json

#: bump when a change alters the bytes generated for the same preset / protocol / seed
GENERATOR_VERSION = 1
FORMAT_VERSION = 1
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]

FAIRNESS_RULES = (
    "The generation parameters of each preset and protocol are fixed in code "
    "(evreid.data.synthetic.protocols) and recorded in this card; they were chosen for "
    "physical plausibility and run time, not tuned to favour any model.",
    "Identity is recoverable from clean frames alone (build, clothing pattern, sleeves, "
    "trouser type, shoes, hair, bag and gait differ between identities) but is not "
    "trivial: top and bottom colours come from small shared palettes and every camera has "
    "its own illumination gain and colour cast, so a colour-histogram nearest neighbour "
    "stays well below a good model (its numbers are in docs/SYNTHETIC.md).",
    "Frames and events are pixel-aligned and time-aligned by construction: both sensors "
    "see the same rendered scene, the events of frame k are those in (t_{k-1}, t_k] and "
    "are cropped with frame k's box.",
)


def person_name(pid: int) -> str:
    return f"person_{pid:04d}"


def tracklet_folder_name(preset: Preset, pid: int, visit: int) -> str:
    """``person_NNNN``, or ``person_NNNN_V`` (V = visit + 1) for multi-visit presets."""
    return f"{person_name(pid)}_{visit + 1}" if preset.multi_visit else person_name(pid)


def tracklet_slots(preset: Preset) -> list[tuple[int, int, int]]:
    """(pid, camera, visit) of every tracklet: each identity through each camera
    ``tracklets_per_camera`` times, then the distractors through the gallery cameras."""
    visits = range(preset.tracklets_per_camera)
    slots = [(pid, cam, v) for pid in range(1, preset.num_ids + 1)
             for cam in range(preset.num_cameras) for v in visits]
    slots += [(pid, cam, v)
              for pid in range(preset.num_ids + 1, preset.num_ids + preset.distractors + 1)
              for cam in range(1, preset.num_cameras) for v in visits]
    return slots


def cache_key(preset: Preset, protocol: str, seed: int, with_events: bool) -> dict[str, Any]:
    """What makes two generations byte-identical; a folder whose card differs is stale."""
    from evreid.events.simulator import SIMULATOR_VERSION

    return {"format_version": FORMAT_VERSION, "generator_version": GENERATOR_VERSION,
            "preset": preset.to_dict(), "protocol": protocol, "seed": int(seed),
            "with_events": bool(with_events),
            "events_format": events_io.FORMAT if with_events else None,
            "simulator_version": SIMULATOR_VERSION if with_events else None}


def _identity_entry(ident: Identity) -> dict[str, Any]:
    """Every drawn parameter of one identity (colours as sRGB triples, lengths in statures)."""
    entry = ident.to_dict()
    entry["name"] = person_name(ident.pid)
    return entry


def make_splits(seed: int, names: list[str], num_splits: int) -> list[dict[str, list[str]]]:
    """Half of the identities train, half test, a fresh permutation per split."""
    splits = []
    for i in range(num_splits):
        order = rng_for(seed, STREAM_SPLITS, i).permutation(len(names))
        half = len(names) // 2
        splits.append({"train": sorted(names[j] for j in order[:half]),
                       "test": sorted(names[j] for j in order[half:])})
    return splits


@dataclass
class GenerationReport:
    """What :func:`generate_synthetic` did."""

    root: Path
    cache_hit: bool
    seconds: float
    preset: str
    protocol: str
    seed: int
    workers: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "cache_hit": self.cache_hit,
                "seconds": round(self.seconds, 3), "preset": self.preset,
                "protocol": self.protocol, "seed": self.seed, "workers": self.workers,
                **self.stats}


class _Task(NamedTuple):
    preset: str
    pid: int
    cam: int
    protocol: str
    seed: int
    with_events: bool
    staging: str
    visit: int = 0


def _render_and_write(task: _Task) -> dict[str, Any]:
    """Worker: render one tracklet and write its frames and events into the staging folder."""
    preset_name, pid, cam, protocol, seed, with_events, staging_dir, visit = task
    staging = Path(staging_dir)
    cv2.setNumThreads(1)
    plan = plan_tracklet(seed, get_preset(preset_name), pid, cam, protocol, visit)
    out = render_tracklet(plan, with_events=with_events)
    name = tracklet_folder_name(plan.preset, pid, visit)
    folder = staging / plan.camera.name / name
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(out.frames):
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]), PNG_PARAMS)
        if not ok:
            raise EvreidError(f"synthetic: PNG encoding failed for {folder}/{k + 1:04d}.png")
        (folder / f"{k + 1:04d}.png").write_bytes(buf.tobytes())
    num_events = 0
    if out.events is not None:
        path = staging / EVENTS_DIR / plan.camera.name / f"{name}{events_io.SUFFIX}"
        events_io.save(path, out.events, out.timestamps_us, plan.preset.fps,
                       out.event_config)
        num_events = len(out.events)
    entry = {"pid": pid, "cam": cam, "frames": plan.length, "events": num_events,
             "effects": plan.effects.names(), "phase0": round(plan.phase0, 6),
             "velocity_px_s": round(plan.velocity, 4), "occluders": len(plan.occluders),
             "bystanders": len(plan.bystanders)}
    if plan.preset.multi_visit:   # one-visit cards keep their published entries
        entry.update(visit=visit, tracklet=name)
    return entry


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _stage_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def _remove_abandoned_stages(out: Path) -> None:
    """Delete staging folders of ``out`` left by killed runs (their process is gone)."""
    if not out.parent.is_dir():
        return
    for stage in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int(stage.name.rsplit("-", 1)[1])
            os.kill(pid, 0)          # raises when no such process exists
        except ProcessLookupError:
            shutil.rmtree(stage, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def card_matches(root: str | Path, preset: str, protocol: str, seed: int,
                 with_events: bool = True) -> bool:
    """True when ``root`` holds a complete generation with exactly these settings."""
    card_path = Path(root) / CARD_NAME
    if not card_path.is_file():
        return False
    try:
        card = read_card(card_path)
    except EvreidError:
        return False
    return card.get("cache_key") == cache_key(get_preset(preset), protocol, seed, with_events)


def generate_synthetic(out: str | Path, preset: str = "small", protocol: str = "clean",
                       seed: int = 0, workers: int | None = None, force: bool = False,
                       with_events: bool = True, progress: bool = False) -> GenerationReport:
    """Generate the dataset into ``out`` (nothing to do when its card already matches).

    A non-empty ``out`` whose card does not match is refused unless ``force``,
    in which case it is replaced once the new generation is complete.
    """
    t0 = time.perf_counter()
    spec = get_preset(preset)
    check_protocol(protocol)
    if int(seed) < 0:
        raise EvreidError(f"synthetic: seed must be >= 0, got {seed}")
    out = Path(out)
    if card_matches(out, preset, protocol, seed, with_events):
        return GenerationReport(out, True, time.perf_counter() - t0, preset, protocol, int(seed),
                                stats=_stats_from_card(out))
    if out.exists() and not _is_empty_dir(out) and not force:
        raise EvreidError(f"synthetic: {out} exists and is not empty (and holds no matching "
                          f"{CARD_NAME}); choose another --out or pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise EvreidError(f"synthetic: {out} is a file, not a folder")
    if workers is not None and int(workers) < 1:
        raise EvreidError(f"synthetic: workers must be >= 1; got {workers}")
    workers = workers or _default_workers()
    _remove_abandoned_stages(out)
    staging = _stage_folder(out)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        results = _run_tasks(spec, protocol, int(seed), with_events, staging, workers, progress)
        names = [person_name(pid) for pid in range(1, spec.num_ids + 1)]   # no distractors
        atomic_write_json(staging / SPLITS_NAME, make_splits(int(seed), names, spec.num_splits))
        stats = _summarise(results)
        atomic_write_json(staging / CARD_NAME,
                          _card(spec, protocol, int(seed), with_events, results, stats))
        for name in (SPLITS_NAME, CARD_NAME):   # temp files are created owner-only
            os.chmod(staging / name, 0o644)
        _install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return GenerationReport(out, False, time.perf_counter() - t0, preset, protocol, int(seed),
                            workers=workers, stats=stats)


def _run_tasks(spec: Preset, protocol: str, seed: int, with_events: bool, staging: Path,
               workers: int, progress: bool) -> list[dict[str, Any]]:
    tasks = [_Task(spec.name, pid, cam, protocol, seed, with_events, str(staging), visit)
             for pid, cam, visit in tracklet_slots(spec)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=f"synth {spec.name}/{protocol}", unit="tracklet")
    results = []
    try:
        # spawn, not fork: callers (the demo, tests) may hold torch threads. Ctrl-C stops
        # the workers within seconds (evreid.parallel); the staging folder is then removed
        for result in imap_unordered(_render_and_write, tasks, workers, context="spawn"):
            results.append(result)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return sorted(results, key=lambda r: (r["pid"], r["cam"], r.get("visit", 0)))


def _summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    lengths = [r["frames"] for r in results]
    effects: dict[str, int] = {}
    for r in results:
        for name in r["effects"]:
            effects[name] = effects.get(name, 0) + 1
    return {"identities": len({r["pid"] for r in results}), "tracklets": len(results),
            "frames": int(sum(lengths)), "min_len": int(min(lengths)),
            "median_len": float(np.median(lengths)), "max_len": int(max(lengths)),
            "events": int(sum(r["events"] for r in results)),
            "events_per_frame": float(sum(r["events"] for r in results) / max(1, sum(lengths))),
            "tracklets_per_effect": effects}


def _card(spec: Preset, protocol: str, seed: int, with_events: bool,
          results: list[dict[str, Any]], stats: dict[str, Any]) -> dict[str, Any]:
    from evreid.events.simulator import SIMULATOR_VERSION

    card = {
        "name": "evreid synthetic benchmark",
        "cache_key": cache_key(spec, protocol, seed, with_events),
        "preset": spec.to_dict(), "protocol": protocol, "seed": seed,
        "protocols_available": list(PROTOCOLS),
        "effects": EFFECTS, "mixed_probability": MIXED_PROBABILITY,
        "with_events": with_events, "simulator_version": SIMULATOR_VERSION,
        "cameras": [camera_of(seed, c).to_dict() for c in range(spec.num_cameras)],
        "identities": [_identity_entry(identity_of(seed, pid, spec.outfit_of(pid)))
                       for pid in range(1, spec.num_ids + spec.distractors + 1)],
        "tracklets": [{"person": person_name(r["pid"]), **{k: v for k, v in r.items()
                                                           if k != "pid"}}
                      for r in results],
        "statistics": stats,
        "layout": {"frames": "<camera>/person_NNNN/NNNN.png (1-based, RGB PNG)",
                   "events": f"{EVENTS_DIR}/<camera>/person_NNNN{events_io.SUFFIX}",
                   "splits": SPLITS_NAME, "query_camera": "cam_a",
                   "frame_time_us": "t_k = round(k * 1e6 / fps); events of frame k in "
                                    "(t_{k-1}, t_k]"},
        "fairness_rules": list(FAIRNESS_RULES),
    }
    if spec.multi_visit:
        card["layout"]["frames"] = "<camera>/person_NNNN_V/NNNN.png (visit V, 1-based)"
        card["layout"]["events"] = f"{EVENTS_DIR}/<camera>/person_NNNN_V{events_io.SUFFIX}"
    if spec.outfit_group > 1:   # look-alike groups: who wears which outfit
        for entry in card["identities"]:
            entry["outfit"] = spec.outfit_of(int(entry["pid"]))
    if spec.distractors:   # gallery-only identities, in no split
        card["distractors"] = [person_name(pid) for pid in
                               range(spec.num_ids + 1, spec.num_ids + spec.distractors + 1)]
    return card


def _stats_from_card(root: Path) -> dict[str, Any]:
    with contextlib.suppress(EvreidError):
        return dict(read_card(root / CARD_NAME).get("statistics", {}))
    return {}


def _install(staging: Path, out: Path) -> None:
    """Move the finished staging folder to ``out``, replacing what ``out`` held."""
    old = None
    if out.exists() and not _is_empty_dir(out):
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(staging, out)   # an empty directory is replaced atomically too
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def synthetic_folder(base: str | Path, preset: str, protocol: str, seed: int) -> Path:
    """The conventional folder of one (preset, protocol, seed) under ``base``."""
    return Path(base) / f"synthetic_{preset}_{protocol}_seed{int(seed)}"


def ensure_synthetic(root: str | Path, preset: str = "small", protocol: str = "clean",
                     seed: int = 0, workers: int | None = None, progress: bool = False) -> Path:
    """The folder of (preset, protocol, seed) under ``root``, generated only when missing or stale.

    Folders of different protocols with the same seed hold the same identities,
    cameras and trajectories, so train on one and test on another freely.
    """
    folder = synthetic_folder(root, preset, protocol, seed)
    generate_synthetic(folder, preset, protocol, seed, workers=workers, force=True,
                       progress=progress)
    return folder
