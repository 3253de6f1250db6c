"""Evaluation speed on MARS-size inputs.

Times ``evreid.metrics.evaluate`` on a Q x G distance matrix (default 2,000 x
12,000, about the MARS official protocol's 1,980 x 12,180) with MARS-like
identities (625 ids, 6 cameras), for both protocols, and the same matrix with
the straightforward per-query loop (argsort per row) for comparison.

    python benchmarks/bench_eval.py [--queries 2000] [--gallery 12000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from evreid.metrics import evaluate


def per_query_loop(distmat, q_pids, g_pids, q_camids, g_camids):
    """The textbook loop: one stable argsort per query."""
    aps = []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        hits = (g_pids[order] == q_pids[i])[keep]
        if hits.any():
            positions = np.flatnonzero(hits)
            aps.append(np.mean(np.arange(1, len(positions) + 1) / (positions + 1)))
    return float(np.mean(aps))


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--gallery", type=int, default=12000)
    parser.add_argument("--ids", type=int, default=625)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    g_pids = rng.integers(0, args.ids, args.gallery)
    q_pids = rng.integers(0, args.ids, args.queries)
    g_cams, q_cams = rng.integers(0, 6, args.gallery), rng.integers(0, 6, args.queries)
    distmat = rng.random((args.queries, args.gallery))
    report = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} torch threads",
              "shape": [args.queries, args.gallery]}
    for protocol in ("standard", "mars_official"):
        median, best, result = timed(lambda p=protocol: evaluate(
            distmat, q_pids, g_pids, q_cams, g_cams, protocol=p), args.repeat)
        report[f"evaluate_{protocol}_s"] = {"median": median, "min": best}
        report[f"mAP_{protocol}"] = result["mAP"]
    if not args.skip_loop:
        median, best, loop_map = timed(
            lambda: per_query_loop(distmat, q_pids, g_pids, q_cams, g_cams), 1)
        report["per_query_loop_s"] = median
        assert abs(loop_map - report["mAP_standard"]) < 1e-9
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
