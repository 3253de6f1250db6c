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
    from pathlib import Path

    from evreid.commands._config_args import config_from_args, parse_splits
    from evreid.data import build_dataset_from_cfg
    from evreid.engine.trainer import Trainer
    from evreid.metrics import format_metrics
    from evreid.utils import atomic_write_json, check_writable

    cfg = config_from_args(args)
    splits = parse_splits(args.splits, cfg.DATASETS.SPLIT_ID)
    check_writable(Path(cfg.OUTPUT_DIR), "OUTPUT_DIR")
    root = Path(cfg.OUTPUT_DIR)
    finals = {}
    for split in splits:
        run_cfg = cfg.clone()
        run_cfg.DATASETS.SPLIT_ID = split
        out = root / f"split_{split}" if args.splits else root
        run_cfg.OUTPUT_DIR = str(out)
        dataset = build_dataset_from_cfg(run_cfg)
        trainer = Trainer(run_cfg, dataset, out, resume=args.resume,
                          show_progress=not args.no_progress,
                          allow_config_change=args.allow_config_change,
                          trust_checkpoint=args.trust_checkpoint)
        result = trainer.train()
        if not trainer.info.is_main:
            continue
        finals[f"split {split}" if args.splits else cfg.MODEL.ARCH] = result["final"]
    if not finals:
        return 0
    report: dict = {"runs": finals}
    if len(finals) > 1:
        keys = next(iter(finals.values())).keys()
        import numpy as np

        report["mean"] = {k: float(np.mean([f[k] for f in finals.values()])) for k in keys}
        report["std"] = {k: float(np.std([f[k] for f in finals.values()])) for k in keys}
        atomic_write_json(root / "splits_summary.json", report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        rows = dict(finals)
        if "mean" in report:
            rows["mean"] = report["mean"]
        print(format_metrics(rows))
    return 0
