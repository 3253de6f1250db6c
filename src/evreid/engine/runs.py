"""Whole runs, as `evreid train` and `evreid test` start them: training over one or
several splits (:func:`train_splits`), evaluating a checkpoint (:func:`evaluate_checkpoint`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evreid.config import CfgNode
from evreid.data import build_dataset_from_cfg
from evreid.engine.checkpoint import load_checkpoint, load_model_weights
from evreid.engine.distributed import resolve_device
from evreid.engine.evaluator import evaluate_model
from evreid.engine.trainer import Trainer
from evreid.metrics.rank import check_not_degenerate
from evreid.models import build_model
from evreid.utils import atomic_write_json, check_writable, seed_everything

SPLITS_SUMMARY = "splits_summary.json"
TEST_METRICS = "test_metrics.json"


def train_splits(cfg: CfgNode, splits: list[int] | None = None, resume: bool = False,
                 progress: bool = True, allow_config_change: bool = False,
                 trust_checkpoint: bool = False) -> dict | None:
    """Train and evaluate ``cfg``; with ``splits``, one run per split in
    ``OUTPUT_DIR/split_<i>`` and their mean and std (also in splits_summary.json).

    Returns ``{"runs": {name: final summary}, "mean", "std"}`` (mean and std with two
    splits or more), or None on the processes of a DDP run other than the main one.
    """
    root = check_writable(Path(cfg.OUTPUT_DIR), "OUTPUT_DIR")
    finals = {}
    for split in splits if splits is not None else [cfg.DATASETS.SPLIT_ID]:
        run_cfg = cfg.clone()
        run_cfg.DATASETS.SPLIT_ID = split
        out = root / f"split_{split}" if splits is not None else root
        run_cfg.OUTPUT_DIR = str(out)
        trainer = Trainer(run_cfg, build_dataset_from_cfg(run_cfg), out, resume=resume,
                          show_progress=progress, allow_config_change=allow_config_change,
                          trust_checkpoint=trust_checkpoint)
        result = trainer.train()
        if trainer.info.is_main:
            finals[f"split {split}" if splits is not None else cfg.MODEL.ARCH] = result["final"]
    if not finals:
        return None
    report: dict = {"runs": finals}
    if len(finals) > 1:
        keys = next(iter(finals.values())).keys()
        report["mean"] = {k: float(np.mean([f[k] for f in finals.values()])) for k in keys}
        report["std"] = {k: float(np.std([f[k] for f in finals.values()])) for k in keys}
        atomic_write_json(root / SPLITS_SUMMARY, report)
    return report


def evaluate_checkpoint(cfg: CfgNode, checkpoint: str | os.PathLike | None = None,
                    out: str | os.PathLike | None = None,
                    trust_checkpoint: bool = False) -> tuple[dict, str | None]:
    """Evaluate a checkpoint (default ``TEST.WEIGHT``, else ``OUTPUT_DIR/best.pth``) on
    the config's dataset; writes features.npz and test_metrics.json into ``out``
    (default ``OUTPUT_DIR``). Returns the report and a warning when the ranking is
    degenerate (e.g. every distance equal), else None."""
    seed_everything(cfg.SEED)
    checkpoint = Path(checkpoint or cfg.TEST.WEIGHT or Path(cfg.OUTPUT_DIR) / "best.pth")
    out = check_writable(Path(out or cfg.OUTPUT_DIR), "--out" if out else "OUTPUT_DIR")
    state = load_checkpoint(checkpoint, arch=cfg.MODEL.ARCH, trust=trust_checkpoint)
    dataset = build_dataset_from_cfg(cfg)
    device = resolve_device(cfg.MODEL.DEVICE)
    model = build_model(cfg, int(state.get("num_classes") or dataset.num_train_pids))
    load_model_weights(model, state, str(checkpoint))
    model.to(device)
    result = evaluate_model(cfg, model, dataset, device, features_path=out / "features.npz")
    warning = check_not_degenerate(result, f"model {checkpoint}")
    report = {**result["summary"], "num_valid_queries": result["num_valid_queries"],
              "num_skipped_queries": result["num_skipped_queries"],
              "protocol": dataset.protocol, "sampler": cfg.TEST.SAMPLER,
              "distance": cfg.TEST.DISTANCE, "reranking": cfg.TEST.RERANKING,
              "checkpoint": str(checkpoint), "dataset": dataset.name}
    atomic_write_json(out / TEST_METRICS, report)
    return report, warning
