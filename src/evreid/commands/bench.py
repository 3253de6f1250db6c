"""Measure what things cost on this machine.

  evreid bench model --config-file sdcl_paper
  evreid bench model --config-file sdcl_cpu MODEL.ARCH frames_only --json

``bench model``: parameters, MACs and FLOPs (FLOPs = 2 x MACs) per clip and
per frame (torch FlopCounterMode: convolutions and matrix products; the
alignment's bilinear sampling is added analytically and shown apart),
spiking SynOps and firing rates on synthetic events, and forward / backward
seconds per clip (best of --repeats, train mode, batch --batch).

Each target is one entry in ``TARGETS``: a help line, an ``add_arguments``
and a ``run``; a new target (simulator, eval, ...) is one more entry.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


# ---------------------------------------------------------------- bench model
def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", "--config_file", dest="config_file", default=None,
                        help="YAML config or preset name (evreid configs); default: the "
                             "built-in defaults, paper scale")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="config overrides, e.g. MODEL.ARCH frames_only")
    parser.add_argument("--batch", type=int, default=2,
                        help="clips per timed forward/backward (default 2)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repetitions after one warm-up; best is kept (default 3)")
    parser.add_argument("--num-classes", type=int, default=625,
                        help="classifier size (default 625, MARS training ids)")
    parser.add_argument("--event-density", type=float, default=0.02,
                        help="probability of an event per bin, polarity and pixel in the "
                             "synthetic input (default 0.02)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timed runs")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _fmt_count(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f}"


def _print_model_report(r: dict) -> None:
    inp = r["input"]
    print(f"arch {r['arch']}: clip of {inp['seq_len']} frames {inp['height']}x{inp['width']}"
          + (f", {inp['bins']} event bins" if r["uses_events"] else ""))
    p = r["params"]
    print(f"  parameters        {p['total'] / 1e6:.2f} M (trainable {p['trainable'] / 1e6:.2f} M)")
    for name, n in p["by_module"].items():
        print(f"    {name:<16}{n / 1e6:8.3f} M")
    print(f"  MACs / clip       {_fmt_count(r['macs_per_clip'])}  "
          f"(FLOPs = 2 x MACs = {_fmt_count(r['flops_per_clip'])})")
    print(f"  MACs / frame      {_fmt_count(r['macs_per_frame'])}")
    for name, n in r["macs_by_module"].items():
        print(f"    {name:<16}{n / 1e9:8.3f} G")
    un = r["uncounted"]
    if un["alignment_bilinear_macs_per_clip"] or un["deform_gathered_values_per_clip"]:
        print(f"  not in the counter: alignment bilinear sampling "
              f"{_fmt_count(un['alignment_bilinear_macs_per_clip'])} MACs, "
              f"deformable gathers {_fmt_count(un['deform_gathered_values_per_clip'])} values "
              "(copies, 0 MACs)")
    if r["uses_events"]:
        rates = ", ".join(f"{k} {v:.3f}" for k, v in r["firing_rates"].items())
        print(f"  SynOps / clip     {_fmt_count(r['synops_per_clip'])} "
              f"(event density {inp['event_density']}); firing rates: {rates}")
    t = r.get("timing")
    if t:
        print(f"  time / clip       forward {t['forward_s_per_clip'] * 1e3:.1f} ms, backward "
              f"{t['backward_s_per_clip'] * 1e3:.1f} ms, eval forward "
              f"{t['eval_forward_s_per_clip'] * 1e3:.1f} ms "
              f"(batch {t['batch']}, best of {t['repeats']}, {r['threads']} threads)")


def _run_model(args: argparse.Namespace) -> int:
    import json

    import torch

    from evreid.config import load_config
    from evreid.errors import EvreidError
    from evreid.models import build_model
    from evreid.models.cost import model_cost

    if args.batch < 1 or args.repeats < 1:
        raise EvreidError("--batch and --repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config_file, args.opts)    # random weights: no ImageNet file read
    height, width = cfg.INPUT.SIZE_TEST
    torch.manual_seed(cfg.SEED)
    report = model_cost(lambda: build_model(cfg, args.num_classes),
                        seq_len=cfg.INPUT.SEQ_LEN, bins=cfg.EVENTS.BINS, height=height,
                        width=width, batch=args.batch, repeats=args.repeats,
                        event_density=args.event_density, timing=not args.no_timing)
    report["config_file"] = args.config_file
    report["overrides"] = list(args.opts)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_model_report(report)
    return 0


# ----------------------------------------------------------------- dispatch
TARGETS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                         Callable[[argparse.Namespace], int]]] = {
    "model": ("parameters, MACs/FLOPs, SynOps, firing rates and time per clip of a model",
              _add_model_arguments, _run_model),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_target", metavar="TARGET")
    for name, (help_text, add, run_target) in TARGETS.items():
        target = sub.add_parser(name, help=help_text, description=help_text)
        add(target)
        target.set_defaults(_bench_run=run_target)
    parser.set_defaults(_bench_parser=parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "bench_target", None) is None:
        args._bench_parser.print_help()
        return 2
    return int(args._bench_run(args) or 0)
