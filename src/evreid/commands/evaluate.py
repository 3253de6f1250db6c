"""Compute CMC rank-1/5/10/20, mAP and mINP from saved features or a distance matrix.

The input is an .npz file with query_pids, gallery_pids, query_camids,
gallery_camids and either query_features + gallery_features or distmat (the
file `evreid test` writes as features.npz).

examples:
  evreid evaluate output/features.npz
  evreid evaluate feats.npz --distance euclidean --protocol mars_official --rerank --json
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", help=".npz with features or a distance matrix")
    parser.add_argument("--distance", default="cosine", choices=("cosine", "euclidean"),
                        help="distance between features (ignored for a distmat)")
    parser.add_argument("--protocol", default=None, choices=("standard", "mars_official"),
                        help="default: the file's 'protocol' entry, else standard")
    parser.add_argument("--max-rank", type=int, default=50)
    parser.add_argument("--rerank", action="store_true",
                        help="k-reciprocal re-ranking (needs features)")
    parser.add_argument("--k1", type=int, default=20)
    parser.add_argument("--k2", type=int, default=6)
    parser.add_argument("--lambda-value", type=float, default=0.3)
    parser.add_argument("--out", default=None, help="also write the metrics as JSON here")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from evreid.metrics import format_metrics
    from evreid.metrics.features import evaluate_features
    from evreid.utils import atomic_write_json, check_writable

    if args.out:
        check_writable(Path(args.out).absolute().parent, "--out's folder")
    result = evaluate_features(args.features, args.distance, args.protocol, args.max_rank,
                               args.rerank, k1=args.k1, k2=args.k2,
                               lambda_value=args.lambda_value)
    if result["warning"]:
        print(f"evreid evaluate: {result['warning']}", file=sys.stderr)
    report = {**result["summary"], "num_valid_queries": result["num_valid_queries"],
              "num_skipped_queries": result["num_skipped_queries"],
              "protocol": result["protocol"], "distance": result["distance"],
              "reranking": args.rerank}
    if args.out:
        atomic_write_json(args.out, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_metrics({"result": result["summary"]}))
        print(f"valid queries {result['num_valid_queries']}, skipped "
              f"{result['num_skipped_queries']} (no true match), protocol {result['protocol']}")
    return 0
