"""Generate the embedded synthetic benchmark: procedural walkers in 2-3 cameras, their
video frames and their events (pixel- and time-aligned), 10 train/test splits and a
dataset card with every generation parameter.

examples:
  evreid synth --out data/synth_small                      # small preset, clean, seed 0
  evreid synth --out data/synth_small_blur --protocol blur # same people, long exposure
  evreid synth --out data/synth_full --preset full --workers 8 --json

Presets: tiny (tests), small (64 ids, 2 cameras, 128x64, 24-48 frames; < 1 min on
2 cores), medium (the benchmark for claims: 150 test ids, 2 tracklets per identity and
camera, 100 gallery-only distractors; 128x64, 16-32 frames), full (300 ids, 3 cameras,
256x128, 32-96 frames). Protocols: clean, blur,
lowlight, occlusion, mixed. Folders made with the same --seed and --preset hold the
same identities, cameras and trajectories whatever the protocol, so a model can be
trained on one protocol and tested on another. Re-running with the same settings
regenerates nothing (the folder's dataset_card.json matches); a non-empty folder
with other settings is refused unless --force. Load the result with
`--dataset synthetic --root DIR` (or synthetic_event to require events).
"""

from __future__ import annotations

import argparse

# the names of evreid.data.synthetic.protocols.PRESETS, spelt out so that building the
# CLI does not import the generator (a test keeps the two equal)
PRESET_CHOICES = ("tiny", "small", "small_lookalike", "medium", "full")
PROTOCOL_CHOICES = ("clean", "blur", "lowlight", "occlusion", "mixed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to generate (the dataset root)")
    parser.add_argument("--preset", default="small", choices=PRESET_CHOICES,
                        help="dataset size (default small)")
    parser.add_argument("--protocol", default="clean", choices=PROTOCOL_CHOICES,
                        help="degradation protocol (default clean)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: number of CPU cores, at most 8)")
    parser.add_argument("--force", action="store_true",
                        help="replace a non-empty --out folder made with other settings")
    parser.add_argument("--no-events", action="store_true",
                        help="frames only (no event simulation; faster)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from evreid.data.synthetic import generate_synthetic
    from evreid.errors import EvreidError
    from evreid.utils import check_writable

    if args.workers is not None and args.workers < 1:
        raise EvreidError(f"--workers must be >= 1; got {args.workers}")
    # the generation is staged beside --out, then moved into place
    check_writable(Path(args.out).absolute().parent, "--out's parent folder")
    report = generate_synthetic(args.out, preset=args.preset, protocol=args.protocol,
                                seed=args.seed, workers=args.workers, force=args.force,
                                with_events=not args.no_events, progress=not args.json)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    stats = report.stats
    if report.cache_hit:
        print(f"{report.root}: up to date ({args.preset}/{args.protocol}, seed {args.seed}); "
              f"nothing regenerated")
    else:
        print(f"generated {report.root} ({args.preset}/{args.protocol}, seed {args.seed}) in "
              f"{report.seconds:.1f} s with {report.workers} worker(s)")
    if stats:
        print(f"  {stats['identities']} identities, {stats['tracklets']} tracklets, "
              f"{stats['frames']:,} frames (length {stats['min_len']}-{stats['max_len']}, "
              f"median {stats['median_len']:g}), {stats['events']:,} events "
              f"({stats['events_per_frame']:.0f} per frame)")
    return 0
