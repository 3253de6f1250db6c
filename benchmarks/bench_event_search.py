"""How far the sparse event mapping must search for its 9 nearest key events.

On real MARS crops with simulated events (``evreid simulate --dataset mars``),
8-frame clips with 3 bins per frame go through a freshly initialised event
branch (configs' MODEL.SNN); its key events (where the last spiking layer
fired, per step, at stride 4) are searched with a large radius, and for
every Manhattan radius r the fraction of key positions whose 9 nearest key
events all lie within r is reported. MODEL.DEFORM.RADIUS is chosen from it
(>= 99 %).

    python benchmarks/bench_event_search.py --root ../shared/fixtures/mini_mars \\
        --events /tmp/ev_mm [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from evreid.config import get_cfg
from evreid.data import build_dataset
from evreid.events import load_tracklet_events
from evreid.models.deform import NearestEvents
from evreid.models.event_branch import build_event_branch


def clips(root: str, events_dir: str, seq_len: int, bins: int, per_tracklet: int):
    data = build_dataset("mars_event", root, events_dir=events_dir)
    for tracklet in [*data.train, *data.query, *data.gallery]:
        source = load_tracklet_events(tracklet.events, len(tracklet), tracklet.fps)
        for c in range(min(per_tracklet, len(tracklet) // seq_len)):
            idx = np.arange(c * seq_len, (c + 1) * seq_len)
            yield torch.from_numpy(np.ascontiguousarray(source.tensor(idx, bins, "count"),
                                                        dtype=np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--events", required=True, help="events folder of `evreid simulate`")
    ap.add_argument("--max-radius", type=int, default=12)
    ap.add_argument("--per-tracklet", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    cfg = get_cfg()
    bins = int(cfg.EVENTS.BINS)
    branch = build_event_branch(cfg.MODEL)
    search = NearestEvents(args.max_radius)
    acc = {mode: {"reach": [], "keys": 0, "positions": 0} for mode in ("train", "eval")}
    event_px = pixels = 0
    with torch.no_grad():
        for ev in clips(args.root, args.events, 8, bins, args.per_tracklet):
            event_px += int((ev.abs().sum(2) > 0).sum())
            pixels += ev[:, :, 0].numel()
            for mode, a in acc.items():
                branch.train(mode == "train")
                spikes = branch.encoder.forward_spikes(ev.unsqueeze(0))      # [S, 1, C, h, w]
                active = spikes.amax(2).flatten(0, 1) > 0                    # [S, h, w]
                disp, found = search(active)
                ninth = disp[..., 8, :].abs().sum(-1)                        # distance of the 9th
                ninth = torch.where(found[..., 8], ninth, args.max_radius + 1)
                a["reach"].append(ninth[active])
                a["keys"] += int(active.sum())
                a["positions"] += active.numel()
    results = {}
    for mode, a in acc.items():
        reach_all = torch.cat(a["reach"])
        within = {r: float((reach_all <= r).float().mean()) for r in range(2, args.max_radius + 1)}
        results[mode] = {"key_fraction": a["keys"] / a["positions"],
                         "event_pixel_fraction_per_bin": event_px / pixels,
                         "key_positions": a["keys"],
                         "all_9_within_radius": within,
                         "min_radius_99": min((r for r, f in within.items() if f >= 0.99),
                                              default=None)}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for mode, res in results.items():
            print(f"{mode}: key events {res['key_fraction']:.3%} of stride-4 positions per step, "
                  f"event pixels {res['event_pixel_fraction_per_bin']:.3%} per bin; "
                  f"smallest radius with all 9 found for >= 99 %: {res['min_radius_99']}")
            print("  " + ", ".join(f"r{r}: {f:.4f}" for r, f in res["all_9_within_radius"].items()))


if __name__ == "__main__":
    main()
