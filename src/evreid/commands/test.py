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
    from pathlib import Path

    from evreid.commands._config_args import config_from_args
    from evreid.data import build_dataset_from_cfg
    from evreid.engine.checkpoint import load_checkpoint, load_model_weights
    from evreid.engine.distributed import resolve_device
    from evreid.engine.evaluator import evaluate_model
    from evreid.metrics import format_metrics
    from evreid.metrics.rank import check_not_degenerate
    from evreid.models import build_model
    from evreid.utils import atomic_write_json, check_writable, seed_everything

    cfg = config_from_args(args)
    seed_everything(cfg.SEED)
    checkpoint = Path(args.checkpoint or cfg.TEST.WEIGHT or Path(cfg.OUTPUT_DIR) / "best.pth")
    out = check_writable(Path(args.out or cfg.OUTPUT_DIR), "--out" if args.out else "OUTPUT_DIR")
    state = load_checkpoint(checkpoint, arch=cfg.MODEL.ARCH, trust=args.trust_checkpoint)
    dataset = build_dataset_from_cfg(cfg)
    device = resolve_device(cfg.MODEL.DEVICE)
    model = build_model(cfg, int(state.get("num_classes") or dataset.num_train_pids))
    load_model_weights(model, state, str(checkpoint))
    model.to(device)
    result = evaluate_model(cfg, model, dataset, device, features_path=out / "features.npz")
    warning = check_not_degenerate(result, f"model {checkpoint}")
    if warning:
        print(f"evreid test: {warning}", file=sys.stderr)
    report = {**result["summary"], "num_valid_queries": result["num_valid_queries"],
              "num_skipped_queries": result["num_skipped_queries"],
              "protocol": dataset.protocol, "sampler": cfg.TEST.SAMPLER,
              "distance": cfg.TEST.DISTANCE, "reranking": cfg.TEST.RERANKING,
              "checkpoint": str(checkpoint), "dataset": dataset.name}
    atomic_write_json(out / "test_metrics.json", report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_metrics({cfg.MODEL.ARCH: result["summary"]}))
        print(f"valid queries {result['num_valid_queries']}, skipped "
              f"{result['num_skipped_queries']}; protocol {dataset.protocol}, sampler "
              f"{cfg.TEST.SAMPLER}, distance {cfg.TEST.DISTANCE}")
    return 0
