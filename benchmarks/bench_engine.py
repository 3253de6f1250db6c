"""Engine throughput: training clips/s and feature extraction tracklets/s.

CPU scale runs the real data path (the small synthetic benchmark with its
events, the demo preset): loader + forward + backward + optimiser step.
Paper scale (ResNet-50, 256x128, T = 8) times model steps on random inputs of
that shape, since no paper-scale dataset ships with the project.

    python benchmarks/bench_engine.py [--data data/synthetic] [--steps 8] [--paper] [--json]

GPU: pass MODEL.DEVICE cuda through --opts to time the same on a GPU (AMP and
channels_last as the trainer uses them).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch


def time_training(cfg, dataset, steps: int) -> dict:
    from evreid.engine.trainer import Trainer

    trainer = Trainer(cfg, dataset, "/tmp/evreid_bench_engine", show_progress=False)
    trainer.net.train()
    trainer.loader.sampler.set_epoch(0)
    batches = iter(trainer.loader)
    trainer._train_step(next(batches))  # warm-up
    clips = 0
    start = time.perf_counter()
    for _ in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            trainer.loader.sampler.set_epoch(trainer.step)
            batches = iter(trainer.loader)
            batch = next(batches)
        trainer._train_step(batch)
        clips += batch["frames"].shape[0]
    seconds = time.perf_counter() - start
    return {"clips_per_s": clips / seconds, "seconds": seconds, "clips": clips,
            "batch": cfg.DATALOADER.IMS_PER_BATCH}, trainer


def time_extraction(cfg, trainer, tracklets) -> dict:
    from evreid.engine.data import build_test_loader
    from evreid.engine.evaluator import extract_features

    loader = build_test_loader(cfg, tracklets, trainer.uses_events)
    start = time.perf_counter()
    feats = extract_features(trainer.model, loader, trainer.device, progress=False)
    seconds = time.perf_counter() - start
    return {"tracklets_per_s": len(feats) / seconds, "seconds": seconds,
            "tracklets": len(feats), "sampler": cfg.TEST.SAMPLER}


def time_paper_scale(arch: str, batch: int, steps: int) -> dict:
    from evreid.config import get_cfg
    from evreid.models import build_model

    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.ARCH", arch])
    model = build_model(cfg, 625).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    frames = torch.randn(batch, 8, 3, 256, 128)
    events = torch.poisson(torch.full((batch, 8, 3, 2, 256, 128), 0.05))
    targets = torch.arange(batch) % 625

    def step() -> None:
        logits, feats = model(frames, events if model.uses_events else None)
        loss = sum(torch.nn.functional.cross_entropy(lg, targets) for lg in logits)
        loss = loss + sum(f.pow(2).mean() for f in feats)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"clips_per_s": batch * steps / seconds, "seconds": seconds, "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/synthetic")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--paper", action="store_true", help="also time paper scale")
    parser.add_argument("--paper-steps", type=int, default=2)
    parser.add_argument("--opts", nargs="*", default=[], help="extra KEY VALUE overrides")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from evreid.config import load_preset
    from evreid.data import build_dataset
    from evreid.data.synthetic import ensure_synthetic
    from evreid.utils import tune_allocator

    tune_allocator()
    root = ensure_synthetic(args.data, "small", "clean", 0)
    dataset = build_dataset("synthetic", root)
    report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
              "date": time.strftime("%Y-%m-%d"), "cpu_scale": {}}
    for arch in ("sdcl", "frames_only"):
        cfg = load_preset("demo", ["MODEL.ARCH", arch, "DATASETS.ROOT_DIR", str(root), *args.opts])
        train, trainer = time_training(cfg, dataset, args.steps)
        extract = time_extraction(cfg, trainer, dataset.query + dataset.gallery)
        report["cpu_scale"][arch] = {"train": train, "extract": extract}
    if args.paper:
        report["paper_scale"] = {arch: time_paper_scale(arch, 2, args.paper_steps)
                                 for arch in ("sdcl", "frames_only")}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for scale in ("cpu_scale", "paper_scale"):
            for arch, figures in report.get(scale, {}).items():
                print(scale, arch, figures)


if __name__ == "__main__":
    main()
