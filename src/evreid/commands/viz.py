"""Pictures for a quick look. Subcommand ``events``: event frames next to video frames.

    evreid viz events --frames DIR --out events.png [--fps 25] [--num-frames 8]
    evreid viz events --dataset mars --root DIR --out events.png
                      [--tracklets 2 | --key bbox_test/0004/0004C1T0002] [--split query]

Each tracklet gives two rows: its frames, and below each frame the events of
its interval (t_{k-1}, t_k] (red = ON, blue = OFF, on white or --background
black). Events come from --events FILE, else from the tracklet's cache when
the dataset has one, else they are simulated on the fly (--preset, --seed).
"""

from __future__ import annotations

import argparse
import json

HELP = "pictures: event frames (red ON / blue OFF) next to the video frames"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    ev = sub.add_parser("events", help="event frames next to the video frames",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--frames", metavar="DIR", help="folder of frames")
    ev.add_argument("--dataset", metavar="NAME", help="dataset name (with --root)")
    ev.add_argument("--root", metavar="DIR", help="dataset root")
    ev.add_argument("--split", default="query", choices=("train", "query", "gallery"),
                    help="dataset split to draw from (default query)")
    ev.add_argument("--key", action="append", default=[],
                    help="tracklet key to draw (repeatable; default: the first --tracklets)")
    ev.add_argument("--tracklets", type=int, default=2, help="how many tracklets (default 2)")
    ev.add_argument("--events", metavar="FILE",
                    help="event file for --frames (default: simulate)")
    ev.add_argument("--fps", type=float, default=25.0, help="frame rate of --frames")
    ev.add_argument("--num-frames", type=int, default=8, help="frames per tracklet (default 8)")
    ev.add_argument("--start", type=int, default=1,
                    help="first frame index drawn (default 1: frame 0 has no events)")
    ev.add_argument("--stride", type=int, default=1, help="step between drawn frames")
    ev.add_argument("--scale", type=float, default=1.0, help="resize factor of every tile")
    ev.add_argument("--background", default="white", choices=("white", "black"))
    ev.add_argument("--preset", default="default", help="simulator preset when simulating")
    ev.add_argument("--seed", type=int, default=0, help="simulator seed when simulating")
    ev.add_argument("--out", required=True, metavar="PNG", help="output PNG")
    ev.add_argument("--json", action="store_true", help="print a JSON summary")


def _tracklet_rows(args: argparse.Namespace):
    """(name, frame paths, fps, event source or None, seed) for each tracklet to draw."""
    from evreid.errors import EvreidError
    from evreid.events.cache import tracklet_seed
    from evreid.events.frames import list_frame_files

    if bool(args.frames) == bool(args.dataset):
        raise EvreidError("give exactly one source: --frames DIR or --dataset NAME --root DIR")
    if args.frames:
        return [(str(args.frames), list_frame_files(args.frames), args.fps, args.events,
                 args.seed)]
    if not args.root:
        raise EvreidError("--dataset needs --root DIR")
    from evreid.data import build_dataset

    dataset = build_dataset(args.dataset, args.root)
    pool = list(getattr(dataset, args.split))
    if args.key:
        by_key = {t.key: t for t in list(dataset.train) + list(dataset.query)
                  + list(dataset.gallery)}
        missing = [k for k in args.key if k not in by_key]
        if missing:
            raise EvreidError(f"unknown tracklet key(s) {', '.join(missing)} in {args.dataset}")
        chosen = [by_key[k] for k in args.key]
    else:
        chosen = pool[:max(1, args.tracklets)]
    return [(t.key, t.frames, t.fps, t.events, tracklet_seed(args.seed, t.key))
            for t in chosen]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from evreid.errors import EvreidError
    from evreid.events.frames import read_frames
    from evreid.events.io import read_events_with_meta
    from evreid.events.simulator import SimulatorConfig, frame_timestamps_us, simulate
    from evreid.viz.events import event_grid, save_png, tracklet_panel

    if args.num_frames < 1 or args.stride < 1 or args.start < 0:
        raise EvreidError("--num-frames and --stride must be >= 1, --start >= 0")
    config = SimulatorConfig.preset(args.preset)
    rows, info = [], []
    for name, paths, fps, source, seed in _tracklet_rows(args):
        indices = list(range(args.start, len(paths), args.stride))[:args.num_frames]
        if not indices:
            raise EvreidError(f"{name}: only {len(paths)} frames, nothing from --start "
                              f"{args.start}")
        last = indices[-1] + 1
        frames = read_frames(paths[:last], color=True)
        times = frame_timestamps_us(last, fps)
        if source and not str(source).endswith((".npz", ".h5", ".hdf5", ".aedat", ".aedat4")):
            source = None   # per-frame .mat folders: simulate instead
        if source:
            ev, meta = read_events_with_meta(source)
            if "frame_timestamps_us" in meta:
                times = np.asarray(meta["frame_timestamps_us"])[:last]
            origin = str(source)
        else:
            luma = read_frames(paths[:last])
            ev = simulate(luma, times, config, seed=seed)
            origin = f"simulated ({args.preset}, seed {seed})"
        if (ev.height, ev.width) != frames.shape[1:3]:
            raise EvreidError(f"{name}: events are {ev.width}x{ev.height}, frames "
                              f"{frames.shape[2]}x{frames.shape[1]}")
        rows.append(tracklet_panel(frames, ev, times, indices, args.background))
        info.append({"tracklet": name, "frames": indices, "events": origin,
                     "num_events": len(ev)})
    image = event_grid(rows, scale=args.scale)
    path = save_png(args.out, image)
    summary = {"out": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
               "bytes": path.stat().st_size, "tracklets": info}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path} ({image.shape[1]}x{image.shape[0]}, {summary['bytes']:,} bytes)")
    return 0
