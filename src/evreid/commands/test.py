"""Evaluate a trained model: extract features with TEST.SAMPLER, rank with
TEST.DISTANCE (and TEST.RERANKING), print rank-1/5/10/20, mAP, mINP, and write
metrics.json and features.npz (re-usable with `evreid evaluate`).

examples:
  evreid test --config-file sdcl_cpu --checkpoint runs/x/best.pth
  evreid test --config-file runs/x/config.yaml TEST.SAMPLER dense --json
"""

from __future__ import annotations

import argparse

from evreid.commands._config_args import TRUST_HELP, add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None,
                        help="model checkpoint (default TEST.WEIGHT, else OUTPUT_DIR/best.pth)")
    parser.add_argument("--out", default=None, help="folder for metrics.json and features.npz "
                        "(default: OUTPUT_DIR)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from evreid.commands._config_args import config_from_args
    from evreid.engine.runs import evaluate_checkpoint
    from evreid.metrics import format_metrics

    cfg = config_from_args(args)
    report, warning = evaluate_checkpoint(cfg, args.checkpoint, args.out,
                                      trust_checkpoint=args.trust_checkpoint)
    if warning:
        print(f"evreid test: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_metrics({cfg.MODEL.ARCH: report}))
        print(f"valid queries {report['num_valid_queries']}, skipped "
              f"{report['num_skipped_queries']}; protocol {report['protocol']}, sampler "
              f"{cfg.TEST.SAMPLER}, distance {cfg.TEST.DISTANCE}")
    return 0
