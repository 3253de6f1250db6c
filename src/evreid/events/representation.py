"""Events -> dense tensors a network can eat, and per-frame slicing of a tracklet.

Why here and not in the data pipeline: the same windowing rule must hold for
the simulator's cache, real recordings and the SDCL per-frame ``.mat`` files,
and it must be exact. The rule: the events of frame k are those in
``(t_{k-1}, t_k]``; frame 0 gets the window ``(t_0 - first_window_us, t_0]``
(empty by default, since a simulator emits nothing before its first frame).

Two representations, both float32 ``[bins, 2, H, W]`` (polarity channel 0 = ON,
1 = OFF) or ``[bins, H, W]`` for ``polarity="signed"`` (ON - OFF):

* ``voxel``: bilinear in time. With normalised time
  ``tau = (t - t_start) / (t_end - t_start) * (bins - 1)`` an event adds
  ``1 - frac(tau)`` to bin ``floor(tau)`` and ``frac(tau)`` to the next one (the
  (B-1) normalisation of the event-voxel literature).
* ``count``: ``bins`` equal sub-windows of ``(t_start, t_end]``, each closed on
  the right like the frame windows; values are event counts (the SDCL
  reference used 3 bins of signed counts).

Normalisation (``none`` | ``max`` | ``mean_std``) and clipping are explicit
options; counts are accumulated in float64 and returned as float32, so nothing
wraps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evreid.errors import EvreidError
from evreid.events.types import Events

NORMALIZE = ("none", "max", "mean_std")
REPRESENTATIONS = ("count", "voxel")


def _check_args(ev: Events, t_start_us: int, t_end_us: int, bins: int, height: int,
                width: int, polarity: str, normalize: str) -> None:
    if int(bins) < 1:
        raise EvreidError(f"bins must be >= 1, got {bins}")
    if t_end_us < t_start_us:
        raise EvreidError(f"window end {t_end_us} is before its start {t_start_us}")
    if polarity not in ("split", "signed"):
        raise EvreidError(f"polarity must be 'split' or 'signed', got {polarity!r}")
    if normalize not in NORMALIZE:
        raise EvreidError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    if len(ev) and (int(ev.x.max()) >= width or int(ev.y.max()) >= height):
        raise EvreidError(f"events reach x={int(ev.x.max())}, y={int(ev.y.max())}, outside "
                          f"the requested {width}x{height} (WxH) grid")


def _finish(grid: np.ndarray, normalize: str, clip: float) -> np.ndarray:
    if normalize == "max":
        peak = float(np.abs(grid).max(initial=0.0))
        if peak > 0:
            grid = grid / peak
    elif normalize == "mean_std":
        nz = grid != 0
        if nz.any():
            vals = grid[nz]
            std = float(vals.std())
            grid = np.where(nz, (grid - vals.mean()) / (std if std > 0 else 1.0), 0.0)
    if clip and clip > 0:
        grid = np.clip(grid, -clip, clip)
    return grid.astype(np.float32)


def _accumulate(ev: Events, bin_idx: np.ndarray, weights: np.ndarray | None, bins: int,
                height: int, width: int, polarity: str) -> np.ndarray:
    """Histogram events into [bins, 2, H, W] (split) or [bins, H, W] (signed), float64."""
    plane = height * width
    pix = ev.y.astype(np.int64) * width + ev.x.astype(np.int64)
    w = np.ones(len(ev)) if weights is None else weights
    if polarity == "split":
        chan = (ev.p < 0).astype(np.int64)
        flat = (bin_idx * 2 + chan) * plane + pix
        size = bins * 2 * plane
        return np.bincount(flat, weights=w, minlength=size).reshape(bins, 2, height, width)
    flat = bin_idx * plane + pix
    size = bins * plane
    return np.bincount(flat, weights=w * ev.p, minlength=size).reshape(bins, height, width)


def to_voxel(ev: Events, t_start_us: int, t_end_us: int, bins: int, height: int, width: int,
             polarity: str = "split", normalize: str = "none", clip: float = 0.0) -> np.ndarray:
    """Voxel grid of the events in (t_start_us, t_end_us], bilinear in time.

    Returns float32 ``[bins, 2, H, W]`` for ``polarity="split"`` or
    ``[bins, H, W]`` for ``"signed"``.
    """
    _check_args(ev, t_start_us, t_end_us, bins, height, width, polarity, normalize)
    win = ev.window(t_start_us, t_end_us)
    duration = float(t_end_us - t_start_us)
    if bins == 1 or duration <= 0:
        grid = _accumulate(win, np.zeros(len(win), np.int64), None, bins, height, width,
                           polarity)
        return _finish(grid, normalize, clip)
    tau = (win.t - t_start_us) / duration * (bins - 1)
    lo = np.floor(tau).astype(np.int64)
    frac = tau - lo
    lo = np.minimum(lo, bins - 1)
    hi = np.minimum(lo + 1, bins - 1)
    grid = _accumulate(win, lo, 1.0 - frac, bins, height, width, polarity)
    grid += _accumulate(win, hi, np.where(hi > lo, frac, 0.0), bins, height, width, polarity)
    return _finish(grid, normalize, clip)


def to_count_frames(ev: Events, t_start_us: int, t_end_us: int, bins: int, height: int,
                    width: int, polarity: str = "split", normalize: str = "none",
                    clip: float = 0.0) -> np.ndarray:
    """Event counts in ``bins`` equal sub-windows of (t_start_us, t_end_us].

    Sub-window b is ``(t_start + b*d, t_start + (b+1)*d]`` with d = duration / bins.
    Returns float32 ``[bins, 2, H, W]`` (split) or ``[bins, H, W]`` (signed ON - OFF).
    """
    _check_args(ev, t_start_us, t_end_us, bins, height, width, polarity, normalize)
    win = ev.window(t_start_us, t_end_us)
    duration = t_end_us - t_start_us
    if duration <= 0 or bins == 1:
        idx = np.zeros(len(win), np.int64)
    else:
        # integer arithmetic: ceil((t - t_start) * bins / duration) - 1, exact at edges
        rel = (win.t - t_start_us).astype(np.int64)
        idx = np.clip(-((-rel * bins) // duration) - 1, 0, bins - 1)
    grid = _accumulate(win, idx, None, bins, height, width, polarity)
    return _finish(grid, normalize, clip)


@dataclass(frozen=True)
class TrackletEvents:
    """A tracklet's events with the per-frame split already resolved.

    ``offsets[k]:offsets[k+1]`` indexes the events of frame k and ``windows[k]``
    is its time window ``(start, end]`` used for temporal binning.
    """

    events: Events
    offsets: np.ndarray     # int64 [num_frames + 1]
    windows: np.ndarray     # int64 [num_frames, 2]
    source: str = ""

    @property
    def num_frames(self) -> int:
        return len(self.windows)

    @property
    def height(self) -> int:
        return self.events.height

    @property
    def width(self) -> int:
        return self.events.width

    def frame_events(self, k: int) -> Events:
        if not 0 <= k < self.num_frames:
            raise EvreidError(f"{self.source}: frame {k} out of range 0..{self.num_frames - 1}")
        return self.events[int(self.offsets[k]):int(self.offsets[k + 1])]

    def tensor(self, indices: Sequence[int], bins: int, representation: str = "count",
               normalize: str = "none", clip: float = 0.0) -> np.ndarray:
        """float32 ``[len(indices), bins, 2, H, W]`` at sensor resolution.

        Frame k's slice holds the events of window (t_{k-1}, t_k] as ``count`` or
        ``voxel`` bins. The same indices that pick frames pick their events.
        """
        if representation not in REPRESENTATIONS:
            raise EvreidError(f"event representation must be one of "
                              f"{', '.join(REPRESENTATIONS)}, got {representation!r}")
        fn = to_count_frames if representation == "count" else to_voxel
        out = np.zeros((len(indices), bins, 2, self.height, self.width), np.float32)
        for i, k in enumerate(indices):
            start, end = (int(v) for v in self.windows[int(k)])
            out[i] = fn(self.frame_events(int(k)), start, end, bins, self.height, self.width,
                        "split", normalize, clip)
        return out


def frame_windows(frame_times_us: np.ndarray, first_window_us: int = 0) -> np.ndarray:
    """(start, end] windows: frame k -> (t_{k-1}, t_k]; frame 0 -> (t_0 - first, t_0]."""
    times = np.asarray(frame_times_us, dtype=np.int64)
    starts = np.concatenate([[times[0] - int(first_window_us)], times[:-1]]) if len(times) \
        else np.zeros(0, np.int64)
    return np.stack([starts, times], axis=1) if len(times) else np.zeros((0, 2), np.int64)


def tracklet_from_times(events: Events, frame_times_us: np.ndarray, first_window_us: int = 0,
                        source: str = "") -> TrackletEvents:
    """Split a time-sorted stream into frame windows (t_{k-1}, t_k] by binary search."""
    windows = frame_windows(frame_times_us, first_window_us)
    if len(windows) > 1 and np.any(np.diff(windows[:, 1]) <= 0):
        raise EvreidError(f"{source}: frame timestamps must increase strictly")
    bounds = np.concatenate([windows[:1, 0], windows[:, 1]]) if len(windows) else np.zeros(1)
    offsets = np.searchsorted(events.t, bounds, side="right").astype(np.int64)
    return TrackletEvents(events, offsets, windows, source)


def load_tracklet_events(source: str, num_frames: int, fps: float, *,
                         first_window_us: int | None = None,
                         sensor_size: tuple[int, int] | None = None) -> TrackletEvents:
    """Events of one tracklet, split per frame, from any supported source.

    ``source``: a ``.npz`` cache written by ``evreid simulate`` (its stored frame
    timestamps make slicing exact; the frame count must match), an ``.h5`` /
    ``.aedat`` / ``.aedat4`` recording (frame k at ``k * 1e6 / fps`` us from 0),
    or a folder of per-frame ``.mat`` files (SDCL release; one file per frame, in
    numeric order, each file's events are its frame's events). ``sensor_size``
    (height, width) is needed only for ``.mat`` folders when it is not MARS'
    256 x 128. ``first_window_us`` (frame 0's window before t_0) defaults to the
    value stored in the file (the synthetic benchmark stores one frame interval),
    else 0.
    """
    from evreid.events import io as evio
    from evreid.events.simulator import frame_timestamps_us

    path = Path(source)
    if num_frames < 1:
        raise EvreidError(f"{source}: num_frames must be >= 1, got {num_frames}")
    if path.is_dir():
        frames = evio.read_mat_folder(path, sensor_size=sensor_size)
        if len(frames.parts) != num_frames:
            raise EvreidError(f"{source}: {len(frames.parts)} per-frame .mat files for a "
                              f"tracklet of {num_frames} frames")
        sizes = np.array([len(e) for e in frames.parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return TrackletEvents(frames.events, offsets, frames.windows, str(source))
    if not path.exists():
        raise EvreidError(f"event source {source} does not exist")
    ev, meta = evio.read_events_with_meta(path)
    times = meta.get("frame_timestamps_us")
    if times is not None:
        times = np.asarray(times, dtype=np.int64)
        if len(times) != num_frames:
            raise EvreidError(f"{source}: cache holds {len(times)} frame timestamps, the "
                              f"tracklet has {num_frames} frames (stale cache? re-run "
                              f"evreid simulate)")
    else:
        times = frame_timestamps_us(num_frames, fps)
    if first_window_us is None:
        first_window_us = int(meta.get("first_window_us", 0))
    return tracklet_from_times(ev, times, first_window_us, str(source))
