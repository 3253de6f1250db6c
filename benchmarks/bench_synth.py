"""Synthetic benchmark: generation time, dataset statistics and the colour-histogram baseline.

Generates one folder per protocol (same preset and seed, so the same people,
cameras and trajectories) under --root, timing each generation (a folder that
is already there and up to date is reused and reported as a cache hit; pass
--fresh to time a new generation), then evaluates the colour-histogram nearest
neighbour on every folder (mean over the 10 splits, chi-square and cosine).

    python benchmarks/bench_synth.py --root /tmp/evreid_synth [--preset small]
        [--protocols clean,blur,lowlight,occlusion,mixed] [--workers 2] [--fresh] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time

from evreid.data.synthetic import generate_synthetic, synthetic_folder
from evreid.data.synthetic.baseline import colour_histogram_baseline
from evreid.data.synthetic.protocols import PROTOCOLS


def folder_size_mb(root) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder holding one dataset per protocol")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="delete and regenerate each folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = {}
    for protocol in args.protocols.split(","):
        folder = synthetic_folder(args.root, args.preset, protocol, args.seed)
        if args.fresh and folder.exists():
            shutil.rmtree(folder)
        report = generate_synthetic(folder, args.preset, protocol, args.seed,
                                    workers=args.workers, force=True)
        start = time.perf_counter()
        chi2 = colour_histogram_baseline(folder, metric="chi2")["summary"]
        cosine = colour_histogram_baseline(folder, metric="cosine")["summary"]
        rows[protocol] = {
            "generation_s": round(report.seconds, 2), "cache_hit": report.cache_hit,
            "workers": args.workers, "size_mb": round(folder_size_mb(folder), 1),
            "stats": report.stats,
            "chi2": {k: round(v["mean"], 2) for k, v in chi2.items()},
            "chi2_std": {k: round(v["std"], 2) for k, v in chi2.items()},
            "cosine": {k: round(v["mean"], 2) for k, v in cosine.items()},
            "baseline_s": round(time.perf_counter() - start, 2)}

    out = {"preset": args.preset, "seed": args.seed, "python": platform.python_version(),
           "machine": platform.machine(), "protocols": rows}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"synthetic benchmark, preset {args.preset}, seed {args.seed}, {args.workers} workers")
    print(f"{'protocol':<10} {'gen s':>7} {'cache':>6} {'MB':>6} {'frames':>7} {'ev/frame':>9} "
          f"{'chi2 R1':>8} {'chi2 mAP':>9} {'cos R1':>7} {'cos mAP':>8}")
    for protocol, r in rows.items():
        s = r["stats"]
        print(f"{protocol:<10} {r['generation_s']:>7.1f} {str(r['cache_hit']):>6} "
              f"{r['size_mb']:>6.0f} {s['frames']:>7} {s['events_per_frame']:>9.0f} "
              f"{r['chi2']['rank1']:>8.2f} {r['chi2']['mAP']:>9.2f} "
              f"{r['cosine']['rank1']:>7.2f} {r['cosine']['mAP']:>8.2f}")


if __name__ == "__main__":
    main()
