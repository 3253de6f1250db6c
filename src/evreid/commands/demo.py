"""The embedded end-to-end example: synthetic pedestrians -> simulated events ->
SDCL and a frames-only baseline -> CMC / mAP.

Generates the small synthetic benchmark (cached under --data; once per
protocol, same identities), trains SDCL and the frames-only baseline with the
same recipe and budget on the training protocol, evaluates both on every test
protocol, prints one comparison table and writes a run folder with configs,
checkpoints, metrics (demo_metrics.json), a CMC plot and ranked-list images.
About 10 minutes on 2 CPU cores.

examples:
  evreid demo
  evreid demo --out runs/demo --epochs 10 --json
  evreid demo --train-protocol blur --test-protocols blur,clean
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    parser.add_argument("--data", default="data/synthetic",
                        help="cache of generated datasets (default data/synthetic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the demo preset's)")
    parser.add_argument("--archs", default="sdcl,frames_only",
                        help="comma-separated MODEL.ARCH names to compare")
    parser.add_argument("--train-protocol", default="clean")
    parser.add_argument("--test-protocols", default="clean,blur")
    parser.add_argument("--preset", default="small", help="synthetic preset (small | full)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from evreid.engine.demo import run_demo
    from evreid.metrics import format_metrics

    report = run_demo(args.out, args.data, [a.strip() for a in args.archs.split(",") if a.strip()],
                      args.train_protocol,
                      [p.strip() for p in args.test_protocols.split(",") if p.strip()],
                      preset=args.preset, seed=args.seed, epochs=args.epochs,
                      opts=list(args.opts or []), progress=not args.no_progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_metrics(report["runs"]))
        print(f"trained on {args.train_protocol}; {report['total_seconds']:.0f} s in all "
              f"(data {report['generation_seconds']:.0f} s). Run folder: {Path(args.out)} "
              f"(cmc.png, ranked_*.png, demo_metrics.json, <arch>/config.yaml, checkpoints)")
    return 0
