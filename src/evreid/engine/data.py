"""Loaders for training and testing, built from the config and a VideoDataset.

The engine receives a VideoDataset and never knows which dataset it is.
"""

from __future__ import annotations

import torch

from evreid.data.clips import ClipDataset, EventOptions
from evreid.data.datasets.base import VideoDataset
from evreid.data.sampling import RandomIdentitySampler
from evreid.data.transforms import build_transforms
from evreid.engine.distributed import SINGLE_PROCESS, DistInfo
from evreid.errors import EvreidError


def collate_clips(items: list[dict]) -> dict:
    """Concatenate the clips of all items: ``frames`` [sum C, T, ...] plus
    ``clip_counts`` so per-tracklet features can be averaged afterwards."""
    ref = "frames" if "frames" in items[0] else "events"    # event-only clips: no frames
    batch = {"clip_counts": torch.tensor([it[ref].shape[0] for it in items])}
    for key in ("frames", "events"):
        if key in items[0]:
            batch[key] = torch.cat([it[key] for it in items])
    for key in ("pid", "camid", "index"):
        batch[key] = torch.tensor([it[key] for it in items])
    if "events_saturated" in items[0]:
        batch["events_saturated"] = torch.tensor(sum(it["events_saturated"] for it in items))
    return batch


def batch_to_device(batch: dict, device: torch.device, keys=("frames", "events")) -> dict:
    """``keys`` of a batch on ``device`` (non-blocking: the loader pins memory on CUDA);
    compact integer event counts become float32 there, after the copy, so the host
    ships 1 byte per count instead of 4."""
    out = {}
    for key in keys:
        if key in batch:
            value = batch[key].to(device, non_blocking=True)
            out[key] = value.float() if not value.is_floating_point() else value
    return out


def loader_options(cfg, device_type: str | None = None) -> dict:
    """DataLoader keyword arguments from ``DATALOADER.*``: workers, prefetching,
    persistent workers, and pinned memory (``auto``: when the model is on CUDA)."""
    dl = cfg.DATALOADER
    workers = int(dl.NUM_WORKERS)
    if workers < 0:
        raise EvreidError(f"DATALOADER.NUM_WORKERS must be >= 0, got {workers}")
    pin = dl.get("PIN_MEMORY", "auto")
    if isinstance(pin, str):
        if pin not in ("auto", "true", "false"):
            raise EvreidError(f"DATALOADER.PIN_MEMORY must be auto, true or false; got {pin!r}")
        if pin == "auto":
            if device_type is None:
                device = cfg.MODEL.DEVICE
                device_type = "cuda" if device == "auto" and torch.cuda.is_available() \
                    else str(device).split(":")[0]
            pin = device_type == "cuda" and torch.cuda.is_available()
        else:
            pin = pin == "true"
    options = {"num_workers": workers, "pin_memory": bool(pin)}
    if workers > 0:
        prefetch = int(dl.get("PREFETCH_FACTOR", 4))
        if prefetch < 1:
            raise EvreidError(f"DATALOADER.PREFETCH_FACTOR must be >= 1, got {prefetch}")
        options["prefetch_factor"] = prefetch
        options["persistent_workers"] = bool(dl.get("PERSISTENT_WORKERS", True))
    return options


def feeds_events(model: torch.nn.Module, cfg) -> bool:
    """Whether the loaders give this model event tensors: it takes them and the
    config enables them."""
    return bool(getattr(model, "uses_events", True)) and cfg.EVENTS.ENABLED


def feeds_frames(model: torch.nn.Module) -> bool:
    """Whether the loaders read frame images for this model (not for ``events_only``)."""
    return bool(getattr(model, "uses_frames", True))


def event_options(cfg, uses_events: bool) -> EventOptions | None:
    return EventOptions.from_cfg(cfg) if uses_events else None


def build_train_loader(cfg, dataset: VideoDataset, uses_events: bool,
                       info: DistInfo = SINGLE_PROCESS,
                       uses_frames: bool = True) -> torch.utils.data.DataLoader:
    k = cfg.DATALOADER.NUM_INSTANCE
    global_batch = cfg.DATALOADER.IMS_PER_BATCH
    if global_batch % (k * info.world_size):
        raise EvreidError(f"DATALOADER.IMS_PER_BATCH ({global_batch}) must be a multiple of "
                          f"DATALOADER.NUM_INSTANCE ({k}) x processes ({info.world_size})")
    p_per_rank = global_batch // (k * info.world_size)
    if p_per_rank < 2:
        raise EvreidError(
            f"DATALOADER.IMS_PER_BATCH {global_batch} / NUM_INSTANCE {k} / {info.world_size} "
            f"process(es) leaves {p_per_rank} identity per batch; the triplet loss needs >= 2")
    clips = ClipDataset(dataset.train, cfg.INPUT.SEQ_LEN, cfg.DATALOADER.TRAIN_SAMPLER,
                        build_transforms(cfg, is_train=True), event_options(cfg, uses_events),
                        seed=cfg.SEED, frames=uses_frames)
    sampler = RandomIdentitySampler([t.pid for t in dataset.train], p_per_rank, k,
                                    seed=cfg.SEED, rank=info.rank, world_size=info.world_size)
    return torch.utils.data.DataLoader(
        clips, batch_size=p_per_rank * k, sampler=sampler, drop_last=True,
        collate_fn=collate_clips, **loader_options(cfg))


def build_test_loader(cfg, tracklets, uses_events: bool,
                      uses_frames: bool = True) -> torch.utils.data.DataLoader:
    clips = ClipDataset(tracklets, cfg.INPUT.SEQ_LEN, cfg.TEST.SAMPLER,
                        build_transforms(cfg, is_train=False), event_options(cfg, uses_events),
                        seed=cfg.SEED, max_clips=cfg.TEST.DENSE_MAX_CLIPS, frames=uses_frames)
    batch = 1 if clips.sampler == "dense" else cfg.TEST.IMS_PER_BATCH
    options = loader_options(cfg)
    options["persistent_workers"] = False     # one pass per evaluation
    return torch.utils.data.DataLoader(clips, batch_size=batch, shuffle=False,
                                       collate_fn=collate_clips, **options)
