"""Loader cost of a training clip with and without events, side by side in one run.

    python benchmarks/bench_loader.py [--root ../shared/fixtures/mini_mars]
        [--tracklets 32] [--clips 40] [--rounds 3] [--workers 2] [--fidelity] [--json]

Paper scale: T = 8 frames, 256 x 128, 3 count bins, ``random_interval`` clips of
the training tracklets, no augmentation (the loading work itself). Measured:

* per-clip CPU milliseconds of ``ClipDataset.__getitem__`` in one thread for
  frames only, frames + events from the old ``.npz`` cache (before), frames +
  events from the ``.evs`` store (after), frames + events on the fly (no files);
  each a median over ``--rounds`` rounds of ``--clips`` clips, and its ratio to
  frames only as the median of the rounds' ratios. Each mode runs in
  a process of its own, as in a loader worker (in one process, the old cache's
  arrays and the on-the-fly pools evict the next mode's data from the CPU caches);
  the modes make the same clips, taking turns every 4 clips, so background load
  hits them alike;
* bytes on disk per frame of both caches for the same events (simulated here);
* end-to-end ``DataLoader`` clips/s with ``--workers`` workers (store events,
  IMS_PER_BATCH-style batches of 8 clips, wall clock);
* with ``--fidelity``: on-the-fly against the exact simulator (median per-frame
  event-count ratio, per-pixel count distribution) for 1 and 2 warm-up windows
  from drawn and from anchored start states, on 8 of the tracklets;
  ``--fidelity-synthetic DIR``: the same on 8 training tracklets of a synthetic
  benchmark folder (smooth rendered video).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "fixtures" / "mini_mars"


def _simulate(tracklets, out: Path) -> dict:
    """Both caches of the same events; bytes per frame and simulation seconds."""
    from evreid.events import SimulatorConfig, simulate, write_events
    from evreid.events.cache import cache_path, tracklet_seed
    from evreid.events.frames import read_frames
    from evreid.events.simulator import frame_timestamps_us

    cfg = SimulatorConfig()
    sizes = {"evs": 0, "npz": 0}
    frames_total = events_total = 0
    seconds = {"simulate": 0.0, "write_evs": 0.0, "write_npz": 0.0}
    for t in tracklets:
        frames = read_frames(t.frames)
        times = frame_timestamps_us(len(frames), t.fps)
        start = time.perf_counter()
        ev = simulate(frames, times, cfg, seed=tracklet_seed(0, t.key))
        seconds["simulate"] += time.perf_counter() - start
        for suffix in ("evs", "npz"):
            path = cache_path(out / suffix, t.key, "." + suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            write_events(path, ev, frame_timestamps_us=times, config=cfg)
            seconds[f"write_{suffix}"] += time.perf_counter() - start
            sizes[suffix] += path.stat().st_size
        frames_total += len(frames)
        events_total += len(ev)
    return {"frames": frames_total, "events": events_total,
            "events_per_frame": events_total / frames_total,
            "bytes_per_frame": {k: v / frames_total for k, v in sizes.items()},
            "kib_per_frame": {k: round(v / frames_total / 1024, 2) for k, v in sizes.items()},
            "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def _datasets(tracklets, out: Path, seq_len: int):
    from evreid.data.clips import ClipDataset, EventOptions
    from evreid.events.cache import cache_path

    def with_events(suffix):
        return [t.with_events(str(cache_path(out / suffix, t.key, "." + suffix)))
                for t in tracklets]

    return {
        "frames": ClipDataset(tracklets, seq_len, "random_interval"),
        "frames+npz": ClipDataset(with_events("npz"), seq_len, "random_interval",
                                  events=EventOptions("count", 3)),
        "frames+store": ClipDataset(with_events("evs"), seq_len, "random_interval",
                                    events=EventOptions("count", 3)),
        "frames+onthefly": ClipDataset(tracklets, seq_len, "random_interval",
                                       events=EventOptions("count", 3, source="simulate")),
    }


#: clips a mode makes before the next mode's turn
TURN = 4


def _mode_worker(conn, root: str, tracklets: int, out: str, seq_len: int, mode: str) -> None:
    """One clip mode in a process of its own: warms up, then makes each list of clips
    it is sent and sends back the CPU milliseconds they took."""
    import cv2
    import torch

    from evreid.data import build_dataset

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    ds = _datasets(build_dataset("mars", root).train[:tracklets], Path(out), seq_len)[mode]
    for i in range(min(len(ds), 4)):          # warm-up: compile, open stores, page cache
        ds[(i, i)]
    while (items := conn.recv()) is not None:
        start = time.thread_time()
        for item in items:
            ds[item]
        conn.send((time.thread_time() - start) * 1e3)


def _per_clip_ms(root: str, tracklets: int, out: Path, seq_len: int, modes: list[str],
                 clips: int, rounds: int) -> dict:
    """Each mode in its own process, so that one mode's memory (the old cache's
    tracklet-sized arrays, the on-the-fly pools) does not evict another's from the CPU
    caches, as in a loader worker that runs one mode."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    workers = {}
    for mode in modes:
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_mode_worker,
                           args=(there, root, tracklets, str(out), seq_len, mode))
        proc.start()
        workers[mode] = (proc, here)
    rng = np.random.default_rng(0)
    samples: dict[str, list[float]] = {k: [] for k in modes}
    try:
        for r in range(rounds):
            items = [(int(rng.integers(tracklets)), 1000 * r + j) for j in range(clips)]
            spent = dict.fromkeys(modes, 0.0)
            # the modes take turns every few clips: a change in the machine's speed
            # (other tenants, clock) then hits every mode of the round alike
            for lo in range(0, clips, TURN):
                for mode, (_, conn) in workers.items():
                    conn.send(items[lo:lo + TURN])
                    spent[mode] += conn.recv()
            for mode in modes:
                samples[mode].append(spent[mode] / clips)
    finally:
        for proc, conn in workers.values():
            conn.send(None)
            proc.join()
    out_ms = {k: {"median_ms": round(float(np.median(v)), 2),
                  "rounds_ms": [round(x, 2) for x in v]} for k, v in samples.items()}
    # the ratio of each round (same clips, same moment) and their median: slow drifts of
    # the machine's speed cancel within a round
    base = np.array(samples["frames"])
    for k in out_ms:
        ratios = np.array(samples[k]) / base
        out_ms[k]["x_frames"] = round(float(np.median(ratios)), 2)
        out_ms[k]["x_frames_rounds"] = [round(float(x), 2) for x in ratios]
    return out_ms


def _loader_rate(dataset, workers: int, batches: int) -> float:
    import torch

    from evreid.data.sampling import RandomIdentitySampler
    from evreid.engine.data import collate_clips

    sampler = RandomIdentitySampler([t.pid for t in dataset.tracklets], 2, 4, seed=0)
    kwargs = {"num_workers": workers}
    if workers:
        kwargs.update(prefetch_factor=4, persistent_workers=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, sampler=sampler,
                                         drop_last=True, collate_fn=collate_clips, **kwargs)
    it = iter(loader)
    next(it)                                 # workers started, first batch made
    start = time.perf_counter()
    got = 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            break
        got += batch["clip_counts"].sum().item()
    return got / (time.perf_counter() - start)


def _fidelity(tracklets) -> dict:
    from evreid.events import SimulatorConfig, simulate
    from evreid.events.cache import tracklet_seed
    from evreid.events.frames import read_frames
    from evreid.events.onthefly import OnTheFlyEvents
    from evreid.events.representation import tracklet_from_times
    from evreid.events.simulator import frame_timestamps_us

    cfg = SimulatorConfig()
    otfs = {start: OnTheFlyEvents(cfg, start_states=start) for start in ("drawn", "anchored")}
    result: dict = {}
    cached = []
    for t in tracklets:
        frames = read_frames(t.frames)
        times = frame_timestamps_us(len(frames), t.fps)
        seed = tracklet_seed(0, t.key)
        idx = np.arange(2, len(frames))
        exact = tracklet_from_times(simulate(frames, times, cfg, seed=seed), times).tensor(
            idx, 3)
        cached.append((dict(enumerate(frames)), idx, t.fps, seed, exact))
    for start, warmup in (("drawn", 1), ("drawn", 2), ("anchored", 1), ("anchored", 2)):
        ratios, hist_e, hist_o = [], np.zeros(6), np.zeros(6)
        for luma, idx, fps, seed, exact in cached:
            got, _, _ = otfs[start].bins_from_luma(luma, idx, fps, 3, "count", seed,
                                                   np.random.default_rng(0), warmup)
            ratios.extend(got.sum(axis=(1, 2, 3, 4)) / np.maximum(
                exact.sum(axis=(1, 2, 3, 4)), 1))
            for grid, hist in ((exact, hist_e), (got, hist_o)):
                hist += np.bincount(np.minimum(grid.sum(axis=(1, 2)).ravel(), 5).astype(int),
                                    minlength=6)
        result[f"warmup_{warmup}" + ("_anchored" if start == "anchored" else "")] = {
            "frame_count_ratio_median": round(float(np.median(ratios)), 3),
            "frame_count_ratio_p10_p90": [round(float(v), 3)
                                          for v in np.percentile(ratios, [10, 90])],
            "pixel_count_dist_exact_0..4,5+": np.round(hist_e / hist_e.sum(), 4).tolist(),
            "pixel_count_dist_onthefly": np.round(hist_o / hist_o.sum(), 4).tolist(),
            "pixel_count_dist_max_abs_diff": round(float(np.abs(
                hist_o / hist_o.sum() - hist_e / hist_e.sum()).max()), 4)}
    result["windows"] = int(sum(len(c[1]) for c in cached))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_DATA), help="a MARS-layout folder")
    parser.add_argument("--tracklets", type=int, default=32,
                        help="training tracklets used (default 32 = all of mini_mars')")
    parser.add_argument("--clips", type=int, default=40, help="clips per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=8, help="loader batches timed")
    parser.add_argument("--seq-len", type=int, default=8)
    parser.add_argument("--fidelity", action="store_true")
    parser.add_argument("--fidelity-synthetic", metavar="DIR",
                        help="also the fidelity on a synthetic benchmark folder (evreid synth)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import cv2
    import torch

    from evreid.data import build_dataset

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    if not Path(args.root).is_dir():
        print(f"bench_loader: no dataset at {args.root}", file=sys.stderr)
        return 2
    tracklets = build_dataset("mars", args.root).train[: args.tracklets]
    report: dict = {"root": str(args.root), "tracklets": len(tracklets),
                    "seq_len": args.seq_len, "size": [256, 128], "bins": 3,
                    "cpu": _cpu_model(), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        report["cache"] = _simulate(tracklets, out)
        datasets = _datasets(tracklets, out, args.seq_len)
        report["per_clip_cpu"] = _per_clip_ms(args.root, len(tracklets), out, args.seq_len,
                                              list(datasets), args.clips, args.rounds)
        report["per_clip_method"] = "one process per mode, turns of 4 clips"
        report["loader_clips_per_s"] = {
            f"{name}_workers_{w}": round(_loader_rate(datasets[name], w, args.batches), 1)
            for name in ("frames", "frames+store", "frames+onthefly")
            for w in sorted({0, args.workers})}
    if args.fidelity:
        report["fidelity"] = _fidelity(tracklets[:8])
    if args.fidelity_synthetic:
        synthetic = build_dataset("synthetic", args.fidelity_synthetic)
        report["fidelity_synthetic"] = _fidelity(synthetic.train[:8])
        report["fidelity_synthetic"]["root"] = str(args.fidelity_synthetic)
    report["load_avg_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, row in report["per_clip_cpu"].items():
            print(f"{name:18s} {row['median_ms']:8.2f} ms/clip  x{row['x_frames']}")
        print("KiB/frame", report["cache"]["kib_per_frame"])
        print("loader clips/s", report["loader_clips_per_s"])
        for key in ("fidelity", "fidelity_synthetic"):
            if key in report:
                print(key, json.dumps(report[key], indent=1))
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
