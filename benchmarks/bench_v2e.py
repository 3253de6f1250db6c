"""Throughput of v2e's EventEmulator and of evreid's simulator on the same real MARS crops.

    python benchmarks/bench_v2e.py [--frames 300] [--threads 1] [--device cpu] [--repeats 3]
    python benchmarks/bench_v2e.py --simulator evreid [--frames 300] [--repeats 3]
    python benchmarks/bench_v2e.py --simulator evreid --processes 2   # 2-core throughput

Both simulators get the same frames, timestamps, settings and timer, so run
the two commands back to back (v2e from its own environment) and compare.
``--processes N`` splits the tracklets over N worker processes (one torch
thread each for v2e) and times the whole batch: throughput on N cores.

What it measures: v2e (github.com/SensorsINI/v2e), the common open-source
Python/PyTorch DVS emulator, turning real person crops into events on this
machine. Frames are the mini_mars test tracklets
(``shared/fixtures/mini_mars/bbox_test``, 256x128 RGB JPEGs), decoded with
OpenCV to 8-bit luma (BT.601, as v2e's own readers do), given timestamps at
25 frames/s and fed one by one to ``EventEmulator.generate_events(frame, t)``:
no slow-motion interpolation / upsampling, events only between consecutive
frames. Each tracklet is a separate video, so each gets a fresh emulator.

Settings match evreid's ``realistic`` preset (SimulatorConfig.PRESETS):
ON/OFF threshold 0.2, threshold sigma 0.03, refractory 0.5 ms, leak 0.1 Hz
(jitter 0.1), shot noise 0.5 Hz, cutoff_hz 0 (no photoreceptor low-pass),
device cpu by default. No output files, no display.

Timed: only the ``generate_events`` calls (all frames of every tracklet,
including each tracklet's first frame, which only initialises the pixel
state). JPEG decoding and emulator construction are outside the timer; a few
warm-up frames go through a throw-away emulator first. Reported per run:
frames, seconds, frames/s, events, events/frame, Mevents/s and the torch
threads in use; with ``--repeats`` > 1 also the best and median.

Threads: v2e runs many small torch ops per frame (one pass per threshold
crossing). On a 2-core machine shared with other busy processes, 2 torch
threads can be several times slower than 1 because OpenMP workers spin-wait
for a preempted peer; ``OMP_WAIT_POLICY=PASSIVE`` removes most of that.
Report the thread count and the machine load next to any figure.

Allocator: both simulators run with ``evreid.utils.tune_allocator`` applied (glibc
reuses freed large blocks instead of unmapping them, and NumPy advises no transparent
huge pages), as the evreid CLI runs; without it each new block is fresh pages the kernel
must zero, which cost v2e about 10 % and evreid about 12 % here, and huge-page faults in
fresh worker processes made --processes runs erratic. The setting is printed.

v2e is NOT a dependency of evreid and nothing in the evreid package imports
this file. Install it separately into its own environment, e.g.::

    python -m venv /tmp/v2e-venv && . /tmp/v2e-venv/bin/activate
    pip install torch numpy opencv-python-headless h5py screeninfo engineering-notation tqdm
    # v2e is not published on PyPI (pypi.org/simple/v2e/ is 404): use a checkout of
    # SensorsINI/v2e, then `pip install --no-deps -e <checkout>` or put it on PYTHONPATH

(v2e's emulator module imports cv2, h5py, numpy, torch and screeninfo, plus
v2ecore.v2e_utils, which pulls tkinter and numba, and v2ecore.output.*.) The
script imports ``v2ecore.emulator`` (current v2e) or ``v2e.emulator`` (older
releases) and exits with a message if neither is importable.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MINI_MARS = ROOT.parent / "shared" / "fixtures" / "mini_mars"

#: evreid's 'realistic' preset, in v2e's parameter names.
REALISTIC = dict(pos_thres=0.2, neg_thres=0.2, sigma_thres=0.03, cutoff_hz=0.0,
                 leak_rate_hz=0.1, leak_jitter_fraction=0.1, refractory_period_s=0.5e-3,
                 shot_noise_rate_hz=0.5)
FPS = 25.0


def import_v2e():
    """Return (EventEmulator class, module name) or exit with a clear message."""
    errors = []
    for name in ("v2ecore.emulator", "v2e.emulator"):
        try:
            module = importlib.import_module(name)
            return module.EventEmulator, name
        except Exception as exc:  # ImportError, or an import-time failure inside v2e
            errors.append(f"  {name}: {type(exc).__name__}: {exc}")
    sys.exit("bench_v2e: v2e is not importable, nothing to measure.\n"
             + "\n".join(errors)
             + "\nInstall it separately (it is not an evreid dependency), e.g.\n"
               "  a SensorsINI/v2e checkout on PYTHONPATH (or pip install --no-deps -e it; v2e is "
               "not on PyPI)\n  plus its import-time deps (torch, opencv, h5py, screeninfo, ...).")


def tracklets(data: Path) -> list[list[Path]]:
    """bbox_test JPEGs grouped by tracklet (MARS names: IIIICcTttttFfff.jpg), in name order."""
    test = data / "bbox_test"
    if not test.is_dir():
        sys.exit(f"bench_v2e: no frames folder {test} (use --data)")
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(test.rglob("*.jpg")):
        groups[path.name.rsplit("F", 1)[0]].append(path)
    return [groups[key] for key in sorted(groups)]


def load_luma(paths: list[Path]) -> np.ndarray:
    import cv2

    frames = []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            sys.exit(f"bench_v2e: cannot read {path}")
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))  # BT.601 luma, uint8 0..255
    return np.stack(frames)


def select(all_tracklets: list[list[Path]], n_frames: int) -> list[np.ndarray]:
    """Whole tracklets in order until at least n_frames frames (the last one is cut)."""
    videos, total = [], 0
    for paths in all_tracklets:
        if total >= n_frames:
            break
        take = paths[: n_frames - total]
        if len(take) < 2:
            break
        videos.append(load_luma(take))
        total += len(take)
    if total < n_frames:
        print(f"bench_v2e: only {total} frames available", file=sys.stderr)
    return videos


def run_once_evreid(videos: list[np.ndarray], seed: int, device: str | None = None) -> dict:
    """The same loop through evreid's simulator (``realistic`` preset).

    ``device``: evreid's implementation (None: the default, the compiled kernel;
    "numpy": the reference).
    """
    from evreid.events import SimulatorConfig, frame_timestamps_us, simulate
    from evreid.events.simulator import EventSimulator

    config = SimulatorConfig.preset("realistic")
    seconds, frames, events = 0.0, 0, 0
    for k, video in enumerate(videos):
        times = frame_timestamps_us(len(video), FPS)
        start = time.perf_counter()
        events += len(simulate(video, times, config, seed=seed + k, device=device))
        seconds += time.perf_counter() - start
        frames += len(video)
    intervals = frames - len(videos)
    compiled = EventSimulator(2, 2, config, device=device).compiled
    path = "compiled (numba)" if compiled else "numpy"
    return {"frames": frames, "tracklets": len(videos), "seconds": seconds,
            "frames_per_s": frames / seconds, "events": events,
            "events_per_frame": events / frames,
            "events_per_interval": events / max(intervals, 1),
            "mevents_per_s": events / seconds / 1e6,
            "path": path}


def run_once(EventEmulator, videos: list[np.ndarray], device: str, seed: int) -> dict:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    seconds, frames, events = 0.0, 0, 0
    for video in videos:
        emu = EventEmulator(**REALISTIC, device=device, output_folder=None)
        times = np.arange(len(video)) / FPS
        for frame, t in zip(video, times, strict=True):
            start = time.perf_counter()
            out = emu.generate_events(frame, float(t))
            seconds += time.perf_counter() - start
            frames += 1
            if out is not None:
                events += len(out)
    intervals = frames - len(videos)
    return {"frames": frames, "tracklets": len(videos), "seconds": seconds,
            "frames_per_s": frames / seconds, "events": events,
            "events_per_frame": events / frames,
            "events_per_interval": events / max(intervals, 1),
            "mevents_per_s": events / seconds / 1e6,
            "torch_threads": torch.get_num_threads()}


def tune_allocator() -> bool:
    """``evreid.utils.tune_allocator`` (glibc keeps freed large blocks for reuse), which
    the evreid CLI applies at start; applied to both simulators so they run in the same
    process environment. Loaded from its file: v2e's environment need not have evreid.
    It made v2e ~10 % faster here, too (fewer page faults on its per-frame tensors)."""
    spec = importlib.util.spec_from_file_location("_evreid_utils", ROOT / "src" / "evreid" /
                                                  "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tune_allocator()


def _setup_worker(simulator: str) -> None:
    tune_allocator()
    if simulator == "evreid":
        return
    import torch

    torch.set_num_threads(1)
    for name in ("v2ecore", "v2e"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_share(simulator: str, videos: list[np.ndarray], device: str, seed: int) -> dict:
    if simulator == "evreid":
        return run_once_evreid(videos, seed, device)
    return run_once(import_v2e()[0], videos, device, seed)


def _worker(simulator: str, videos: list[np.ndarray], device: str, seed: int, ready,
            results) -> None:
    """One process of a --processes run: warms up on its longest tracklet, waits for
    the others, then simulates its whole share (one thread) and reports."""
    try:
        _setup_worker(simulator)
        _run_share(simulator, videos[:1], device, seed)
        ready.wait()
        results.put(_run_share(simulator, videos, device, seed))
    except Exception as exc:  # reported to the parent, which would otherwise wait
        ready.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def run_parallel(simulator: str, videos: list[np.ndarray], device: str, seed: int,
                 processes: int) -> dict:
    """Wall time of all tracklets over ``processes`` workers (longest first, round robin).

    The clock starts when every worker holds its share and has warmed up on its longest
    tracklet (imports, compiled-kernel cache, the heap grown to size): shipping the
    frames to a worker (~60 MB per share here) and starting it are not simulation."""
    import multiprocessing
    import threading

    order = sorted(range(len(videos)), key=lambda k: -len(videos[k]))
    shares = [[videos[k] for k in order[i::processes]] for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(simulator, share, device, seed, ready,
                                                 results)) for share in shares]
    for w in workers:
        w.start()
    try:
        ready.wait(timeout=1800)
    except threading.BrokenBarrierError:
        parts = [results.get(timeout=60) for _ in workers]
        errors = [p["error"] for p in parts if "error" in p] or ["a worker did not start"]
        sys.exit(f"bench_v2e: worker failed: {errors[0]}")
    start = time.perf_counter()
    parts = [results.get(timeout=7200) for _ in workers]
    seconds = time.perf_counter() - start
    for w in workers:
        w.join()
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        sys.exit(f"bench_v2e: worker failed: {errors[0]}")
    frames = sum(p["frames"] for p in parts)
    events = sum(p["events"] for p in parts)
    return {"frames": frames, "tracklets": len(videos), "seconds": seconds,
            "frames_per_s": frames / seconds, "events": events,
            "events_per_frame": events / frames,
            "events_per_interval": events / max(frames - len(videos), 1),
            "mevents_per_s": events / seconds / 1e6, "processes": processes,
            "worker_seconds": [round(p["seconds"], 3) for p in parts],
            "path": parts[0].get("path", "v2e")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="frames to simulate (>= 300 advised)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default=None,
                    help="v2e's torch device (cpu, cuda; default cpu); with --simulator "
                         "evreid, its implementation (numba, numpy; default: the compiled "
                         "kernel)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs (best and median reported)")
    ap.add_argument("--warmup", type=int, default=5, help="warm-up frames (not timed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=MINI_MARS, help="mini_mars folder")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--verbose", action="store_true", help="keep v2e's log warnings")
    ap.add_argument("--simulator", choices=("v2e", "evreid"), default="v2e")
    ap.add_argument("--processes", type=int, default=1,
                    help="worker processes (> 1: wall-clock throughput over all of them)")
    args = ap.parse_args(argv)
    allocator = tune_allocator()
    print(f"allocator: glibc keeps freed blocks (evreid.utils.tune_allocator): {allocator}")
    if args.simulator == "evreid":
        return main_evreid(args)
    args.device = args.device or "cpu"

    EventEmulator, module = import_v2e()
    import torch

    logging.basicConfig(level=logging.WARNING)
    if not args.verbose:  # v2e warns per frame without events and when no screen is found
        for name in ("v2ecore", "v2e", module):
            logging.getLogger(name).setLevel(logging.ERROR)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    videos = select(tracklets(args.data), args.frames)
    h, w = videos[0].shape[1:]
    source = getattr(sys.modules[module], "__file__", "?")
    print(f"v2e module {module} ({source})")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"python {platform.python_version()}, cpus {os.cpu_count()}")
    print(f"input: {sum(len(v) for v in videos)} frames of {h}x{w} (HxW) luma in {len(videos)} "
          f"tracklets at {FPS:g} fps; settings {REALISTIC}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    warm = EventEmulator(**REALISTIC, device=args.device, output_folder=None)
    for k in range(min(args.warmup, len(videos[0]))):
        warm.generate_events(videos[0][k], k / FPS)

    runs = []
    for r in range(args.repeats):
        if args.processes > 1:
            res = run_parallel("v2e", videos, args.device, args.seed, args.processes)
            res["torch_threads"] = 1
        else:
            res = run_once(EventEmulator, videos, args.device, args.seed)
        runs.append(res)
        print(f"run {r + 1}: {res['frames']} frames, {res['seconds']:.2f} s, "
              f"{res['frames_per_s']:.1f} frames/s, {res['events']:,} events, "
              f"{res['events_per_frame']:,.0f} events/frame "
              f"({res['events_per_interval']:,.0f} per frame interval), "
              f"{res['mevents_per_s']:.3f} Mevents/s, torch threads {res['torch_threads']}"
              + (f", worker seconds {res['worker_seconds']}" if "worker_seconds" in res else ""))
    fps = [r["frames_per_s"] for r in runs]
    eps = [r["mevents_per_s"] for r in runs]
    print(f"frames/s best {max(fps):.1f} median {statistics.median(fps):.1f}; "
          f"Mevents/s best {max(eps):.3f} median {statistics.median(eps):.3f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"module": module, "torch": torch.__version__,
                                         "device": args.device, "settings": REALISTIC,
                                         "runs": runs}, indent=2))
    return 0


def main_evreid(args: argparse.Namespace) -> int:
    videos = select(tracklets(args.data), args.frames)
    h, w = videos[0].shape[1:]
    print(f"evreid simulator, python {platform.python_version()}, cpus {os.cpu_count()}, "
          f"processes {args.processes}, device {args.device or 'default (compiled CPU kernel)'}")
    print(f"input: {sum(len(v) for v in videos)} frames of {h}x{w} (HxW) luma in {len(videos)} "
          f"tracklets at {FPS:g} fps; preset realistic")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # load the compiled kernel from numba's cache
    run_once_evreid([videos[0][: max(args.warmup, 2)]], args.seed, args.device)
    runs = []
    for r in range(args.repeats):
        if args.processes > 1:
            res = run_parallel("evreid", videos, args.device, args.seed, args.processes)
        else:
            res = run_once_evreid(videos, args.seed, args.device)
        runs.append(res)
        print(f"run {r + 1}: {res['frames']} frames, {res['seconds']:.3f} s, "
              f"{res['frames_per_s']:.1f} frames/s, {res['events']:,} events, "
              f"{res['events_per_frame']:,.0f} events/frame, "
              f"{res['mevents_per_s']:.2f} Mevents/s, path {res['path']}"
              + (f", worker seconds {res['worker_seconds']}" if "worker_seconds" in res else ""))
    fps = [r["frames_per_s"] for r in runs]
    print(f"frames/s best {max(fps):.1f} median {statistics.median(fps):.1f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"simulator": "evreid", "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
