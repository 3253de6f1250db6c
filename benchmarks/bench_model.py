"""Model cost figures (recorded in benchmarks/RESULTS.md).

  python benchmarks/bench_model.py                 # print the markdown (CPU)
  python benchmarks/bench_model.py --out model_tables.md
  python benchmarks/bench_model.py --tables cpu --archs sdcl --cpu-batch 2 --repeats 1  # quick

GPU mode (same tables, timed on the GPU; MFU against the GPU's dense peak):

  python benchmarks/bench_model.py --device cuda --amp --channels-last --compile \\
      --paper-batch 16 --cpu-batch 64 --warmup 3

Three tables: every architecture at paper scale (parameters, MACs; no
timing), the paper-scale SDCL and frames-only base timed per clip, and the
CPU preset timed on a batch of 8 clips. Inputs are synthetic (random frames,
Bernoulli events at --event-density); MACs do not depend on them, SynOps and
firing rates do. MACs, SynOps and firing rates are always counted on the CPU;
only the timing runs on --device. Timed rows name the device ("NAME (GPU)" or
"CPU (N threads)") and the flags; the conventions for --amp, MFU and the peak
table are in benchmarks/_device.py (training MFU: 6 x MACs per clip, eval
MFU: 2 x MACs per clip; CPU MFU is n/a unless --peak-tflops is given).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

from evreid.config import load_config, preset_path
from evreid.models import MODELS, build_model
from evreid.models.cost import model_cost, synthetic_inputs

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _device import (  # noqa: E402
    Setup,
    add_device_arguments,
    fmt_mfu,
    mfu,
    resolve_setup,
    time_forward_backward,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER = preset_path("sdcl_paper")
CPU = preset_path("sdcl_cpu")
TABLES = ("arch", "paper", "cpu")


def _report(config: Path, opts: list[str], num_classes: int, **kw) -> tuple[dict, torch.nn.Module]:
    """Counts (on the CPU, no timing) and the model they were taken on."""
    cfg = load_config(config, opts)
    h, w = cfg.INPUT.SIZE_TEST
    torch.manual_seed(0)
    built: list[torch.nn.Module] = []

    def build() -> torch.nn.Module:
        built.append(build_model(cfg, num_classes))
        return built[-1]

    report = model_cost(build, seq_len=cfg.INPUT.SEQ_LEN, bins=cfg.EVENTS.BINS, height=h,
                        width=w, timing=False, **kw)
    return report, built[-1]


def _g(x: float) -> str:
    return f"{x / 1e9:.2f}"


def time_report(report: dict, model: torch.nn.Module, setup: Setup, batch: int,
                repeats: int, event_density: float) -> dict:
    """Time ``model`` on ``setup``'s device; seconds, clips/s and MFU."""
    inp = report["input"]
    runner = setup.runner(model)
    frames, events = synthetic_inputs(batch, inp["seq_len"], inp["bins"], inp["height"],
                                      inp["width"], event_density, seed=1)
    frames = frames.to(setup.device)
    events = events.to(setup.device) if runner.uses_events else None
    t = time_forward_backward(runner, frames, events, repeats=repeats)
    peak, _ = setup.peak()
    train_cps = batch / (t["forward_s"] + t["backward_s"])
    eval_cps = batch / t["eval_forward_s"]
    return {**t, "batch": batch, "train_clips_per_s": train_cps, "eval_clips_per_s": eval_cps,
            "train": mfu(report["macs_per_clip"], train_cps, peak, train=True),
            "eval": mfu(report["macs_per_clip"], eval_cps, peak, train=False),
            **runner.row_fields()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the markdown here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-batch", type=int, default=2)
    parser.add_argument("--cpu-batch", type=int, default=8)
    parser.add_argument("--event-density", type=float, default=0.02)
    parser.add_argument("--num-classes", type=int, default=625)
    parser.add_argument("--tables", default=",".join(TABLES),
                        help="comma list of tables to make: arch (every architecture, "
                             "paper scale, counts only), paper (paper scale, timed), cpu (the CPU "
                             "preset sdcl_cpu, timed on --device); default all")
    parser.add_argument("--archs", default="",
                        help="comma list: only these architectures in every table")
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    tables = [t for t in args.tables.split(",") if t]
    unknown = set(tables) - set(TABLES)
    if unknown:
        parser.error(f"--tables: unknown {sorted(unknown)}; choose from {', '.join(TABLES)}")
    only = [a for a in args.archs.split(",") if a]
    if set(only) - set(MODELS):
        parser.error(f"--archs: unknown {sorted(set(only) - set(MODELS))}")
    setup = resolve_setup(args, parser)
    peak, peak_source = setup.peak()

    def pick(archs) -> list[str]:
        return [a for a in archs if not only or a in only]

    lines = ["# Model cost (issue 5)", "",
             f"Date: {datetime.date.today().isoformat()}. Machine: {platform.machine()}, "
             f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, torch "
             f"{torch.__version__}. Timed on "
             f"**{setup.label}**, flags: {setup.flags()}; peak for MFU: "
             + (f"{peak:g} TFLOP/s ({peak_source})" if peak else f"n/a ({peak_source})")
             + ". Times are best-of-N after warm-up (noisy on a shared machine).",
             f"Command: `python benchmarks/bench_model.py {' '.join(argv or sys.argv[1:])}`",
             "(per configuration also `evreid bench model --config-file F [KEY VALUE ...]`).",
             "",
             "MACs = multiply-accumulates from torch.utils.flop_counter (convolutions and "
             "matrix products); FLOPs = 2 x MACs. Not counted there: BN, activations, the LIF "
             "recurrence, the event-guided gather (a copy) and the alignment's bilinear "
             "sampling, which is estimated analytically (column 'sampling'). SynOps on "
             f"synthetic events at density {args.event_density} per bin, polarity and pixel. "
             f"{args.num_classes} classes. MFU: achieved FLOP/s over the device's dense peak; "
             "training = forward + backward = 6 x MACs per clip, eval = 2 x MACs per clip.",
             ""]

    if "arch" in tables:
        lines += ["## Every architecture at paper scale (ResNet-50, last stride 1, 256x128, "
                  "T = 8, 3 bins)", "",
                  "| arch | params (M) | GMACs / clip | GFLOPs / clip | GMACs / frame | "
                  "sampling GMACs | SynOps / clip (M) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for arch in pick(MODELS):
            r, _ = _report(PAPER, ["MODEL.ARCH", arch], args.num_classes,
                           event_density=args.event_density)
            lines.append(
                f"| {arch} | {r['params']['total'] / 1e6:.2f} | {_g(r['macs_per_clip'])} | "
                f"{_g(r['flops_per_clip'])} | {_g(r['macs_per_frame'])} | "
                f"{_g(r['uncounted']['alignment_bilinear_macs_per_clip'])} | "
                f"{r['synops_per_clip'] / 1e6:.1f} |")
            print(lines[-1], file=sys.stderr)
        lines += ["", "Reference (REFERENCE_RESULTS.md): SDCL about 33 M parameters (paper "
                  "Fig. 5); PSTA frames-only base 35.4 M, 37.3 GMACs per clip; budget for "
                  "SDCL <= 40 M, <= 43 GMACs per clip.", ""]

    def timed_table(title: str, config: Path, archs: list[str], batch: int) -> None:
        lines.extend([f"## {title}", "",
                      "| arch | params (M) | GMACs / clip | forward s / clip | backward s / clip | "
                      f"fwd + bwd s / batch of {batch} | eval forward s / clip | "
                      "train clips/s | train TFLOP/s | train MFU | eval clips/s | "
                      "eval MFU | firing rates | device | flags | note |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
                      "| --- | --- | --- | --- |"])
        for arch in pick(archs):
            # firing rates / SynOps from a CPU train-mode pass of at most 8 clips
            # (the defaults' batches; a large GPU batch would make it slow)
            r, model = _report(config, ["MODEL.ARCH", arch], args.num_classes,
                               batch=min(batch, 8), event_density=args.event_density)
            t = time_report(r, model, setup, batch, args.repeats, args.event_density)
            rates = ", ".join(f"{v:.3f}" for v in r["firing_rates"].values()) or "-"
            lines.append(
                f"| {arch} | {r['params']['total'] / 1e6:.3f} | {_g(r['macs_per_clip'])} | "
                f"{t['forward_s'] / batch:.4f} | {t['backward_s'] / batch:.4f} | "
                f"{t['forward_s'] + t['backward_s']:.4f} | "
                f"{t['eval_forward_s'] / batch:.4f} | {t['train_clips_per_s']:.2f} | "
                f"{t['train']['achieved_tflops']:.4f} | {fmt_mfu(t['train']['mfu'])} | "
                f"{t['eval_clips_per_s']:.2f} | {fmt_mfu(t['eval']['mfu'])} | {rates} | "
                f"{t['device']} | {t['flags']} | {t['note'] or '-'} |")
            print(lines[-1], file=sys.stderr)
        lines.append("")

    if "paper" in tables:
        timed_table(f"Paper scale, timed (batch {args.paper_batch}, train mode, best of "
                    f"{args.repeats}; {setup.label})", PAPER, ["sdcl", "frames_only"],
                    args.paper_batch)
    if "cpu" in tables:
        cpu = load_config(CPU)
        timed_table(f"CPU preset sdcl_cpu ({cpu.MODEL.BACKBONE} x "
                    f"{cpu.MODEL.WIDTH_MULT}, {cpu.INPUT.SIZE_TEST[0]}x"
                    f"{cpu.INPUT.SIZE_TEST[1]}, T = {cpu.INPUT.SEQ_LEN}, 3 bins; batch "
                    f"{args.cpu_batch}, best of {args.repeats}; {setup.label})", CPU,
                    ["sdcl", "frames_only", "events_only"], args.cpu_batch)

    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
