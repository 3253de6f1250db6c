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
    batch = {"frames": torch.cat([it["frames"] for it in items]),
             "clip_counts": torch.tensor([it["frames"].shape[0] for it in items])}
    if "events" in items[0]:
        batch["events"] = torch.cat([it["events"] for it in items])
    for key in ("pid", "camid", "index"):
        batch[key] = torch.tensor([it[key] for it in items])
    return batch


def feeds_events(model: torch.nn.Module, cfg) -> bool:
    """Whether the loaders give this model event tensors: it takes them and the
    config enables them."""
    return bool(getattr(model, "uses_events", True)) and cfg.EVENTS.ENABLED


def event_options(cfg, uses_events: bool) -> EventOptions | None:
    return EventOptions.from_cfg(cfg) if uses_events else None


def build_train_loader(cfg, dataset: VideoDataset, uses_events: bool,
                       info: DistInfo = SINGLE_PROCESS) -> torch.utils.data.DataLoader:
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
                        seed=cfg.SEED)
    sampler = RandomIdentitySampler([t.pid for t in dataset.train], p_per_rank, k,
                                    seed=cfg.SEED, rank=info.rank, world_size=info.world_size)
    return torch.utils.data.DataLoader(
        clips, batch_size=p_per_rank * k, sampler=sampler, drop_last=True,
        num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=collate_clips,
        persistent_workers=False)


def build_test_loader(cfg, tracklets, uses_events: bool) -> torch.utils.data.DataLoader:
    clips = ClipDataset(tracklets, cfg.INPUT.SEQ_LEN, cfg.TEST.SAMPLER,
                        build_transforms(cfg, is_train=False), event_options(cfg, uses_events),
                        seed=cfg.SEED, max_clips=cfg.TEST.DENSE_MAX_CLIPS)
    batch = 1 if clips.sampler == "dense" else cfg.TEST.IMS_PER_BATCH
    return torch.utils.data.DataLoader(clips, batch_size=batch, shuffle=False,
                                       num_workers=cfg.DATALOADER.NUM_WORKERS,
                                       collate_fn=collate_clips)
