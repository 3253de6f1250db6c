"""The embedded end-to-end example: synthetic pedestrians -> simulated events ->
SDCL and a frames-only baseline -> CMC / mAP.

Generates the small synthetic benchmark with look-alike groups (cached under
--data; once per protocol, same identities), trains SDCL and the frames-only
baseline with the same recipe and budget on motion-blurred video (the paper's
section 4.4 trains and tests on the degraded data), evaluates both on clean and
blurred video, prints one comparison table and writes a run folder with configs,
checkpoints, metrics (demo_metrics.json), a CMC plot and ranked-list images.
About 5 minutes on 2 CPU cores.

examples:
  evreid demo
  evreid demo --out runs/demo --epochs 10 --json
  evreid demo --seed 3                     # another draw of data and initialisation
  evreid demo --preset small --train-protocol clean --test-protocols clean,blur
"""

from __future__ import annotations

import argparse

from evreid.commands.synth import PRESET_CHOICES
from evreid.engine.demo import DEMO_PRESET, DEMO_TEST_PROTOCOLS, DEMO_TRAIN_PROTOCOL

#: what one demo run can and cannot show, printed under its table
SINGLE_RUN_CAVEAT = (
    "One seed on one machine: this run shows the pipeline end to end; it does not measure "
    "SDCL against frames-only (seeds differ by several mAP points; the 5-seed mean and 95 % "
    'interval are in benchmarks/RESULTS.md, "Demo over five seeds"; --seed S draws another run).')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    parser.add_argument("--data", default="data/synthetic",
                        help="cache of generated datasets (default data/synthetic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the demo preset's)")
    parser.add_argument("--archs", default="sdcl,frames_only",
                        help="comma-separated MODEL.ARCH names to compare")
    parser.add_argument("--train-protocol", default=DEMO_TRAIN_PROTOCOL,
                        help=f"synthetic protocol to train on (default {DEMO_TRAIN_PROTOCOL})")
    parser.add_argument("--test-protocols", default=",".join(DEMO_TEST_PROTOCOLS),
                        help="comma-separated protocols to test on "
                             f"(default {','.join(DEMO_TEST_PROTOCOLS)})")
    parser.add_argument("--preset", default=DEMO_PRESET, choices=PRESET_CHOICES,
                        help=f"synthetic preset (default {DEMO_PRESET})")
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
        print(SINGLE_RUN_CAVEAT)
    return 0
