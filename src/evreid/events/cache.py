"""The event cache of a dataset: one ``.evs`` store per tracklet, and filling one.

Why a module of its own: the dataset runner (:mod:`evreid.events.runner`) and the
data pipeline need the same three rules -- where a tracklet's events live
(``<events_dir>/<key>.evs``, the clip-indexed store of :mod:`evreid.events.store`),
which seed it gets (derived from the run seed and its key, so the result does not
depend on worker count, shard or order), and when a cached file can be reused
(same config hash and frame count). A fresh cache of the older format
(``<key>.npz``) is converted to the store instead of simulated again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evreid.errors import EvreidError


def tracklet_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the run seed and the tracklet key (order-independent)."""
    digest = hashlib.sha256(f"evreid-events/{int(seed)}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


#: the cache's file suffix (the store); ``.npz`` was the format before it
CACHE_SUFFIX = ".evs"
LEGACY_SUFFIX = ".npz"


def cache_path(events_dir: str | Path, key: str, suffix: str = CACHE_SUFFIX) -> Path:
    if not key:
        raise EvreidError("tracklet has no key; cannot place its events in the cache")
    return Path(events_dir) / f"{key}{suffix}"


@dataclass(frozen=True)
class Job:
    """One tracklet to simulate: its key, frame files, frame rate, cache file, seed."""

    key: str
    frames: tuple[str, ...]
    fps: float
    out: str
    seed: int


def run_job(job: Job, config: Any, force: bool = False, device: str | None = None) -> dict:
    """Simulate one tracklet into its cache file (skipped when already fresh); returns
    a summary (key, skipped, frames, events, seconds)."""
    from evreid.events.frames import read_frames
    from evreid.events.io import cache_is_fresh, write_events
    from evreid.events.simulator import frame_timestamps_us, simulate

    start = time.perf_counter()
    if not force and cache_is_fresh(job.out, config, num_frames=len(job.frames)):
        return {"key": job.key, "skipped": True, "frames": len(job.frames), "events": 0,
                "seconds": time.perf_counter() - start}
    legacy = Path(job.out).with_suffix(LEGACY_SUFFIX)
    if (not force and Path(job.out).suffix == CACHE_SUFFIX
            and cache_is_fresh(legacy, config, num_frames=len(job.frames))):
        from evreid.events.store import convert_to_store

        # the same events, re-packed (checked to round-trip), cheaper than simulating
        convert_to_store(legacy, job.out)
        return {"key": job.key, "skipped": True, "converted": True, "frames": len(job.frames),
                "events": 0, "seconds": time.perf_counter() - start}
    frames = read_frames(job.frames)
    times = frame_timestamps_us(len(frames), job.fps)
    ev = simulate(frames, times, config, seed=job.seed, device=device)
    write_events(job.out, ev, frame_timestamps_us=times, config=config,
                 key=job.key, seed=job.seed, fps=job.fps)
    return {"key": job.key, "skipped": False, "frames": len(frames), "events": len(ev),
            "seconds": time.perf_counter() - start}
