"""Speed of the event simulator: frames/s and events/s.

    python benchmarks/bench_simulator.py [--frames 100] [--md table.md]

Figures are recorded in benchmarks/RESULTS.md.

Parts:
1. Synthetic video (a textured figure walking over a textured background) at
   256x128 and 128x64: the compiled (numba) kernel and the NumPy reference,
   linear interpolation (no sub-steps), the low-pass filter (per-pixel
   sub-steps, NumPy) and optical-flow upsampling.
2. A reference emulator kept in this file: the textbook per-pixel Python loop
   (loop over pixels, then over each crossing), the way a simple Python DVS
   emulator is written. It runs on a subset of pixels; its pixel-updates/s are
   scaled to whole frames. v2e itself (not a dependency) is compared on real
   MARS crops by ``benchmarks/bench_v2e.py``.
3. The yardstick: the whole mini_mars test set (64 tracklets, 3,853 frames of
   256x128, /work/shared/fixtures/mini_mars) with the ``realistic`` preset and
   log-linear interpolation: simulation alone on one core, and frames
   loading + simulation on a 2-process pool (what ``evreid simulate`` does,
   minus writing); writing the cache is reported separately, and flow
   upsampling on a subset.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from evreid.events import SimulatorConfig, frame_timestamps_us, simulate
from evreid.events.simulator import log_intensity

ROOT = Path(__file__).resolve().parents[1]
MINI_MARS = ROOT.parent / "shared" / "fixtures" / "mini_mars"


# ---------------------------------------------------------------------------------------
# synthetic input
# ---------------------------------------------------------------------------------------
def synthetic_video(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured ellipse 'person' moving sideways over a textured, slowly panning wall."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(40, 200, (height // 4 + 2, width // 4 + 2)).astype(np.float64)
    tex = np.kron(tex, np.ones((4, 4)))
    body = rng.integers(20, 240, (height // 8 + 1, width // 8 + 1)).astype(np.float64)
    body = np.kron(body, np.ones((8, 8)))[:height, :width]
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width), np.uint8)
    for k in range(n):
        shift = k % 4
        bg = tex[shift:shift + height, 0:width]
        cx = width * (0.3 + 0.4 * (0.5 + 0.5 * math.sin(k / 9)))
        mask = ((xx - cx) / (0.18 * width)) ** 2 + ((yy - height / 2) / (0.42 * height)) ** 2 < 1
        frames[k] = np.where(mask, np.roll(body, int(cx), axis=1), bg)
    return frames


# ---------------------------------------------------------------------------------------
# reference: per-pixel Python loop emulator
# ---------------------------------------------------------------------------------------
def reference_loop_emulator(frames: np.ndarray, times: np.ndarray, threshold: float = 0.2,
                            pixels: int | None = None) -> list[tuple[int, int, int, int]]:
    """Textbook DVS emulation: for every pixel, for every frame pair, for every crossing."""
    L = log_intensity(frames.astype(np.float64))
    n, h, w = L.shape
    flat = L.reshape(n, -1)
    count = flat.shape[1] if pixels is None else min(pixels, flat.shape[1])
    events = []
    for i in range(count):
        ref = flat[0, i]
        for k in range(1, n):
            l0, l1 = flat[k - 1, i], flat[k, i]
            t0, t1 = times[k - 1], times[k]
            # (a crossing within 1e-9 threshold counts, absorbing float rounding)
            while l1 - ref >= threshold * (1 - 1e-9):
                ref += threshold
                events.append((round(t0 + (ref - l0) / (l1 - l0) * (t1 - t0)), i % w, i // w, 1))
            while ref - l1 >= threshold * (1 - 1e-9):
                ref -= threshold
                events.append((round(t0 + (ref - l0) / (l1 - l0) * (t1 - t0)), i % w, i // w,
                               -1))
    events.sort()
    return events


# ---------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------
def _best(fn, repeats: int = 2) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - start)
    return best, n


def _row(name: str, frames: int, seconds: float, events: int) -> dict:
    return {"case": name, "frames": frames, "seconds": seconds, "fps": frames / seconds,
            "events": events, "mev_s": events / seconds / 1e6}


def reference_agrees() -> bool:
    """The vectorised simulator and the per-pixel loop give the same events (sigma 0)."""
    frames = synthetic_video(20, 64, 32)
    times = frame_timestamps_us(20, 25.0)
    ref = sorted(reference_loop_emulator(frames, times))
    ev = simulate(frames, times, SimulatorConfig.preset("clean", threshold_sigma=0.0))
    ev_numpy = simulate(frames, times, SimulatorConfig.preset("clean", threshold_sigma=0.0),
                        device="numpy")
    if not ev.equals(ev_numpy):
        return False
    ours = sorted(zip(ev.t.tolist(), ev.x.tolist(), ev.y.tolist(), ev.p.tolist(), strict=True))
    return ref == ours


def synthetic_rows(n_frames: int) -> list[dict]:
    rows = []
    for h, w in ((256, 128), (128, 64)):
        frames = synthetic_video(n_frames, h, w)
        times = frame_timestamps_us(n_frames, 25.0)
        cases = [
            ("compiled clean", SimulatorConfig.preset("clean"), "numba"),
            ("compiled realistic", SimulatorConfig.preset("realistic"), "numba"),
            ("numpy clean", SimulatorConfig.preset("clean"), "numpy"),
            ("numpy realistic", SimulatorConfig.preset("realistic"), "numpy"),
            ("numpy realistic + low-pass 200 Hz (sub-steps)",
             SimulatorConfig.preset("realistic", cutoff_hz=200.0), None),
            ("compiled realistic + flow upsampling",
             SimulatorConfig.preset("realistic", upsample="flow"), None),
        ]
        for name, cfg, device in cases:
            def run(cfg=cfg, device=device, frames=frames, times=times) -> int:
                return len(simulate(frames, times, cfg, seed=0, device=device))
            run()   # warm-up (the kernel loaded from numba's cache, allocator)
            seconds, events = _best(run)
            rows.append(_row(f"{h}x{w} {name}", n_frames, seconds, events))
        # reference loop on a pixel subset, scaled to whole frames
        sub = 2048
        start = time.perf_counter()
        ref_events = reference_loop_emulator(frames, times, pixels=sub)
        per_pixel = (time.perf_counter() - start) / sub
        seconds = per_pixel * h * w
        rows.append(_row(f"{h}x{w} reference per-pixel Python loop (scaled from {sub} px)",
                         n_frames, seconds, int(len(ref_events) * h * w / sub)))
    return rows


# ---------------------------------------------------------------------------------------
# mini_mars yardstick
# ---------------------------------------------------------------------------------------
def _mars_tracklets():
    from evreid.data import build_dataset

    ds = build_dataset("mars", str(MINI_MARS))
    unique = {t.key: t for t in list(ds.query) + list(ds.gallery)}
    return [unique[k] for k in sorted(unique)]


def _load_and_simulate(args: tuple) -> tuple[int, int]:
    import cv2

    from evreid.events.frames import read_frames
    from evreid.utils import tune_allocator

    cv2.setNumThreads(1)
    tune_allocator()
    paths, fps, seed, cfg_dict = args
    frames = read_frames(paths)
    ev = simulate(frames, frame_timestamps_us(len(frames), fps),
                  SimulatorConfig.from_dict(cfg_dict), seed=seed)
    return len(frames), len(ev)


def mars_rows(workers: int) -> list[dict]:
    from evreid.events.frames import read_frames

    tracklets = _mars_tracklets()
    rows = []
    cfg = SimulatorConfig.preset("realistic")
    videos = [read_frames(t.frames) for t in tracklets]
    n_frames = sum(len(v) for v in videos)

    def sim_all(cfg=cfg, videos=videos) -> int:
        return sum(len(simulate(v, frame_timestamps_us(len(v), 25.0), cfg)) for v in videos)

    # a process's first call loads the compiled kernel from numba's cache (about 0.4 s,
    # once per process): not part of the throughput
    simulate(videos[0][:3], frame_timestamps_us(3, 25.0), cfg)
    seconds, events = _best(sim_all, repeats=1)
    rows.append(_row(f"mini_mars test ({len(videos)} tracklets) realistic, simulate only, "
                     f"1 process", n_frames, seconds, events))
    jobs = [(t.frames, t.fps, i, cfg.to_dict()) for i, t in enumerate(tracklets)]
    jobs.sort(key=lambda j: -len(j[0]))       # longest first balances the pool
    start = time.perf_counter()
    import multiprocessing

    # spawned workers, as evreid simulate's once torch is loaded (fork is not safe then)
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_load_and_simulate, jobs))
    seconds = time.perf_counter() - start
    rows.append(_row(f"mini_mars test realistic, load JPEGs + simulate, {workers} processes",
                     sum(r[0] for r in results), seconds, sum(r[1] for r in results)))
    flow_cfg = cfg.replace(upsample="flow")
    sub = videos[:8]

    def flow_sub(sub=sub) -> int:
        return sum(len(simulate(v, frame_timestamps_us(len(v), 25.0), flow_cfg)) for v in sub)

    seconds, events = _best(flow_sub, repeats=1)
    rows.append(_row("mini_mars test realistic + flow upsampling (first 8 tracklets), "
                     "1 process", sum(len(v) for v in sub), seconds, events))
    return rows


def cache_row(workers: int) -> dict:
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "evreid", "simulate", "--dataset", "mars", "--root",
               str(MINI_MARS), "--out", tmp, "--preset", "realistic", "--workers",
               str(workers), "--json"]
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        seconds = time.perf_counter() - start
        summary = json.loads(out)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.evs"))
    row = _row(f"evreid simulate --dataset mars (train+test, {summary['tracklets']} tracklets, "
               f"writes the .evs cache, {size / 1e6:.0f} MB), {workers} processes",
               summary["frames"], seconds, summary["events"])
    return row


def _machine() -> str:
    import numba

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{model}, {os.cpu_count()} CPUs, NumPy {np.__version__}, "
            f"numba {numba.__version__}")


def to_markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# Event simulator benchmark",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {_machine()}, Python {platform.python_version()}",
        "- timings are best-of-2 where marked (a machine shared with other jobs is noisy)",
        f"- command: `{command}`",
        "",
        "| case | frames | seconds | frames/s | events | Mevents/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['frames']:,} | {r['seconds']:.2f} | {r['fps']:,.0f} | "
                     f"{r['events']:,} | {r['mev_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="synthetic frames per case")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--skip-mars", action="store_true", help="synthetic part only")
    parser.add_argument("--md", help="also write the markdown table here")
    args = parser.parse_args()
    from evreid.utils import tune_allocator

    tune_allocator()     # as the evreid CLI does (freed event arrays are reused)
    rows = synthetic_rows(args.frames)
    if not args.skip_mars and (MINI_MARS / "info").is_dir():
        rows += mars_rows(args.workers)
        rows.append(cache_row(args.workers))
    command = "python benchmarks/bench_simulator.py " + " ".join(sys.argv[1:])
    text = to_markdown(rows, command.strip())
    text += (f"\nReference check: the per-pixel loop and `simulate` (clean, sigma 0) give "
             f"identical events on a 64x32, 20-frame clip: {reference_agrees()}.\n")
    print(text)
    if args.md:
        from evreid.utils import atomic_write_text

        atomic_write_text(args.md, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
