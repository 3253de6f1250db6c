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


def _tracklets(args: argparse.Namespace) -> list:
    """The tracklets to draw: a folder of frames, or some of a dataset's."""
    from evreid.errors import EvreidError
    from evreid.viz.events import dataset_tracklets, folder_tracklet

    if bool(args.frames) == bool(args.dataset):
        raise EvreidError("give exactly one source: --frames DIR, --dataset NAME --root DIR "
                          "or --recording FILE")
    if args.frames:
        return [folder_tracklet(args.frames, args.fps, args.events, args.seed)]
    if not args.root:
        raise EvreidError("--dataset needs --root DIR")
    return dataset_tracklets(args.dataset, args.root, args.split, args.key, args.tracklets,
                             args.seed)


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
    from evreid.viz.ranking import ranked_list_of_run

    print(ranked_list_of_run(args.run, args.out, num_queries=args.queries, topk=args.topk,
                             frames_per_tracklet=args.frames_per_tracklet))
    return 0


def _run_features(args: argparse.Namespace) -> int:
    from evreid.viz.features import checkpoint_activation_maps

    print(checkpoint_activation_maps(args.checkpoint, args.out, root=args.root,
                                     query=args.query, trust_checkpoint=args.trust_checkpoint))
    return 0


def _run_contact(args: argparse.Namespace) -> int:
    from evreid.viz.contact_sheet import render_contact_sheet

    print(render_contact_sheet(args.root, args.out, num_ids=args.ids, frames=args.frames))
    return 0


def _run_events(args: argparse.Namespace) -> int:
    from evreid.errors import EvreidError
    from evreid.viz.events import recording_picture, tracklet_picture

    if args.num_frames < 1 or args.stride < 1 or args.start < 0:
        raise EvreidError("--num-frames and --stride must be >= 1, --start >= 0")
    if args.recording:
        done = recording_picture(args.recording, args.out, args.window_us, args.num_frames,
                                 args.background, args.scale)
        print(f"wrote {done['out']} ({done['width']}x{done['height']}, {done['windows']} "
              f"windows of {args.window_us} us from {args.recording})")
        return 0
    summary = tracklet_picture(_tracklets(args), args.out, num_frames=args.num_frames,
                               start=args.start, stride=args.stride, preset=args.preset,
                               background=args.background, scale=args.scale,
                               align_time=args.align_time)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {summary['out']} ({summary['width']}x{summary['height']}, "
              f"{summary['bytes']:,} bytes)")
    return 0
