"""ATen operations of one training step (forward + backward), per architecture.

A proxy for launch overhead: on a GPU each non-view ATen call is at least
one kernel launch, so a step made of thousands of small calls is bound by
launches, not FLOPs. A TorchDispatchMode counts every call below autograd;
view and metadata calls (``func.is_view``: view, reshape of contiguous
memory, permute, detach, ...) are left out, custom operators (e.g.
``evreid::lif_multistep``) count as one each.

    python benchmarks/bench_ops.py                        # sdcl and frames_only, table
    python benchmarks/bench_ops.py --json --archs sdcl frames_only events_only
    python benchmarks/bench_ops.py --top 15                # the most frequent ops too
    python benchmarks/bench_ops.py --lif reference         # LIF as the per-step Python loops

Setting (issue 17): the sdcl_paper preset (ResNet-50, last stride 1,
256x128, T = 8, 3 bins), 625 classes, batch 2 clips, train mode, loss = sum
of squared means of every logit and feature level, Bernoulli events at
--event-density. Counts do not depend on the data (static shapes), only on
the shapes and the code path.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from evreid.config import load_config, preset_path
from evreid.models import MODELS, build_model

ROOT = Path(__file__).resolve().parents[1]
PAPER = preset_path("sdcl_paper")


class OpCounter(TorchDispatchMode):
    """Counts non-view ATen (and custom) operator calls by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_step(arch: str, config: Path, batch: int, num_classes: int, density: float,
               opts: list[str]) -> dict:
    cfg = load_config(config, ["MODEL.ARCH", arch, *opts])
    torch.manual_seed(0)
    model = build_model(cfg, num_classes).train()
    h, w = cfg.INPUT.SIZE_TRAIN
    T, bins = cfg.INPUT.SEQ_LEN, cfg.EVENTS.BINS
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(batch, T, 3, h, w, generator=g)
    events = ((torch.rand(batch, T, bins, 2, h, w, generator=g) < density).float()
              if model.uses_events else None)
    start = time.perf_counter()
    with OpCounter() as fwd:
        logits, feats = model(frames, events)
        loss = sum(t.float().square().mean() for t in (*logits, *feats))
    with OpCounter() as bwd:
        loss.backward()
    return {"arch": arch, "forward": sum(fwd.counts.values()),
            "backward": sum(bwd.counts.values()),
            "total": sum(fwd.counts.values()) + sum(bwd.counts.values()),
            "by_op_forward": dict(fwd.counts.most_common()),
            "by_op_backward": dict(bwd.counts.most_common()),
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=["sdcl", "frames_only"],
                    choices=sorted(MODELS))
    ap.add_argument("--config", type=Path, default=PAPER)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--num-classes", type=int, default=625)
    ap.add_argument("--event-density", type=float, default=0.02)
    ap.add_argument("--top", type=int, default=0, help="also list the N most frequent ops")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--lif", choices=["operator", "reference"], default="operator",
                    help="reference: the LIF recurrence as the autograd.Function with Python "
                         "loops (the implementation before the operator), for comparison")
    ap.add_argument("opts", nargs="*", help="config overrides KEY VALUE ...")
    args = ap.parse_args()
    if args.lif == "reference":
        from evreid.models.snn import LIFNeuron

        LIFNeuron.forward = LIFNeuron.forward_reference  # type: ignore[method-assign]
    rows = [count_step(a, args.config, args.batch, args.num_classes, args.event_density,
                       args.opts) for a in args.archs]
    base = next((r["total"] for r in rows if r["arch"] == "frames_only"), None)
    for r in rows:
        r["ratio_to_frames_only"] = round(r["total"] / base, 3) if base else None
    if args.json:
        print(json.dumps({"config": str(args.config), "batch": args.batch, "lif": args.lif,
                          "num_classes": args.num_classes, "torch": torch.__version__,
                          "rows": rows}, indent=2))
        return
    print("| arch | forward | backward | total | / frames_only |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        ratio = f"{r['ratio_to_frames_only']:.2f}x" if r["ratio_to_frames_only"] else "-"
        print(f"| {r['arch']} | {r['forward']:,} | {r['backward']:,} | {r['total']:,} | "
              f"{ratio} |")
    if args.top:
        for r in rows:
            merged = collections.Counter(r["by_op_forward"]) + collections.Counter(
                r["by_op_backward"])
            top = ", ".join(f"{k} {v}" for k, v in merged.most_common(args.top))
            print(f"\n{r['arch']}: {top}")


if __name__ == "__main__":
    main()
