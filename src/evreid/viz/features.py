"""Activation maps of the frame branch, the event branch and the fused features,
overlaid on the input frames (the paper's visualisation figure).

The map of a feature tensor is its channel-wise L2 norm per position, scaled
to [0, 1] per clip and up-sampled to the frame size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evreid.viz.png import write_png

# module name on SDCL-family models -> row label
BRANCHES = {"frame_reduce": "frame branch", "event_head": "event branch"}


@torch.no_grad()
def activation_maps(model: torch.nn.Module, frames: torch.Tensor,
                    events: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """{label: [T, H, W] in [0, 1]} for one clip (frames [1, T, 3, H, W])."""
    model.eval()
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for name, label in BRANCHES.items():
        module = getattr(model, name, None)
        if module is not None:
            hooks.append(module.register_forward_hook(
                lambda _m, _i, out, label=label: captured.__setitem__(label, out)))
    try:
        if not hasattr(model, "forward_maps"):
            raise TypeError(f"{type(model).__name__} has no forward_maps(); feature maps "
                            f"need an SDCL-family model")
        captured["fused"] = model.forward_maps(frames, events).flatten(0, 1)
    finally:
        for hook in hooks:
            hook.remove()
    height, width = frames.shape[-2:]
    maps = {}
    for label, feats in captured.items():
        energy = feats.float().pow(2).sum(1, keepdim=True).sqrt()
        energy = F.interpolate(energy, size=(height, width), mode="bilinear",
                               align_corners=False)[:, 0]
        lo, hi = energy.amin(), energy.amax()
        maps[label] = (energy - lo) / (hi - lo).clamp_min(1e-12)
    return maps


def overlay_grid(frames: torch.Tensor, maps: dict[str, torch.Tensor],
                 path: str | os.PathLike, mean=(0.485, 0.456, 0.406),
                 std=(0.229, 0.224, 0.225), alpha: float = 0.5) -> Path:
    """Rows: input frames, then one heat-map overlay per map; columns: time."""
    import cv2

    clip = frames[0].float().cpu() * torch.tensor(std)[:, None, None] + torch.tensor(
        mean)[:, None, None]
    rgb = (clip.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    bgr = rgb[..., ::-1]
    rows = [np.concatenate(list(bgr), axis=1)]
    labels = ["frames"]
    for label, heat in maps.items():
        tiles = []
        for t in range(heat.shape[0]):
            colour = cv2.applyColorMap((heat[t].cpu().numpy() * 255).astype(np.uint8),
                                       cv2.COLORMAP_JET)
            tiles.append(cv2.addWeighted(np.ascontiguousarray(bgr[t]), 1 - alpha, colour,
                                         alpha, 0))
        rows.append(np.concatenate(tiles, axis=1))
        labels.append(label)
    pad = 110
    out = []
    for label, row in zip(labels, rows, strict=True):
        canvas = np.full((row.shape[0], row.shape[1] + pad, 3), 255, dtype=np.uint8)
        canvas[:, pad:] = row
        cv2.putText(canvas, label, (4, row.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        out.append(canvas)
    return write_png(path, np.concatenate(out, axis=0))


def checkpoint_activation_maps(checkpoint: str | os.PathLike, path: str | os.PathLike,
                               root: str | os.PathLike | None = None, query: int = 0,
                               trust_checkpoint: bool = False) -> Path:
    """:func:`overlay_grid` of a checkpoint's activation maps on one query tracklet of
    its config's dataset (``root`` replaces DATASETS.ROOT_DIR)."""
    from evreid.api import model_from_checkpoint
    from evreid.data import build_dataset_from_cfg
    from evreid.data.clips import ClipDataset, EventOptions
    from evreid.data.transforms import build_transforms
    from evreid.engine.data import feeds_events
    from evreid.errors import EvreidError

    model, cfg = model_from_checkpoint(checkpoint, trust=trust_checkpoint)
    if root:
        cfg.DATASETS.ROOT_DIR = str(root)
    dataset = build_dataset_from_cfg(cfg)
    if not 0 <= query < len(dataset.query):
        raise EvreidError(f"--query {query} out of range 0..{len(dataset.query) - 1}")
    events = EventOptions.from_cfg(cfg) if feeds_events(model, cfg) else None
    clips = ClipDataset([dataset.query[query]], cfg.INPUT.SEQ_LEN, "evenly",
                        build_transforms(cfg, is_train=False), events, seed=cfg.SEED)
    item = clips[0]
    frames = item["frames"]
    maps = activation_maps(model, frames, item["events"].float() if events else None)
    return overlay_grid(frames, maps, path, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
