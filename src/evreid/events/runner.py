"""Simulating many videos: a frame folder into one event file, a dataset into its cache.

:func:`simulate_dataset` is what ``evreid simulate --dataset`` runs and what a
cluster job array calls, one shard per job: every tracklet of a dataset (train,
query and gallery, each key once) into ``<events_dir>/<key>.evs`` through
:func:`evreid.events.cache.run_job`, over a process pool that stops cleanly on
Ctrl-C (:mod:`evreid.parallel`). Each tracklet's seed comes from the run seed and
its key, so the events do not depend on the worker count, the shard or the order;
fresh cache files are skipped, so a run resumes where it stopped.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from evreid.errors import EvreidError
from evreid.events.cache import Job, cache_path, run_job, tracklet_seed
from evreid.events.config import SimulatorConfig
from evreid.events.simulator import check_device


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n), for cluster job arrays."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise EvreidError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise EvreidError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def simulate_folder(frames_dir: str | os.PathLike, out: str | os.PathLike,
                    config: SimulatorConfig, *, fps: float = 25.0, seed: int = 0,
                    device: str | None = None) -> dict[str, Any]:
    """A folder of frames (numeric order) -> one event file ``out`` (its suffix picks the
    format: .evs, .npz, .h5, .aedat, or a folder of .mat). Returns a summary: frames,
    events, seconds, out, config_hash."""
    from evreid.events.frames import list_frame_files, read_frames
    from evreid.events.io import write_events
    from evreid.events.simulator import frame_timestamps_us, simulate

    check_device(device)
    start = time.perf_counter()
    frames = read_frames(list_frame_files(frames_dir))
    times = frame_timestamps_us(len(frames), fps)
    ev = simulate(frames, times, config, seed=seed, device=device)
    write_events(out, ev, frame_timestamps_us=times, config=config, seed=seed, fps=fps)
    return {"frames": len(frames), "events": len(ev), "seconds": time.perf_counter() - start,
            "out": str(out), "config_hash": config.hash()}


def dataset_jobs(dataset: Any, events_dir: str | os.PathLike, seed: int = 0,
                 shard: tuple[int, int] = (0, 1)) -> list[Job]:
    """One :class:`Job` per unique tracklet key of ``dataset`` (train, query, gallery),
    sorted by key, then every n-th from the i-th for ``shard`` (i, n)."""
    unique = {}
    for t in list(dataset.train) + list(dataset.query) + list(dataset.gallery):
        unique.setdefault(t.key, t)
    shard_i, shard_n = shard
    keys = sorted(unique)[shard_i::shard_n]
    return [Job(key, tuple(unique[key].frames), float(unique[key].fps),
                str(cache_path(events_dir, key)), tracklet_seed(seed, key)) for key in keys]


def _remove_temps(task: tuple) -> None:
    """A worker killed while writing leaves its temp file: remove it (evreid.parallel)."""
    from evreid.utils import remove_stale_temps

    remove_stale_temps(task[0].out)


def simulate_dataset(name: str, root: str | os.PathLike, config: SimulatorConfig, *,
                     events_dir: str | os.PathLike | None = None, seed: int = 0,
                     workers: int = 1, shard: str | tuple[int, int] = (0, 1),
                     force: bool = False, device: str | None = None,
                     progress: bool = False) -> dict[str, Any]:
    """Simulate every tracklet of dataset ``name`` at ``root`` into its event cache.

    ``events_dir``: the cache folder (default ``<dataset folder>/events``, where the
    ``*_event`` dataset variants look); ``shard``: (i, n) or ``"i/n"``, this job's
    share; ``force``: simulate fresh cache files again; ``progress``: a bar on stderr.
    Returns a summary: tracklets, simulated, skipped, frames and events of the newly
    simulated ones, seconds, events_dir, config_hash, ...
    """
    from evreid.data import build_dataset
    from evreid.parallel import imap_unordered
    from evreid.utils import check_writable

    if workers < 1:
        raise EvreidError(f"workers must be >= 1; got {workers}")
    check_device(device)
    shard_i, shard_n = parse_shard(shard) if isinstance(shard, str) else shard
    if not (shard_n >= 1 and 0 <= shard_i < shard_n):
        raise EvreidError(f"shard {shard_i}/{shard_n}: need 0 <= i < n")
    start = time.perf_counter()
    dataset = build_dataset(name, root)
    # the same default folder as build_dataset's: beside the resolved dataset folder
    where = Path(events_dir) if events_dir else Path(dataset.root) / "events"
    check_writable(where, "events folder")
    jobs = dataset_jobs(dataset, where, seed, (shard_i, shard_n))
    # fork is fast, but not safe once torch's thread pools exist in this process
    method = "spawn" if "torch" in sys.modules else None
    results = []
    bar = _bar(len(jobs)) if progress else None
    try:
        # Ctrl-C: finished cache files stay, the running ones are stopped and their temp
        # files removed (evreid.parallel); a re-run resumes from what is there
        for result in imap_unordered(_run_job_star, [(job, config, force, device)
                                                     for job in jobs],
                                     workers, initializer=_worker_init, context=method,
                                     on_abandon=_remove_temps):
            results.append(result)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    done = [r for r in results if not r["skipped"]]
    return {
        "dataset": name, "root": str(root), "events_dir": str(where),
        "shard": f"{shard_i}/{shard_n}", "tracklets": len(jobs), "simulated": len(done),
        "skipped": len(results) - len(done), "frames": sum(r["frames"] for r in done),
        "events": sum(r["events"] for r in done), "seconds": time.perf_counter() - start,
        "config_hash": config.hash(), "seed": seed,
    }


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="simulate", unit="tracklet", file=sys.stderr, disable=None)


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)


def _run_job_star(args: tuple) -> dict:
    return run_job(*args)
