"""Pictures for a quick look.

  events    event frames next to video frames (below)
  cmc       CMC curves of several runs in one PNG
  ranked    ranked-list grid of a run: query, then top-k gallery (green = right id)
  features  frame-branch / event-branch / fused activation maps over the input
  contact   contact sheet of a synthetic dataset: identities across cameras + events

examples:
    evreid viz cmc runs/a/features.npz runs/b/features.npz --labels a,b --out cmc.png
    evreid viz ranked --run runs/demo/sdcl --out ranked.png
    evreid viz features --checkpoint runs/demo/sdcl/last.pth --out maps.png
    evreid viz contact --root data/synthetic/synthetic_small_clean_seed0 --out sheet.png

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
import math

from evreid.commands._config_args import TRUST_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    ev = sub.add_parser("events", help="event frames next to the video frames",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--frames", metavar="DIR", help="folder of frames")
    ev.add_argument("--recording", metavar="FILE",
                    help="an event file alone (.raw, .aedat4, .dat, .txt, ...): --num-frames "
                         "windows of --window-us, no frame row")
    ev.add_argument("--window-us", type=int, default=10_000,
                    help="window of --recording in us (default 10000)")
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
    ev.add_argument("--align-time", action="store_true",
                    help="shift a recording whose clock does not start with the frames so "
                         "its first event opens the first frame window (else: refused)")
    ev.add_argument("--background", default="white", choices=("white", "black"))
    ev.add_argument("--preset", default="default", help="simulator preset when simulating")
    ev.add_argument("--seed", type=int, default=0, help="simulator seed when simulating")
    ev.add_argument("--out", required=True, metavar="PNG", help="output PNG")
    ev.add_argument("--json", action="store_true", help="print a JSON summary")

    cmc = sub.add_parser("cmc", help="CMC curves of several runs in one PNG")
    cmc.add_argument("features", nargs="+", help="features.npz files (from evreid test)")
    cmc.add_argument("--labels", default=None, help="comma-separated curve names")
    cmc.add_argument("--distance", default="cosine", choices=("cosine", "euclidean"))
    cmc.add_argument("--max-rank", type=int, default=20)
    cmc.add_argument("--out", required=True, metavar="PNG")

    ranked = sub.add_parser("ranked", help="ranked-list grid of a trained run")
    ranked.add_argument("--run", required=True, metavar="DIR",
                        help="run folder with config.yaml and features.npz (evreid test)")
    ranked.add_argument("--queries", type=int, default=6)
    ranked.add_argument("--topk", type=int, default=5)
    ranked.add_argument("--frames-per-tracklet", type=int, default=2)
    ranked.add_argument("--out", required=True, metavar="PNG")

    feats = sub.add_parser("features", help="activation maps of the frame / event branches")
    feats.add_argument("--checkpoint", required=True, help="checkpoint of an SDCL-family model")
    feats.add_argument("--root", default=None, help="dataset root (default: the run's config)")
    feats.add_argument("--query", type=int, default=0, help="index of the query tracklet")
    feats.add_argument("--out", required=True, metavar="PNG")
    feats.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)

    contact = sub.add_parser("contact", help="contact sheet of a synthetic dataset")
    contact.add_argument("--root", required=True, help="a generated synthetic dataset folder")
    contact.add_argument("--ids", type=int, default=6)
    contact.add_argument("--frames", type=int, default=3)
    contact.add_argument("--out", required=True, metavar="PNG")


def _tracklet_rows(args: argparse.Namespace):
    """(name, frame paths, fps, event source or None, seed) for each tracklet to draw."""
    from evreid.errors import EvreidError
    from evreid.events.cache import tracklet_seed
    from evreid.events.frames import list_frame_files

    if bool(args.frames) == bool(args.dataset):
        raise EvreidError("give exactly one source: --frames DIR, --dataset NAME --root DIR "
                          "or --recording FILE")
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


def check_arguments(args: argparse.Namespace) -> None:
    """What can be judged before any work: the output file and the counts."""
    from pathlib import Path

    from evreid.errors import EvreidError
    from evreid.utils import check_writable

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise EvreidError(f"--out {out}: viz writes PNG images; give a name ending in .png")
    check_writable(out.absolute().parent, "--out's folder")
    positive = {"events": ("num_frames", "stride", "tracklets"), "cmc": ("max_rank",),
                "ranked": ("queries", "topk", "frames_per_tracklet"),
                "contact": ("ids", "frames")}
    for name in positive.get(args.what, ()):
        if getattr(args, name) < 1:
            raise EvreidError(f"--{name.replace('_', '-')} must be >= 1; got "
                              f"{getattr(args, name)}")
    if args.what == "events" and not args.scale > 0:
        raise EvreidError(f"--scale must be > 0; got {args.scale}")
    if args.what == "events" and not (math.isfinite(args.fps) and args.fps > 0):
        raise EvreidError(f"--fps must be a finite number > 0; got {args.fps}")


def run(args: argparse.Namespace) -> int:
    runners = {"events": _run_events, "cmc": _run_cmc, "ranked": _run_ranked,
               "features": _run_features, "contact": _run_contact}
    check_arguments(args)
    return runners[args.what](args)


def _run_cmc(args: argparse.Namespace) -> int:
    from evreid.errors import EvreidError
    from evreid.metrics.features import evaluate_features
    from evreid.viz.cmc import plot_cmc

    labels = args.labels.split(",") if args.labels else [str(p) for p in args.features]
    if len(labels) != len(args.features):
        raise EvreidError(f"--labels names {len(labels)} curves for {len(args.features)} files")
    curves = {label: evaluate_features(path, args.distance, max_rank=args.max_rank)["cmc"]
              for label, path in zip(labels, args.features, strict=True)}
    print(plot_cmc(curves, args.out, max_rank=args.max_rank))
    return 0


def _run_ranked(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evreid.config import load_config
    from evreid.data import build_dataset_from_cfg
    from evreid.errors import EvreidError
    from evreid.metrics.features import load_features, stored_distances
    from evreid.viz.ranking import ranked_list_grid

    run_dir = Path(args.run)
    cfg = load_config(run_dir / "config.yaml")
    data = load_features(run_dir / "features.npz")
    dataset = build_dataset_from_cfg(cfg)
    if (len(dataset.query), len(dataset.gallery)) != (len(data["query_pids"]),
                                                      len(data["gallery_pids"])):
        raise EvreidError(f"{run_dir / 'features.npz'} does not match the dataset of "
                          f"{run_dir / 'config.yaml'} (re-run evreid test)")
    distmat = stored_distances(data, cfg.TEST.DISTANCE)
    print(ranked_list_grid(distmat, dataset.query, dataset.gallery, args.out,
                           num_queries=args.queries, topk=args.topk,
                           frames_per_tracklet=args.frames_per_tracklet))
    return 0


def _run_features(args: argparse.Namespace) -> int:
    from evreid.api import model_from_checkpoint
    from evreid.data import build_dataset_from_cfg
    from evreid.data.clips import ClipDataset, EventOptions
    from evreid.data.transforms import build_transforms
    from evreid.engine.data import feeds_events
    from evreid.errors import EvreidError
    from evreid.viz.features import activation_maps, overlay_grid

    model, cfg = model_from_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    if args.root:
        cfg.DATASETS.ROOT_DIR = args.root
    dataset = build_dataset_from_cfg(cfg)
    if not 0 <= args.query < len(dataset.query):
        raise EvreidError(f"--query {args.query} out of range 0..{len(dataset.query) - 1}")
    events = EventOptions.from_cfg(cfg) if feeds_events(model, cfg) else None
    clips = ClipDataset([dataset.query[args.query]], cfg.INPUT.SEQ_LEN, "evenly",
                        build_transforms(cfg, is_train=False), events, seed=cfg.SEED)
    item = clips[0]
    frames = item["frames"]
    maps = activation_maps(model, frames, item["events"].float() if events else None)
    print(overlay_grid(frames, maps, args.out, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD))
    return 0


def _run_contact(args: argparse.Namespace) -> int:
    from evreid.viz.contact_sheet import render_contact_sheet

    print(render_contact_sheet(args.root, args.out, num_ids=args.ids, frames=args.frames))
    return 0


def _run_recording(args: argparse.Namespace) -> int:
    """Consecutive windows of a recorded event file, streamed (no frames)."""
    from evreid.events.io import iter_events
    from evreid.viz.events import event_grid, render_event_frame
    from evreid.viz.png import write_png

    images = []
    for window in iter_events(args.recording, args.window_us):
        if len(images) == args.num_frames:
            break
        images.append(render_event_frame(window.events, window.start_us, window.end_us,
                                         args.background))
    image = event_grid([([], images)], scale=args.scale)
    path = write_png(args.out, image, rgb=True)
    print(f"wrote {path} ({image.shape[1]}x{image.shape[0]}, {len(images)} windows of "
          f"{args.window_us} us from {args.recording})")
    return 0


def _run_events(args: argparse.Namespace) -> int:
    import numpy as np

    from evreid.errors import EvreidError
    from evreid.events.checks import align_time_base
    from evreid.events.frames import read_frames
    from evreid.events.io import read_events_with_meta
    from evreid.events.simulator import SimulatorConfig, frame_timestamps_us, simulate
    from evreid.viz.events import event_grid, render_event_frame, tracklet_panel
    from evreid.viz.png import write_png

    if args.num_frames < 1 or args.stride < 1 or args.start < 0:
        raise EvreidError("--num-frames and --stride must be >= 1, --start >= 0")
    if args.recording:
        return _run_recording(args)
    config = SimulatorConfig.preset(args.preset)
    rows, info = [], []
    for name, paths, fps, source, seed in _tracklet_rows(args):
        if not paths:       # an event-only tracklet (eventreid): its windows, no frames
            from evreid.events.representation import frame_windows

            ev, meta = read_events_with_meta(source)
            windows = frame_windows(np.asarray(meta["frame_timestamps_us"]),
                                    int(meta.get("first_window_us", 0)))[:args.num_frames]
            images = [render_event_frame(ev, int(a), int(b), args.background)
                      for a, b in windows]
            rows.append(([], images))
            info.append({"tracklet": name, "events": str(source), "num_events": len(ev)})
            continue
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
            # a recording whose clock does not start with the frames drew blank rows
            ev = align_time_base(ev, times, int(meta.get("first_window_us", 0)), str(source),
                                 args.align_time, "pass --align-time")
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
    path = write_png(args.out, image, rgb=True)
    summary = {"out": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
               "bytes": path.stat().st_size, "tracklets": info}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path} ({image.shape[1]}x{image.shape[0]}, {summary['bytes']:,} bytes)")
    return 0
