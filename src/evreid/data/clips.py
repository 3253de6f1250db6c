"""Torch datasets of clips: frames and their event windows at the same indices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from evreid.data.datasets.base import Tracklet
from evreid.data.sampling import normalize_sampler_name, sample_clip
from evreid.errors import EvreidError


def read_image(path: str) -> np.ndarray:
    """An RGB uint8 [H, W, 3] image, or an EvreidError naming the file."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise EvreidError(f"cannot read image {path} (missing, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(paths: Sequence[str]) -> torch.Tensor:
    """[N, 3, H, W] float in [0, 1]; frames of another size are resized to the first's."""
    import cv2

    images = []
    for path in paths:
        image = read_image(path)
        if images and image.shape != images[0].shape:
            image = cv2.resize(image, (images[0].shape[1], images[0].shape[0]),
                               interpolation=cv2.INTER_LINEAR)
        images.append(image)
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return stacked.float().div_(255.0)


@dataclass(frozen=True)
class EventOptions:
    """How a tracklet's events become tensors (``EVENTS.*`` in the config)."""

    representation: str = "count"
    bins: int = 3

    @classmethod
    def from_cfg(cls, cfg) -> EventOptions | None:
        if not cfg.EVENTS.ENABLED:
            return None
        return cls(representation=cfg.EVENTS.REPRESENTATION, bins=cfg.EVENTS.BINS)


class ClipDataset(torch.utils.data.Dataset):
    """Item = one tracklet turned into clips.

    ``__getitem__`` takes an index, or the ``(index, draw_seed)`` pairs that
    :class:`RandomIdentitySampler` yields. Returns ``frames`` [C, T, 3, H, W]
    (C = 1 except for the ``dense`` sampler), ``events`` [C, T, bins, 2, H, W]
    when event options are given, ``pid``, ``camid`` and ``index``.
    """

    def __init__(self, tracklets: Sequence[Tracklet], seq_len: int, sampler: str,
                 transform: Callable | None = None, events: EventOptions | None = None,
                 seed: int = 0, max_clips: int = 32) -> None:
        self.tracklets = list(tracklets)
        self.seq_len = seq_len
        self.sampler = normalize_sampler_name(sampler)
        self.transform = transform
        self.events = events
        self.seed = seed
        self.max_clips = max_clips
        if events is not None:
            missing = [t.key or t.frames[0] for t in self.tracklets if t.events is None]
            if missing:
                raise EvreidError(
                    f"{len(missing)} tracklets have no events (first: {missing[0]}); "
                    f"simulate them with `evreid simulate` or set EVENTS.ENABLED False")

    def __len__(self) -> int:
        return len(self.tracklets)

    def _event_tensor(self, tracklet: Tracklet, indices: np.ndarray) -> torch.Tensor:
        from evreid.events import load_tracklet_events

        source = load_tracklet_events(tracklet.events, len(tracklet), tracklet.fps)
        tensor = source.tensor(indices, self.events.bins, self.events.representation)
        return torch.from_numpy(np.ascontiguousarray(tensor, dtype=np.float32))

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, draw_seed = item if isinstance(item, tuple) else (item, item)
        tracklet = self.tracklets[index]
        rng = np.random.default_rng([self.seed, draw_seed])
        clips = sample_clip(len(tracklet), self.seq_len, self.sampler, rng, self.max_clips)
        unique, inverse = np.unique(clips.ravel(), return_inverse=True)
        frames = read_frames([tracklet.frames[i] for i in unique])[inverse]
        sample: dict = {"frames": frames}
        if self.events is not None:
            sample["events"] = self._event_tensor(tracklet, unique)[inverse]
        if self.transform is not None:
            # one random draw per tracklet: all clips of it are augmented alike
            sample = self.transform(sample, rng)
        num_clips = clips.shape[0]
        out = {k: v.reshape(num_clips, self.seq_len, *v.shape[1:]) for k, v in sample.items()}
        out.update(pid=tracklet.pid, camid=tracklet.camid, index=index)
        return out
