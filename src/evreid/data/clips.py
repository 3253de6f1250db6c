"""Torch datasets of clips: frames and their event windows at the same indices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def read_bytes(path: str) -> np.ndarray:
    """A file's bytes as uint8 (read once, decoded as often as needed)."""
    try:
        with open(path, "rb") as handle:
            return np.frombuffer(handle.read(), np.uint8)
    except OSError as exc:
        raise EvreidError(f"cannot read image {path} ({exc.strerror or exc})") from None


def decode_image(data: np.ndarray, path: str) -> np.ndarray:
    """``read_image`` of a file's bytes (the same decoder, the same pixels)."""
    import cv2

    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise EvreidError(f"cannot read image {path} (missing, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(paths: Sequence[str], data: Sequence[np.ndarray] | None = None) -> torch.Tensor:
    """[N, 3, H, W] float in [0, 1]; frames of another size are resized to the first's.
    ``data``: the files' bytes when already read (:func:`read_bytes`)."""
    import cv2

    images = []
    for i, path in enumerate(paths):
        image = read_image(path) if data is None else decode_image(data[i], path)
        if images and image.shape != images[0].shape:
            image = cv2.resize(image, (images[0].shape[1], images[0].shape[0]),
                               interpolation=cv2.INTER_LINEAR)
        images.append(image)
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return stacked.float().div_(255.0)


#: compact dtypes the loader may ship event counts in (the model converts on device)
COMPACT_DTYPES = {"uint8": torch.uint8, "int16": torch.int16, "float32": torch.float32}
EVENT_SOURCES = ("store", "simulate")


@dataclass(frozen=True)
class EventOptions:
    """How a tracklet's events become tensors (``EVENTS.*`` in the config).

    ``source``: ``store`` reads each tracklet's event file (a ``.evs`` store reads
    only the clip's windows); ``simulate`` computes the windows from the frames
    (:mod:`evreid.events.onthefly`; ``simulator`` preset and ``sim_seed`` as for
    ``evreid simulate``; ``thresholds`` (``pool`` or ``simulator``) and
    ``start_states`` (``drawn`` or ``anchored``): see :mod:`evreid.events.onthefly`).
    ``dtype``: counts travel as ``uint8`` / ``int16`` (values above the range
    saturate and are counted in ``events_saturated``, never wrapped) or
    ``float32``; voxels and resized events are float32.
    """

    representation: str = "count"
    bins: int = 3
    source: str = "store"
    dtype: str = "uint8"
    simulator: str = "default"
    sim_seed: int = 0
    warmup: int = 1
    thresholds: str = "pool"
    start_states: str = "drawn"
    scale_to_frames: bool = False     # evreid.events.checks
    align_time: bool = False

    def __post_init__(self) -> None:
        from evreid.events.onthefly import START_STATES, THRESHOLD_SOURCES

        for key, value, choices in (("SOURCE", self.source, EVENT_SOURCES),
                                    ("DTYPE", self.dtype, tuple(COMPACT_DTYPES)),
                                    ("THRESHOLDS", self.thresholds, THRESHOLD_SOURCES),
                                    ("START_STATES", self.start_states, START_STATES)):
            if value not in choices:
                raise EvreidError(f"EVENTS.{key} must be one of {', '.join(choices)}, got "
                                  f"{value!r}")
        if self.representation not in ("count", "voxel"):
            raise EvreidError(f"EVENTS.REPRESENTATION must be count or voxel, got "
                              f"{self.representation!r}")
        if int(self.bins) < 1:
            raise EvreidError(f"EVENTS.BINS must be >= 1, got {self.bins}")
        if int(self.warmup) < 0:
            raise EvreidError(f"EVENTS.WARMUP_WINDOWS must be >= 0, got {self.warmup}")

    @classmethod
    def from_cfg(cls, cfg) -> EventOptions | None:
        if not cfg.EVENTS.ENABLED:
            return None
        ev = cfg.EVENTS
        return cls(representation=ev.REPRESENTATION, bins=ev.BINS,
                   source=ev.get("SOURCE", "store"), dtype=ev.get("DTYPE", "uint8"),
                   simulator=ev.get("SIMULATOR", "default"), sim_seed=ev.get("SIM_SEED", 0),
                   warmup=ev.get("WARMUP_WINDOWS", 1),
                   thresholds=ev.get("THRESHOLDS", "pool"),
                   start_states=ev.get("START_STATES", "drawn"),
                   scale_to_frames=ev.get("SCALE_TO_FRAMES", False),
                   align_time=ev.get("ALIGN_TIME", False))


def compact_counts(counts: np.ndarray, dtype: str) -> tuple[torch.Tensor, int]:
    """Counts as ``dtype``, saturating at its maximum; returns (tensor, saturated cells)."""
    target = COMPACT_DTYPES[dtype]
    if target == torch.float32:
        return torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32)), 0
    top = int(torch.iinfo(target).max)
    saturated = int(np.count_nonzero(counts > top))
    if saturated:
        counts = np.minimum(counts, top)
    return torch.from_numpy(np.ascontiguousarray(counts).astype(
        np.uint8 if dtype == "uint8" else np.int16)), saturated


def _mat_frame(path: Path, prev: Path | None, sensor: tuple[int, int]):
    """Events and window (start, end] of one SDCL per-frame ``.mat`` file; the start
    comes from ``start_timestamp`` or else from the previous file's end."""
    from evreid.events.io import read_mat_frame

    frame = read_mat_frame(path, sensor)
    ev = frame.events
    end = frame.end if frame.end is not None else (int(ev.t[-1]) if len(ev) else 0)
    if frame.start is not None:
        start = frame.start
    elif prev is not None:
        _, (_, start) = _mat_frame(prev, None, sensor)
    else:
        start = int(ev.t[0]) - 1 if len(ev) else end
    return ev, (start, max(start, end))


def read_mat_windows(folder: str, indices: np.ndarray, num_frames: int, bins: int,
                     representation: str) -> np.ndarray:
    """Bins of the chosen frames of an SDCL per-frame ``.mat`` folder, reading only
    their files (file k = frame k in numeric order; sensor as ``read_mat_folder``)."""
    from evreid.events.io import mat_folder_files
    from evreid.events.representation import to_count_frames, to_voxel

    files, sensor = mat_folder_files(folder)
    if len(files) != num_frames:
        raise EvreidError(f"{folder}: {len(files)} per-frame .mat files for a tracklet of "
                          f"{num_frames} frames")
    fn = to_count_frames if representation == "count" else to_voxel
    out = np.zeros((len(indices), bins, 2, *sensor),
                   np.float32 if representation == "voxel" else np.int32)
    for i, k in enumerate(indices):
        k = int(k)
        ev, (start, end) = _mat_frame(files[k], files[k - 1] if k else None, sensor)
        grid = fn(ev, start, end, bins, sensor[0], sensor[1], "split")
        out[i] = grid if representation == "voxel" else np.rint(grid)
    return out


class ClipDataset(torch.utils.data.Dataset):
    """Item = one tracklet turned into clips.

    ``__getitem__`` takes an index, or the ``(index, draw_seed)`` pairs that
    :class:`RandomIdentitySampler` yields. Returns ``frames`` [C, T, 3, H, W]
    (C = 1 except for the ``dense`` sampler), ``events`` [C, T, bins, 2, H, W]
    when event options are given (compact integer counts, see
    :class:`EventOptions`) with ``events_saturated``, ``pid``, ``camid`` and
    ``index``.
    """

    def __init__(self, tracklets: Sequence[Tracklet], seq_len: int, sampler: str,
                 transform: Callable | None = None, events: EventOptions | None = None,
                 seed: int = 0, max_clips: int = 32, frames: bool = True) -> None:
        if not frames and events is None:
            raise EvreidError("a clip needs frames or events (frames=False without events)")
        self.frames = frames
        self.tracklets = list(tracklets)
        frameless = [t.key for t in self.tracklets if frames and not t.frames]
        if frameless:   # event-only datasets (a real event camera, no video)
            raise EvreidError(
                f"{len(frameless)} tracklets have no frame images (first: {frameless[0]}: an "
                f"event-only dataset); use a model without frames (MODEL.ARCH events_only)")
        self.seq_len = seq_len
        self.sampler = normalize_sampler_name(sampler)
        self.transform = transform
        self.events = events
        self.seed = seed
        self.max_clips = max_clips
        self._onthefly = None
        if events is not None and events.source == "simulate":
            from evreid.events.onthefly import OnTheFlyEvents
            from evreid.events.simulator import SimulatorConfig

            self._onthefly = OnTheFlyEvents(SimulatorConfig.preset(events.simulator),
                                            events.sim_seed, thresholds=events.thresholds,
                                            start_states=events.start_states)
        elif events is not None:
            missing = [t.key or t.frames[0] for t in self.tracklets if t.events is None]
            if missing:
                raise EvreidError(
                    f"{len(missing)} tracklets have no events (first: {missing[0]}); "
                    f"simulate them with `evreid simulate`, set EVENTS.SOURCE simulate, or "
                    f"set EVENTS.ENABLED False")

    def __len__(self) -> int:
        return len(self.tracklets)

    def _resize_target(self) -> tuple[int, int] | None:
        """(H, W) the transform resizes to, if it has a Resize step (else None)."""
        for step in getattr(self.transform, "transforms", []):
            if hasattr(step, "height") and hasattr(step, "width"):
                return int(step.height), int(step.width)
        return None

    def event_bins(self, tracklet: Tracklet, indices: np.ndarray,
                   draw_seed: int = 0) -> np.ndarray:
        """[len(indices), bins, 2, H, W] int32 counts (float32 voxels) of the windows."""
        return self._event_grid(tracklet, indices, draw_seed, np.int32)[0]

    def _event_grid(self, tracklet: Tracklet, indices: np.ndarray, draw_seed: int,
                    dtype: Any, data: dict[int, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, int]:
        """The windows' bins with counts in ``dtype`` (saturating) and the number of
        events that found their count cell full. ``data``: frame index -> the file's
        bytes, for frames already read (on the fly)."""
        opts = self.events
        if self._onthefly is not None:
            from evreid.events.cache import tracklet_seed
            from evreid.events.onthefly import read_luma

            need = self._onthefly.needed_frames(indices, opts.warmup).tolist()
            paths = [tracklet.frames[i] for i in need]
            luma = dict(zip(need, read_luma(paths, None if data is None else
                                            [data[i] for i in need]), strict=True))
            rng = np.random.default_rng([self.seed, int(draw_seed), 0x0E7E])
            seed = tracklet_seed(opts.sim_seed, tracklet.key or tracklet.frames[0])
            grid, _, saturated = self._onthefly.bins_from_luma(
                luma, indices, tracklet.fps, opts.bins, opts.representation, seed, rng,
                opts.warmup, dtype)
            return grid, saturated
        if tracklet.event_frames:     # rendered event images (EvReID): image-like, float
            from evreid.events.images import event_image_bins

            return event_image_bins([tracklet.event_frames[int(i)] for i in indices],
                                    opts.bins), 0
        source = str(tracklet.events)
        if source.endswith(".evs"):
            from evreid.events.store import open_store

            store = open_store(source)
            if store.num_frames != len(tracklet):
                raise EvreidError(f"{source}: store holds {store.num_frames} frames, the "
                                  f"tracklet has {len(tracklet)} (stale cache? re-run "
                                  f"evreid simulate)")
            return store.bin_frames(indices, opts.bins, opts.representation, dtype)
        if Path(source).is_dir():
            grid = read_mat_windows(source, indices, len(tracklet), opts.bins,
                                    opts.representation)
        else:
            from evreid.events import load_tracklet_events
            from evreid.events.checks import check_tracklet_events

            whole = check_tracklet_events(
                load_tracklet_events(source, len(tracklet), tracklet.fps), tracklet, opts)
            grid = whole.tensor(indices, opts.bins, opts.representation)
        if opts.representation == "voxel":
            return grid, 0
        tensor, saturated = compact_counts(np.rint(grid).astype(np.int64),
                                           np.dtype(dtype).name)
        return tensor.numpy(), saturated

    def _event_tensor(self, tracklet: Tracklet, indices: np.ndarray, draw_seed: int = 0,
                      data: dict[int, np.ndarray] | None = None) -> tuple[torch.Tensor, int]:
        dtype = {"uint8": np.uint8, "int16": np.int16, "float32": np.int32}[self.events.dtype]
        grid, saturated = self._event_grid(tracklet, indices, draw_seed, dtype, data)
        if grid.dtype.kind == "f" or self.events.dtype == "float32":
            return torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32)), saturated
        return torch.from_numpy(grid), saturated

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, draw_seed = item if isinstance(item, tuple) else (item, item)
        tracklet = self.tracklets[index]
        rng = np.random.default_rng([self.seed, draw_seed])
        clips = sample_clip(len(tracklet), self.seq_len, self.sampler, rng, self.max_clips)
        unique, inverse = np.unique(clips.ravel(), return_inverse=True)
        identity = bool(np.array_equal(inverse, np.arange(len(inverse))))  # skip a copy
        sample: dict = {}
        data = None
        if self.frames and self._onthefly is not None:
            # frames and events read the same files: each file's bytes once
            data = {k: read_bytes(tracklet.frames[k])
                    for k in self._onthefly.needed_frames(unique, self.events.warmup).tolist()}
        if self.frames:
            sample["frames"] = read_frames([tracklet.frames[i] for i in unique],
                                           None if data is None else [data[i] for i in unique])
            if not identity:
                sample["frames"] = sample["frames"][torch.from_numpy(inverse)]
        saturated = 0
        if self.events is not None:
            events, saturated = self._event_tensor(tracklet, unique, draw_seed, data)
            if not identity:                      # repeated or reordered frames
                events = events[torch.from_numpy(inverse)]
            size = self._resize_target()
            if size is not None and tuple(events.shape[-2:]) != size \
                    and events.dtype != torch.float32:
                events = events.float()       # an area resize makes fractional counts
            sample["events"] = events
        if self.transform is not None:
            # one random draw per tracklet: all clips of it are augmented alike
            sample = self.transform(sample, rng)
        num_clips = clips.shape[0]
        out = {k: v.reshape(num_clips, self.seq_len, *v.shape[1:]) for k, v in sample.items()}
        if self.events is not None:
            out["events_saturated"] = saturated
        out.update(pid=tracklet.pid, camid=tracklet.camid, index=index)
        return out
