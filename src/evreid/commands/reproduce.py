"""Re-run one of the paper's tables on the embedded synthetic benchmark (or a
real dataset you have), several seeds, same recipe and budget for every row.

Tables: table1 (frames / events / both), table2 (fusion ablation), table3
(clean / blur / occlusion / low light), table4 (temporal aggregation), fig6
(1-4 spiking layers, 1-4 deformable mappings).

Every table runs 5 seeds by default (the least for a claim): the markdown and the
JSON give per row the mean, std and 95 % t-interval of each metric over seeds, and
the paired difference against the row's reference (e.g. SDCL minus frames-only,
seed by seed, each seed on its own draw of the synthetic benchmark), plus the
modality diagnostics of fused rows (events zeroed / frames zeroed at test time).

examples:
  evreid reproduce table1                        # 5 seeds, small budget and preset
  evreid reproduce table3 --preset medium        # the benchmark for claims (150 test ids)
  evreid reproduce table2 --seeds 0,1,2
  evreid reproduce fig6 --budget small --epochs 10
  evreid reproduce table2 --protocol blur        # the fusion ablation under motion blur
  evreid reproduce table1 --dataset prid2011 --root data/prid2011 INPUT.SIZE_TRAIN "[128,64]"

Writes <out>/<table>.md and <out>/<table>.json (every run's config hash, seed,
metrics) plus each run's folder.
"""

from __future__ import annotations

import argparse

from evreid.commands.synth import PRESET_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="table1 | table2 | table3 | table4 | fig6")
    parser.add_argument("--seeds", default="0,1,2,3,4",
                        help="comma-separated seeds (default 5: the least for a claim)")
    parser.add_argument("--budget", default="small", choices=("small", "full"),
                        help="training budget, and the synthetic preset unless --preset "
                             "(full: GPU-sized)")
    parser.add_argument("--preset", default=None,
                        choices=PRESET_CHOICES,
                        help="synthetic preset (default: the budget's; medium: the benchmark "
                             "for claims)")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="one synthetic benchmark seed for every run (default: each run "
                             "seed draws its own benchmark)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--protocol", default=None,
                        choices=("clean", "blur", "occlusion", "lowlight"),
                        help="run every row on this synthetic protocol (default: clean, or "
                             "the table's own per-row protocols)")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", default=None, help="dataset root (real datasets)")
    parser.add_argument("--data", default="data/synthetic", help="synthetic cache folder")
    parser.add_argument("--out", default="runs/reproduce")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from evreid.engine.reproduce import markdown, run_table
    from evreid.errors import EvreidError
    from evreid.utils import atomic_write_json, atomic_write_text, check_writable

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise EvreidError(f"--seeds must be comma-separated integers; got {args.seeds!r}") \
            from None
    if not seeds:
        raise EvreidError(f"--seeds names no seed; got {args.seeds!r}")
    if args.epochs is not None and args.epochs < 1:
        raise EvreidError(f"--epochs must be >= 1; got {args.epochs} (an untrained model's "
                          f"table would mean nothing)")
    check_writable(Path(args.out), "--out")
    opts = list(args.opts or [])
    if args.epochs is not None:
        opts += ["SOLVER.MAX_EPOCHS", str(args.epochs), "SOLVER.EVAL_PERIOD", str(args.epochs)]
    if args.budget == "full":
        opts = ["INPUT.SIZE_TRAIN", "[256, 128]", "INPUT.SIZE_TEST", "[256, 128]",
                "INPUT.SEQ_LEN", "8", "MODEL.BACKBONE", "resnet50", "MODEL.WIDTH_MULT", "1.0",
                "MODEL.FEAT_DIM", "1024", "MODEL.AGG.LEVELS", "3", *opts]
    preset = args.preset or ("full" if args.budget == "full" else "small")
    out = Path(args.out)
    report = run_table(args.table, seeds, out, Path(args.data), opts, preset=preset,
                       dataset=args.dataset, root=args.root, protocol=args.protocol,
                       data_seed=args.data_seed)
    text = markdown(report)
    atomic_write_json(out / f"{args.table}.json", report)
    atomic_write_text(out / f"{args.table}.md", text)
    print(json.dumps(report, indent=2) if args.json else text)
    return 0
