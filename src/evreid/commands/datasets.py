"""Print the statistics of a dataset: identities, tracklets, frames, cameras and
min / median / max tracklet length for train, query and gallery.

examples:
  evreid datasets --dataset mars --root ../shared/fixtures/mini_mars
  evreid datasets --dataset mars --root data/mars --protocol mars_official --json
  evreid datasets --dataset prid2011 --root data --split-id 3 --min-seq-len 27

--root is the dataset folder itself (mars/, prid2011/, ilids-vid/) or the folder
holding it. Layouts: see the README.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True,
                        help="mars, ilidsvid, prid2011, synthetic, or a *_event variant")
    parser.add_argument("--root", required=True, help="dataset folder or its parent")
    parser.add_argument("--split-id", type=int, default=None,
                        help="split of 10-split datasets (default 0)")
    parser.add_argument("--protocol", default=None,
                        help="MARS only: standard (default) or mars_official")
    parser.add_argument("--min-seq-len", type=int, default=None,
                        help="drop shorter tracklets (PRID-2011, iLIDS-VID)")
    parser.add_argument("--events-dir", default=None,
                        help="event cache folder (default <dataset>/events)")
    parser.add_argument("--verify", action="store_true",
                        help="also decode every frame (finds truncated images) and check each "
                             "tracklet's event file against its frames (sensor size, time "
                             "base); every frame file is always checked to exist")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run(args: argparse.Namespace) -> int:
    import json

    from evreid.data import build_dataset
    from evreid.data.verify import verify_dataset

    options = {k: v for k, v in (("split_id", args.split_id), ("protocol", args.protocol),
                                 ("min_seq_len", args.min_seq_len)) if v is not None}
    dataset = build_dataset(args.dataset, args.root, events_dir=args.events_dir, **options)
    checked = verify_dataset(dataset, decode=args.verify)
    if args.json:
        with_events = sum(t.events is not None for split in (dataset.train, dataset.query,
                                                              dataset.gallery) for t in split)
        print(json.dumps({"dataset": dataset.name, "root": dataset.root,
                          "protocol": dataset.protocol, "splits": dataset.summary(),
                          "tracklets_with_events": with_events, "verified": args.verify,
                          **dataset.extra}, indent=2))
    else:
        print(dataset.format_summary())
        if args.verify:
            print(f"verified: {checked['frames']:,} frames of {checked['tracklets']:,} "
                  f"tracklets decode whole; {checked['event_sources']:,} event files match "
                  f"their frames")
    return 0
