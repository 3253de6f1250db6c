"""Simulate DVS events from video frames (a folder, or a whole dataset into a cache).

One folder of frames -> one event file:

    evreid simulate --frames DIR --fps 25 --out events.evs      (.evs/.npz/.h5/.aedat/folder)

A dataset -> a cache mirroring it, one file per tracklet at
<events_dir>/<tracklet key>.evs (the clip-indexed store, docs/EVENT_STORE.md; default
events_dir = <dataset folder>/events), which the *_event dataset variants then load:

    evreid simulate --dataset mars --root data/mars [--out EVENTS_DIR]
                    [--preset default|clean|realistic] [--seed 0] [--workers 2]
                    [--shard i/n] [--force] [--json] [KEY VALUE ...]

Resumable: a tracklet whose cache file has the same simulator-config hash and
frame count is skipped (use --force to redo). Each tracklet's seed is derived
from --seed and its key, so the result does not depend on --workers or
--shard. --shard i/n (0 <= i < n) takes every n-th tracklet from the i-th, for
cluster job arrays. --json prints a summary (tracklets, frames, events of the
newly simulated tracklets, seconds).

KEY VALUE pairs override the preset's settings (docs/SIMULATOR.md names them), e.g.
`evreid simulate --frames DIR --out e.evs cutoff_hz 200 refractory_us 0`; the older
`--set KEY=VALUE` still works for this release and says so on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("source (one of)")
    src.add_argument("--frames", metavar="DIR", help="folder of frames (numeric order)")
    src.add_argument("--dataset", metavar="NAME", help="dataset name (mars, ilidsvid, ...)")
    parser.add_argument("--root", metavar="DIR", help="dataset root folder (with --dataset)")
    parser.add_argument("--out", metavar="PATH",
                        help="output event file (--frames) or events folder (--dataset; "
                             "default <root>/events)")
    parser.add_argument("--fps", type=float, default=25.0,
                        help="frame rate of --frames (default 25)")
    parser.add_argument("--preset", default="default",
                        help="simulator preset: default, clean, realistic (default: default)")
    parser.add_argument("settings", nargs="*", metavar="KEY VALUE",
                        help="simulator settings over the preset, e.g. cutoff_hz 200")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="deprecated: write KEY VALUE instead")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes for --dataset (default min(2, cores))")
    parser.add_argument("--shard", default="0/1", metavar="i/n",
                        help="process only shard i of n (0-based; default 0/1)")
    parser.add_argument("--device", default=None,
                        help="the implementation, all on the CPU and giving the same events: "
                             "numba (the compiled kernel), numpy (the reference) or cpu "
                             "(default: numba, numpy where the kernel does not go)")
    parser.add_argument("--force", action="store_true", help="re-simulate fresh caches too")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def build_config(preset: str, settings: list[str], deprecated_set: list[str] | None = None):
    """SimulatorConfig from a preset plus KEY VALUE settings (and ``--set`` KEY=VALUE)."""
    from evreid.events.config import SimulatorConfig, parse_settings

    values = parse_settings(list(deprecated_set or []), "KEY=VALUE")
    values.update(parse_settings(list(settings)))
    if deprecated_set:      # once parsed: a bad --set stays one error line
        print("evreid simulate: --set KEY=VALUE is deprecated and goes in the next release; "
              "write KEY VALUE (e.g. cutoff_hz 200)", file=sys.stderr)
    return SimulatorConfig.preset(preset, **values)


def check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be judged before reading a frame."""
    import math

    from evreid.errors import EvreidError

    if args.workers < 1:
        raise EvreidError(f"--workers must be >= 1; got {args.workers}")
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise EvreidError(f"--fps must be a finite number > 0; got {args.fps}")
    if args.frames and Path(args.frames).is_file():
        raise EvreidError(f"--frames {args.frames} is a file; give the folder of frames")
    from evreid.events.simulator import check_device

    check_device(args.device, "--device")


def _print(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return
    if "tracklets" in summary:
        print(f"simulated {summary['simulated']} tracklet(s), skipped {summary['skipped']} "
              f"fresh; {summary['frames']:,} frames, {summary['events']:,} events in "
              f"{summary['seconds']:.1f} s -> {summary['events_dir']} "
              f"(config {summary['config_hash']})")
    else:
        print(f"{summary['frames']:,} frames -> {summary['events']:,} events in "
              f"{summary['seconds']:.2f} s -> {summary['out']}")


def _run_frames(args: argparse.Namespace, config) -> dict:
    from evreid.errors import EvreidError
    from evreid.events.runner import simulate_folder
    from evreid.utils import check_writable

    if not args.out:
        raise EvreidError("--frames needs --out FILE (.evs, .npz, .h5, .aedat, or a folder for "
                          ".mat)")
    check_writable(Path(args.out).resolve().parent, "--out")
    return simulate_folder(args.frames, args.out, config, fps=args.fps, seed=args.seed,
                           device=args.device)


def _run_dataset(args: argparse.Namespace, config) -> dict:
    from evreid.errors import EvreidError
    from evreid.events.runner import parse_shard, simulate_dataset
    from evreid.utils import check_writable

    if not args.root:
        raise EvreidError("--dataset needs --root DIR")
    shard = parse_shard(args.shard)
    if args.out:
        check_writable(Path(args.out), "--out")
    summary = simulate_dataset(args.dataset, args.root, config, events_dir=args.out,
                               seed=args.seed, workers=args.workers, shard=shard,
                               force=args.force, device=args.device, progress=True)
    return {**summary, "preset": args.preset}


def run(args: argparse.Namespace) -> int:
    from evreid.errors import EvreidError

    if bool(args.frames) == bool(args.dataset):
        raise EvreidError("give exactly one source: --frames DIR or --dataset NAME --root DIR")
    check_arguments(args)
    config = build_config(args.preset, args.settings, args.overrides)
    summary = _run_frames(args, config) if args.frames else _run_dataset(args, config)
    _print(summary, args.json)
    return 0
