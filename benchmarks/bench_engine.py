"""Engine throughput: training clips/s and feature extraction tracklets/s.

Demo scale (rows "demo": the CPU-scale demo preset) runs the real data path
(the small synthetic benchmark with its events): loader + forward + backward +
optimiser step, then feature extraction of query + gallery. Paper scale (rows
"paper": ResNet-50, 256x128, T = 8; --paper-opts KEY VALUE changes it) times
model steps on random inputs of that shape, since no paper-scale dataset ships
with the project.

    python benchmarks/bench_engine.py [--data data/synthetic] [--steps 8] [--paper] [--json]
    python benchmarks/bench_engine.py --preset tiny --steps 1 --archs frames_only  # quick

GPU mode (same measurements on a GPU, marked as such in every row, with MFU
against the GPU's dense peak; loader workers matter there):

    python benchmarks/bench_engine.py --device cuda --amp --channels-last --compile \\
        --warmup 3 --paper --paper-batch 16 --paper-steps 20 --opts DATALOADER.NUM_WORKERS 8

--device / --amp / --channels-last / --compile override the trainer's own
choices (MODEL.DEVICE; on CUDA it uses fp16 AMP and channels_last): --amp is
bf16 autocast around the forward on either device (benchmarks/_device.py has
the conventions). Every row names the device ("NAME (GPU)" or "CPU (N
threads)") and the flags. MFU: training = forward + backward = 6 x MACs per
clip (the optimiser step and data loading are in the time, not in the FLOPs),
extraction = 2 x MACs per clip; CPU MFU is n/a unless --peak-tflops is given.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _device import (  # noqa: E402
    Runner,
    Setup,
    add_device_arguments,
    count_clip_macs,
    fmt_mfu,
    mfu,
    resolve_setup,
    timed,
)

ARCHS = ("sdcl", "frames_only")


def _row(scale: str, arch: str, measure: str, throughput: float, unit: str, macs: int,
         clips_per_s: float, train: bool, setup: Setup, runner: Runner, **extra) -> dict:
    peak, _ = setup.peak()
    return {"scale": scale, "arch": arch, "measure": measure, "throughput": throughput,
            "unit": unit, "gmacs_per_clip": macs / 1e9,
            **mfu(macs, clips_per_s, peak, train=train), **runner.row_fields(), **extra}


def time_training(cfg, dataset, steps: int, setup: Setup, output_dir: str
                  ) -> tuple[dict, object, Runner]:
    from evreid.engine.trainer import Trainer

    trainer = Trainer(cfg, dataset, output_dir, show_progress=False)
    h, w = cfg.INPUT.SIZE_TRAIN
    macs = count_clip_macs(trainer.model, cfg.INPUT.SEQ_LEN, cfg.EVENTS.BINS, h, w,
                           trainer.device, events=trainer.uses_events)
    runner = setup.runner(trainer.model)
    trainer.net = runner  # _train_step calls self.net(frames, events)
    trainer.model.train()
    trainer.loader.sampler.set_epoch(0)
    batches = iter(trainer.loader)

    def next_batch() -> dict:
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            trainer.loader.sampler.set_epoch(trainer.step)
            batches = iter(trainer.loader)
            return next(batches)

    runner.warm_up(lambda: trainer._train_step(next_batch()), setup.warmup)
    clips = 0

    def run() -> None:
        nonlocal clips
        for _ in range(steps):
            batch = next_batch()
            trainer._train_step(batch)
            clips += batch["frames"].shape[0]

    seconds = timed(run, setup)
    row = _row("demo", cfg.MODEL.ARCH, "training", clips / seconds, "clips/s", macs,
               clips / seconds, True, setup, runner, seconds=seconds, clips=clips,
               batch=cfg.DATALOADER.IMS_PER_BATCH)
    return row, trainer, runner


def time_extraction(cfg, trainer, runner: Runner, tracklets, setup: Setup) -> dict:
    from evreid.engine.data import batch_to_device, build_test_loader
    from evreid.engine.evaluator import extract_features

    loader = build_test_loader(cfg, tracklets, trainer.uses_events)
    h, w = cfg.INPUT.SIZE_TEST
    macs = count_clip_macs(trainer.model, cfg.INPUT.SEQ_LEN, cfg.EVENTS.BINS, h, w,
                           trainer.device, events=trainer.uses_events)
    first = next(iter(loader))

    def warm() -> None:
        runner.eval()
        batch = batch_to_device(first, trainer.device)     # counts arrive as compact ints
        with torch.no_grad():
            runner(batch["frames"], batch.get("events"))

    runner.warm_up(warm, setup.warmup)
    runner.clips = 0
    out: dict = {}
    seconds = timed(lambda: out.update(feats=extract_features(
        runner, loader, trainer.device, amp=False, progress=False)), setup)
    n = len(out["feats"])
    return _row("demo", cfg.MODEL.ARCH, "extraction", n / seconds, "tracklets/s", macs,
                runner.clips / seconds, False, setup, runner, seconds=seconds, tracklets=n,
                clips=runner.clips, sampler=cfg.TEST.SAMPLER)


def time_paper_scale(arch: str, batch: int, steps: int, setup: Setup,
                     opts: list[str] = ()) -> dict:
    from evreid.config import get_cfg
    from evreid.models import build_model

    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.ARCH", arch, *opts])
    t, h, w, bins = cfg.INPUT.SEQ_LEN, *cfg.INPUT.SIZE_TRAIN, cfg.EVENTS.BINS
    model = build_model(cfg, 625).train()
    macs = count_clip_macs(model, t, bins, h, w, torch.device("cpu"),
                           events=bool(getattr(model, "uses_events", False)))
    runner = setup.runner(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    frames = torch.randn(batch, t, 3, h, w, device=setup.device)
    events = torch.poisson(torch.full((batch, t, bins, 2, h, w), 0.05, device=setup.device))
    targets = torch.arange(batch, device=setup.device) % 625

    def step() -> None:
        logits, feats = runner(frames, events)
        loss = sum(torch.nn.functional.cross_entropy(lg.float(), targets) for lg in logits)
        loss = loss + sum(f.float().pow(2).mean() for f in feats)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    model.train()
    runner.warm_up(step, setup.warmup)

    def run() -> None:
        for _ in range(steps):
            step()

    seconds = timed(run, setup)
    cps = batch * steps / seconds
    return _row("paper", arch, "training", cps, "clips/s", macs, cps, True, setup, runner,
                seconds=seconds, clips=batch * steps, batch=batch,
                input=f"T={t} {h}x{w} bins={bins}")


def _table(rows: list[dict]) -> str:
    lines = ["| scale | arch | measure | throughput | GMACs / clip | TFLOP/s | MFU | device | "
             "flags | note |", "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['scale']} | {r['arch']} | {r['measure']} | {r['throughput']:.2f} "
                     f"{r['unit']} | {r['gmacs_per_clip']:.2f} | {r['achieved_tflops']:.3g} | "
                     f"{fmt_mfu(r['mfu'])} | {r['device']} | {r['flags']} | "
                     f"{r['note'] or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/synthetic",
                        help="synthetic-benchmark cache (generated there when missing)")
    parser.add_argument("--preset", default="small",
                        help="synthetic preset for the demo-scale data (default small; tiny "
                             "for smoke tests)")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--archs", default=",".join(ARCHS),
                        help=f"comma list (default {','.join(ARCHS)})")
    parser.add_argument("--no-demo-scale", action="store_true",
                        help="skip the data-path (demo preset) measurements")
    parser.add_argument("--no-extract", action="store_true",
                        help="skip the feature-extraction measurement")
    parser.add_argument("--paper", action="store_true", help="also time paper scale")
    parser.add_argument("--paper-steps", type=int, default=2)
    parser.add_argument("--paper-batch", type=int, default=2)
    parser.add_argument("--paper-opts", nargs="*", default=[],
                        help="KEY VALUE overrides of the paper-scale model (default none)")
    parser.add_argument("--opts", nargs="*", default=[],
                        help="extra KEY VALUE overrides of the demo-scale config")
    parser.add_argument("--output-dir", default="/tmp/evreid_bench_engine",
                        help="the trainer's scratch folder")
    parser.add_argument("--json", action="store_true")
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    archs = [a for a in args.archs.split(",") if a]
    setup = resolve_setup(args, parser)

    from evreid.config import load_preset
    from evreid.data import build_dataset
    from evreid.data.synthetic import ensure_synthetic
    from evreid.utils import tune_allocator

    tune_allocator()
    peak, peak_source = setup.peak()
    report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
              "date": time.strftime("%Y-%m-%d"), "device": setup.label,
              "flags": setup.flags(), "peak_tflops": peak, "peak_source": peak_source,
              "rows": []}
    if not args.no_demo_scale:
        root = ensure_synthetic(args.data, args.preset, "clean", 0)
        dataset = build_dataset("synthetic", root)
        for arch in archs:
            # the device flags win over the same keys in --opts
            cfg = load_preset("demo", ["MODEL.ARCH", arch, "DATASETS.ROOT_DIR", str(root),
                                       *args.opts, "MODEL.DEVICE", setup.device.type,
                                       "SOLVER.AMP", str(setup.amp)])
            train, trainer, runner = time_training(cfg, dataset, args.steps, setup,
                                                   args.output_dir)
            report["rows"].append(train)
            if not args.no_extract:
                report["rows"].append(time_extraction(cfg, trainer, runner,
                                                      dataset.query + dataset.gallery, setup))
    if args.paper:
        for arch in archs:
            report["rows"].append(time_paper_scale(arch, args.paper_batch, args.paper_steps,
                                                   setup, args.paper_opts))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['date']}  {report['machine']}  device: {report['device']}  "
              f"flags: {report['flags']}  peak: "
              + (f"{peak:g} TFLOP/s ({peak_source})" if peak else f"n/a ({peak_source})"))
        print(_table(report["rows"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
