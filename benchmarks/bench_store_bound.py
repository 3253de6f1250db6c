"""How small can a store with one-window random access be? Stored bytes against
within-window entropy estimates, on the whole mini_mars fixture.

    python benchmarks/bench_store_bound.py [--root ../shared/fixtures/mini_mars]
        [--workers 2] [--json]

It simulates every tracklet the way ``evreid simulate --dataset mars`` does (the
issue's size metric: file bytes over all frames), then reads each window's
streams back and measures, per frame:

* the bytes each stream of the ``.evs`` layout takes (docs/EVENT_STORE.md);
* an estimate of what an ideal entropy coder would need for the same content if
  it sees only the window itself (one-window random access), with the best
  context found for each part:

  - occupancy: each pixel's bit given its 4 causal neighbours' bits;
  - run lengths: given the left and upper neighbours' lengths (capped at 7);
  - polarity: given the left and upper neighbours' polarities;
  - single-event times: the empirical distribution of ``t >> 5`` plus 5 raw bits
    (they are uniform over the window; neighbours tell nothing);
  - longer runs: the span given the run length (``span >> 5`` plus 5 bits), then
    the gap after the last event, which the pixel model bounds by the spacing
    ``span / (n - 1)``: ``log2(floor(spacing) + 1)`` bits; the first time follows
    (``window - gap - span``);
  - inner residuals: their empirical distribution.

Empirical conditional entropies slightly underestimate what a real coder gets
(it must learn the statistics), so the sum is a floor, not a target.
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
CAP = 7            # neighbour run lengths are capped here for contexts
TIME_CODES = 1 << 11   # t >> 5 of a window time below 2**16 us (the store's <u2 case)


class Counts:
    """Joint histograms (dense, small), keyed by name, from which entropies are read."""

    def __init__(self) -> None:
        self.tables: dict[str, np.ndarray] = {}

    def add(self, name: str, shape: tuple[int, ...], *columns: np.ndarray) -> None:
        """Counts rows of ``columns`` (values in ``0 .. shape[i] - 1``) in table ``name``."""
        code = np.ravel_multi_index([np.asarray(c, np.int64) for c in columns], shape)
        hist = np.bincount(code, minlength=int(np.prod(shape))).reshape(shape)
        self.tables[name] = self.tables.get(name, 0) + hist

    def bits(self, name: str, context_columns: int) -> float:
        """Total bits of the last column given the first ``context_columns``."""
        table = self.tables[name].astype(np.float64)
        joint = table.reshape(-1, table.shape[-1])
        ctx = joint.sum(axis=1)
        return float(-(joint[joint > 0] * np.log2(joint[joint > 0])).sum()
                     + (ctx[ctx > 0] * np.log2(ctx[ctx > 0])).sum())


def _window_stats(t: np.ndarray, pix: np.ndarray, on: np.ndarray, width: int, height: int,
                  duration: int, counts: Counts, raw: dict) -> None:
    """Adds one window's histograms to ``counts`` and the bits outside them (raw low
    bits, the gaps' bounded widths) to ``raw``."""
    npix = width * height
    starts = np.flatnonzero(np.concatenate([[True], pix[1:] != pix[:-1]]))
    n = np.diff(np.append(starts, len(pix)))
    run_pix = pix[starts]
    first = t[starts]
    last = t[starts + n - 1]
    grid_n = np.zeros(npix, np.int64)
    grid_n[run_pix] = n
    grid_p = np.zeros(npix, np.int64)
    grid_p[run_pix] = np.where(on[starts], 1, 2)
    gn = grid_n.reshape(height, width)
    gp = grid_p.reshape(height, width)
    occ = (gn > 0).astype(np.int64)

    def shifted(a, dy, dx):
        out = np.zeros_like(a)
        out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            a[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
        return out

    ctx = (shifted(occ, 0, 1) + 2 * shifted(occ, 1, 0) + 4 * shifted(occ, 1, 1)
           + 8 * shifted(occ, 1, -1))
    counts.add("mask", (16, 2), ctx.ravel(), occ.ravel())
    left_n = np.minimum(shifted(gn, 0, 1).ravel()[run_pix], CAP)
    up_n = np.minimum(shifted(gn, 1, 0).ravel()[run_pix], CAP)
    counts.add("n", (CAP + 1, CAP + 1, 256), left_n, up_n, np.minimum(n, 255))
    counts.add("pol", (3, 3, 3), shifted(gp, 0, 1).ravel()[run_pix],
               shifted(gp, 1, 0).ravel()[run_pix], grid_p[run_pix])
    single = n == 1
    counts.add("t_single", (TIME_CODES,), first[single] >> 5)
    multi = ~single
    span = (last - first)[multi]
    nm = n[multi]
    counts.add("span", (65, TIME_CODES), np.minimum(nm, 64), span >> 5)
    spacing = span // (nm - 1)
    gap_bits = float(np.log2(spacing + 1).sum())
    gap = duration - last[multi]
    over = gap > spacing          # refractory drops can break the bound: 16 bits then
    gap_bits += 16.0 * float(over.sum())
    if np.any(n >= 3):
        runs = np.flatnonzero(n >= 3)
        rn = n[runs]
        k = rn - 2
        rid = np.repeat(np.arange(len(runs)), k)
        j = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k) + 1
        r_first = first[runs][rid]
        r_span = last[runs][rid] - r_first
        den = rn[rid] - 1
        res = t[starts[runs][rid] + j] - (r_first + (j * r_span + den // 2) // den)
        counts.add("inner", (401,), np.clip(res, -200, 200) + 200)
    raw["single_times"] += 5.0 * float(single.sum())
    raw["multi_span_and_gap"] += 5.0 * float(multi.sum()) + gap_bits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_DATA), help="a MARS-layout folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        print(f"bench_store_bound: no dataset at {args.root}", file=sys.stderr)
        return 2
    from evreid.events import SimulatorConfig
    from evreid.events.runner import simulate_dataset
    from evreid.events.store import STREAMS, decode_frame, open_store

    report: dict = {"root": str(args.root), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = simulate_dataset("mars", args.root, SimulatorConfig(), events_dir=tmp,
                                   workers=args.workers)
        report["simulate_and_write_s"] = round(time.perf_counter() - start, 1)
        files = sorted(Path(tmp).rglob("*.evs"))
        frames = summary["frames"]
        stream_bytes = np.zeros(len(STREAMS))
        counts = Counts()
        raw = {"single_times": 0.0, "multi_span_and_gap": 0.0}
        file_bytes = 0
        for path in files:
            file_bytes += path.stat().st_size
            store = open_store(path)
            idx = store.index
            if idx.time_dtype != "<u2":
                print(f"bench_store_bound: {path} has windows over 65535 us", file=sys.stderr)
                return 2
            offsets = np.asarray(idx.chunk_offsets)
            stream_bytes += np.diff(offsets).reshape(-1, len(STREAMS)).sum(axis=0)
            durations = idx.windows[:, 1] - idx.windows[:, 0]
            for k, streams in enumerate(store._chunks(np.arange(store.num_frames))):
                t, pix, on = decode_frame(streams, idx.width * idx.height, idx.time_dtype,
                                          time_order=False)
                if len(t):
                    _window_stats(t, pix, on, idx.width, idx.height, int(durations[k]),
                                  counts, raw)
    kib = 8 * 1024 * frames
    floor = {"occupancy": counts.bits("mask", 1) / kib,
             "run_lengths": counts.bits("n", 2) / kib,
             "polarity": counts.bits("pol", 2) / kib,
             "single_times": (counts.bits("t_single", 0) + raw["single_times"]) / kib,
             "multi_span_and_gap": (counts.bits("span", 1) + raw["multi_span_and_gap"]) / kib,
             "inner_residuals": counts.bits("inner", 0) / kib}
    report.update({
        "tracklets": len(files), "frames": frames, "events": summary["events"],
        "file_kib_per_frame": round(file_bytes / frames / 1024, 2),
        "stream_kib_per_frame": {name: round(float(b) / frames / 1024, 2)
                                 for name, b in zip(STREAMS, stream_bytes, strict=True)},
        "floor_kib_per_frame": {k: round(v, 2) for k, v in floor.items()},
        "floor_total_kib_per_frame": round(sum(floor.values()), 2),
        "load_avg_end": os.getloadavg()[0],
    })
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key in ("file_kib_per_frame", "stream_kib_per_frame", "floor_kib_per_frame",
                    "floor_total_kib_per_frame"):
            print(key, report[key])
    return 0


if __name__ == "__main__":
    sys.exit(main())
