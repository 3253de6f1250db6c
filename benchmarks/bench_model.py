"""Model cost figures (recorded in benchmarks/RESULTS.md).

  python benchmarks/bench_model.py                 # print the markdown
  python benchmarks/bench_model.py --out model_tables.md

Three tables: every architecture at paper scale (parameters, MACs; no
timing), the paper-scale SDCL and frames-only base timed per clip, and the
CPU preset timed on a batch of 8 clips. Inputs are synthetic (random frames,
Bernoulli events at --event-density); MACs do not depend on them, SynOps and
firing rates do.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

import torch

from evreid.config import load_config
from evreid.models import MODELS, build_model
from evreid.models.cost import model_cost

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "sdcl_paper.yaml"
CPU = ROOT / "configs" / "sdcl_cpu.yaml"


def _report(config: Path, opts: list[str], num_classes: int, **kw) -> dict:
    cfg = load_config(config, opts)
    h, w = cfg.INPUT.SIZE_TEST
    torch.manual_seed(0)
    return model_cost(lambda: build_model(cfg, num_classes), seq_len=cfg.INPUT.SEQ_LEN,
                      bins=cfg.EVENTS.BINS, height=h, width=w, **kw)


def _g(x: float) -> str:
    return f"{x / 1e9:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the markdown here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-batch", type=int, default=2)
    parser.add_argument("--cpu-batch", type=int, default=8)
    parser.add_argument("--event-density", type=float, default=0.02)
    parser.add_argument("--num-classes", type=int, default=625)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    lines = ["# Model cost (issue 5)", "",
             f"Date: {datetime.date.today().isoformat()}. Machine: 2-core CPU sandbox, "
             f"Python {platform.python_version()}, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads; other jobs shared the cores, so times "
             "are best-of-N and still noisy).",
             f"Command: `python benchmarks/bench_model.py {' '.join(argv or sys.argv[1:])}`",
             "(per configuration also `evreid bench model --config-file F [KEY VALUE ...]`).",
             "",
             "MACs = multiply-accumulates from torch.utils.flop_counter (convolutions and "
             "matrix products); FLOPs = 2 x MACs. Not counted there: BN, activations, the LIF "
             "recurrence, the event-guided gather (a copy) and the alignment's bilinear "
             "sampling, which is estimated analytically (column 'sampling'). SynOps on "
             f"synthetic events at density {args.event_density} per bin, polarity and pixel. "
             f"{args.num_classes} classes.", ""]

    lines += ["## Every architecture at paper scale (ResNet-50, last stride 1, 256x128, "
              "T = 8, 3 bins)", "",
              "| arch | params (M) | GMACs / clip | GFLOPs / clip | GMACs / frame | "
              "sampling GMACs | SynOps / clip (M) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for arch in MODELS:
        r = _report(PAPER, ["MODEL.ARCH", arch], args.num_classes, timing=False,
                    event_density=args.event_density)
        lines.append(
            f"| {arch} | {r['params']['total'] / 1e6:.2f} | {_g(r['macs_per_clip'])} | "
            f"{_g(r['flops_per_clip'])} | {_g(r['macs_per_frame'])} | "
            f"{_g(r['uncounted']['alignment_bilinear_macs_per_clip'])} | "
            f"{r['synops_per_clip'] / 1e6:.1f} |")
        print(lines[-1], file=sys.stderr)
    lines += ["", "Reference (REFERENCE_RESULTS.md): SDCL about 33 M parameters (paper Fig. 5); "
              "PSTA frames-only base 35.4 M, 37.3 GMACs per clip; budget for SDCL <= 40 M, "
              "<= 43 GMACs per clip.", ""]

    def timed_table(title: str, config: Path, archs: list[str], batch: int) -> None:
        nonlocal lines
        lines += [f"## {title}", "",
                  "| arch | params (M) | GMACs / clip | forward s / clip | backward s / clip | "
                  f"fwd + bwd s / batch of {batch} | eval forward s / clip | firing rates |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for arch in archs:
            r = _report(config, ["MODEL.ARCH", arch], args.num_classes, batch=batch,
                        repeats=args.repeats, event_density=args.event_density)
            t = r["timing"]
            rates = ", ".join(f"{v:.3f}" for v in r["firing_rates"].values()) or "-"
            lines.append(
                f"| {arch} | {r['params']['total'] / 1e6:.3f} | {_g(r['macs_per_clip'])} | "
                f"{t['forward_s_per_clip']:.3f} | {t['backward_s_per_clip']:.3f} | "
                f"{t['forward_s'] + t['backward_s']:.3f} | "
                f"{t['eval_forward_s_per_clip']:.3f} | {rates} |")
            print(lines[-1], file=sys.stderr)
        lines.append("")

    timed_table(f"Paper scale, timed (batch {args.paper_batch}, train mode, best of "
                f"{args.repeats})", PAPER, ["sdcl", "frames_only"], args.paper_batch)
    cpu = load_config(CPU)
    timed_table(f"CPU preset configs/sdcl_cpu.yaml ({cpu.MODEL.BACKBONE} x "
                f"{cpu.MODEL.WIDTH_MULT}, {cpu.INPUT.SIZE_TEST[0]}x{cpu.INPUT.SIZE_TEST[1]}, "
                f"T = {cpu.INPUT.SEQ_LEN}, 3 bins; batch {args.cpu_batch}, best of "
                f"{args.repeats})", CPU, ["sdcl", "frames_only", "events_only"], args.cpu_batch)

    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
