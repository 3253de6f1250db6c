"""Train a model (SDCL by default) on a dataset, then evaluate it.

examples:
  evreid train --config-file sdcl_cpu DATASETS.ROOT_DIR data/prid2011
  evreid train --config-file sdcl_paper --resume OUTPUT_DIR runs/mars
  evreid train --config-file sdcl_paper --splits all   # 10-split mean +- std
  evreid train --arch sdcl --config_file configs/sdcl_paper.yaml --dataset prid_event \
      --test_sampler Begin_interval --triplet_distance cosine --test_distance cosine --seq_len 8
  torchrun --nproc_per_node 2 -m evreid train --config-file ...   (DDP; gloo on CPU)

The run folder (OUTPUT_DIR) receives config.yaml, last.pth (every epoch),
best.pth, train_log.csv, eval_log.csv, metrics.json and, when the tensorboard
package is installed, TensorBoard logs.
"""

from __future__ import annotations

import argparse

from evreid.commands._config_args import TRUST_HELP, add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT_DIR/last.pth")
    parser.add_argument("--allow-config-change", action="store_true",
                        help="with --resume: continue although training keys (lr, model, "
                             "data, ...) differ from the checkpoint's; without it such a "
                             "resume is refused, naming the keys")
    parser.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    parser.add_argument("--splits", default=None,
                        help="train several splits (0-9, 0,3, all) into OUTPUT_DIR/split_K "
                             "and report mean +- std")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from evreid.commands._config_args import config_from_args, parse_splits
    from evreid.engine.runs import train_splits
    from evreid.metrics import format_metrics

    cfg = config_from_args(args)
    splits = parse_splits(args.splits, cfg.DATASETS.SPLIT_ID) if args.splits else None
    report = train_splits(cfg, splits, resume=args.resume, progress=not args.no_progress,
                          allow_config_change=args.allow_config_change,
                          trust_checkpoint=args.trust_checkpoint)
    if report is None:      # a DDP process other than the main one
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_metrics({**report["runs"], **({"mean": report["mean"]}
                                                    if "mean" in report else {})}))
    return 0
