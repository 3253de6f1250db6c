"""Event tensors computed on the fly from frames (``EVENTS.SOURCE simulate``): no store.

Why: a network sees count (or voxel) bins of T frame windows, not event lists.
Within one frame window the simulator's log intensity is linear in time, so a
pixel's events there are the crossings of the levels ``ref + j*C+`` (or
``ref - j*C-``) by a straight line from ``L(t_{k-1})`` to ``L(t_k)``: their
number and times follow from the two frames, the pixel's thresholds and where
its reference stood when the window began. This module computes exactly that,
per sampled window, from the two frames around it.

What is exact: the lin-log curve (the simulator's table), the per-pixel
threshold mismatch (the same draws as ``simulate`` with the same tracklet seed,
:func:`evreid.events.cache.tracklet_seed`), the linear crossing times rounded
to 1 us, the count / voxel binning rules, the refractory period among the
window's own events, leak (a drift of the reference, folded into the slope,
same per-pixel rates) and, for frame 1, the state: the reference is the first
frame's level (plus the leak phase), as in the simulator.

What is approximated (the state carried from earlier frames is not simulated
from the tracklet's start):

* the reference at the start of window k >= 2 comes from ``warmup`` earlier
  windows (default 1: frame k - 2 to k - 1) run from a random state: there,
  ``L - ref`` in threshold units ``u`` is drawn per pixel, with probability
  :data:`UNIFORM_WEIGHT` uniform on (-1, 1), else triangular on (-1, 1) peaked
  at 0 -- the shape measured on the exact simulator's state over mini_mars (a
  tent whose edges stand at ~0.44 of its peak) -- and the warm-up windows move
  the reference by whole thresholds exactly as the simulator does. Without
  warm-up the windows have ~10 % too many events (a pixel that just fired ON
  sits in [0, C+) and rarely fires OFF next; an independent draw ignores that);
  one window brings it to ~3 %, two to ~1 % (benchmarks/RESULTS.md);
* the refractory period does not see the previous window's last event;
* shot noise is Poisson counts per bin, polarity and pixel (rate / 2 per
  polarity), and does not move the reference;
* the photoreceptor low-pass (``cutoff_hz``) and flow sub-frames are ignored;
* frame 0's window is empty (``first_window_us`` 0, as ``evreid simulate``
  stores it).

The measured agreement with the exact simulator is in benchmarks/RESULTS.md
(``benchmarks/bench_loader.py --fidelity``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from evreid.errors import EvreidError
from evreid.events.simulator import SimulatorConfig, frame_timestamps_us, log_intensity

#: weight of the uniform part of the reference-phase mixture (the rest: triangular)
UNIFORM_WEIGHT = 0.6
_CROSS_TOL = 1e-9


def _clip_bins(stack, row_of, times, indices, table, cp, cm, leak, start, raw, warmup,
               refractory, uniform_weight, bins, voxel, out, top, saturated):
    """Per sampled window and pixel: a start state, ``warmup`` earlier windows that
    move the reference by whole thresholds, then the window's crossings, binned.

    stack: [F, P] grey uint8 frames, row_of[k] its row for frame k; times [K] us;
    table: lin-log of 0..255; cp, cm, leak, start: [P]; raw: [T, P] uint32 random
    words (the phase draw); out: [T, bins, 2, P], counts stopping at ``top`` (each
    event that finds its cell full adds one to ``saturated[0]``). Returns the number
    of events.
    """
    T = len(indices)
    P = stack.shape[1]
    total = 0
    for w in range(T):
        k = indices[w]
        if k == 0:
            continue                    # frame 0's window is empty
        d_t = times[k] - times[k - 1]
        if d_t <= 0:
            continue
        m0 = max(k - warmup, 1)         # first window simulated for this one
        r_k = row_of[k]
        r_k1 = row_of[k - 1]
        for q in range(P):
            c_on = cp[q]
            c_off = cm[q]
            if m0 == 1:
                u = start[q]            # the exact state at frame 0
            else:
                word = raw[w, q]
                a = (word & 0x3FF) / 1024.0 + 0.5 / 1024.0
                b = ((word >> 10) & 0x3FF) / 1024.0 + 0.5 / 1024.0
                pick = (word >> 20) / 4096.0
                u = 2.0 * a - 1.0 if pick < uniform_weight else a - b
            d = u * c_on if u >= 0 else u * c_off
            for m in range(m0, k):      # warm-up windows (m - 1, m]
                d += table[stack[row_of[m], q]] - table[stack[row_of[m - 1], q]] \
                    + leak[q] * (times[m] - times[m - 1])
                # the simulator's rule floor(d / C + tol) >= 1, tested without dividing
                if d >= c_on * (1.0 - _CROSS_TOL):
                    d -= np.floor(d / c_on + _CROSS_TOL) * c_on
                elif -d >= c_off * (1.0 - _CROSS_TOL):
                    d += np.floor(-d / c_off + _CROSS_TOL) * c_off
            dl = table[stack[r_k, q]] - table[stack[r_k1, q]] + leak[q] * d_t
            end = d + dl
            if end >= c_on * (1.0 - _CROSS_TOL):
                c = c_on
                chan = 0
                n = int(np.floor(end / c_on + _CROSS_TOL))
                slope = dl
                d0 = d
            elif -end >= c_off * (1.0 - _CROSS_TOL):
                c = c_off
                chan = 1
                n = int(np.floor(-end / c_off + _CROSS_TOL))
                slope = -dl
                d0 = -d
            else:
                continue
            last = -(1 << 40)
            for j in range(1, n + 1):
                t = int(np.floor((j * c - d0) / slope * d_t + 0.5))
                if t < 1:
                    t = 1
                elif t > d_t:
                    t = d_t
                if refractory > 0:
                    if t - last < refractory:
                        continue
                    last = t
                total += 1
                if voxel and bins == 1:
                    out[w, 0, chan, q] += 1.0
                elif voxel:
                    tau = t / d_t * (bins - 1)
                    lo = int(np.floor(tau))
                    fr = tau - lo
                    lo = min(lo, bins - 1)
                    hi = min(lo + 1, bins - 1)
                    out[w, lo, chan, q] += 1.0 - fr
                    if hi > lo:
                        out[w, hi, chan, q] += fr
                else:
                    idx = 0                 # edges passed, as in the store's kernel
                    for e in range(1, bins):
                        if t * bins > e * d_t:
                            idx += 1
                    if out[w, idx, chan, q] < top:
                        out[w, idx, chan, q] += 1
                    else:
                        saturated[0] += 1
    return total


try:
    import numba as _numba

    _clip_bins = _numba.njit(cache=True)(_clip_bins)
except ImportError:  # a declared dependency: this only keeps a broken install usable
    pass


class _PixelParams:
    """A tracklet's per-pixel thresholds and leak rates: the simulator's draws."""

    def __init__(self, config: SimulatorConfig, seed: int, npix: int) -> None:
        thr_ss, leak_ss, _noise = np.random.SeedSequence(int(seed)).spawn(3)
        thresholds = np.random.default_rng(thr_ss).standard_normal(2 * npix)
        thresholds = thresholds.reshape(2, npix) * config.threshold_sigma
        thresholds[0] += config.pos_threshold
        thresholds[1] += config.neg_threshold
        np.maximum(thresholds, config.min_threshold, out=thresholds)
        self.cp, self.cm = thresholds
        self.leak = np.zeros(npix)
        self.phase: np.ndarray | None = None
        if config.leak_rate_hz > 0:
            leak_rng = np.random.default_rng(leak_ss)
            rate = leak_rng.standard_normal(npix) * config.leak_jitter + 1.0
            self.leak = np.maximum(rate, 0.0) * config.leak_rate_hz * self.cp * 1e-6
            self.phase = leak_rng.random(npix)     # in units of C+, as the simulator's


class OnTheFlyEvents:
    """Count / voxel tensors of chosen frame windows, straight from the frames."""

    def __init__(self, config: SimulatorConfig | None = None, seed: int = 0,
                 cache_size: int = 16) -> None:
        self.config = config or SimulatorConfig()
        self.seed = int(seed)
        self._table = log_intensity(np.arange(256, dtype=np.float64), self.config)
        self._params: OrderedDict[tuple[int, int], _PixelParams] = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = cache_size

    def params(self, tracklet_seed: int, npix: int) -> _PixelParams:
        key = (int(tracklet_seed), npix)
        with self._lock:
            if key in self._params:
                self._params.move_to_end(key)
                return self._params[key]
        value = _PixelParams(self.config, tracklet_seed, npix)
        with self._lock:
            self._params[key] = value
            while len(self._params) > self._cache_size:
                self._params.popitem(last=False)
        return value

    def bins_from_luma(self, luma: dict[int, np.ndarray], indices: Sequence[int], fps: float,
                       bins: int, representation: str, tracklet_seed: int,
                       rng: np.random.Generator, warmup: int = 1,
                       dtype: Any = np.int32) -> tuple[np.ndarray, int, int]:
        """``[T, bins, 2, H, W]`` counts (``dtype``, saturating) or float32 voxels, the
        event count and how many events found their count cell full.

        ``luma`` maps frame index -> grey uint8 [H, W] for every frame
        :func:`needed_frames` lists for ``indices`` and ``warmup``.
        """
        if representation not in ("count", "voxel"):
            raise EvreidError(f"event representation must be count or voxel, got "
                              f"{representation!r}")
        indices = np.asarray(indices, dtype=np.int64)
        frames = sorted(luma)
        height, width = luma[frames[0]].shape
        npix = height * width
        stack = np.stack([luma[k].reshape(npix) for k in frames])
        row_of = np.full(int(indices.max()) + 1, -1, np.int64)
        for row, k in enumerate(frames):
            if k < len(row_of):
                row_of[k] = row
        need = needed_frames(indices, warmup)
        if np.any(row_of[need] < 0):
            raise EvreidError(f"on-the-fly events: frames {need[row_of[need] < 0].tolist()} "
                              f"were not given")
        times = frame_timestamps_us(len(row_of), fps)
        T = len(indices)
        params = self.params(tracklet_seed, npix)
        start = np.zeros(npix) if params.phase is None else params.phase
        raw = rng.integers(0, 2**32, size=(T, npix), dtype=np.uint32)
        voxel = representation == "voxel"
        dtype = np.dtype(np.float64 if voxel else dtype)
        top = np.iinfo(dtype).max if dtype.kind in "iu" else 2**62
        saturated = np.zeros(1, np.int64)
        out = np.zeros((T, bins, 2, npix), dtype)
        count = _clip_bins(stack, row_of, times, indices, self._table, params.cp, params.cm,
                           params.leak, start, raw, int(warmup),
                           int(self.config.refractory_us), UNIFORM_WEIGHT, int(bins), voxel, out,
                           top, saturated)
        dur = np.where(indices > 0, times[indices] - times[np.maximum(indices - 1, 0)], 0)
        if self.config.shot_noise_rate_hz > 0:
            lam = (self.config.shot_noise_rate_hz / 2 * dur / bins * 1e-6)[:, None, None, None]
            noise = rng.poisson(np.broadcast_to(lam, out.shape))
            count += int(noise.sum())
            if voxel:
                out += noise
            else:   # saturating add in a wider type, then back
                total = out.astype(np.int64) + noise
                saturated[0] += int(np.maximum(total - top, 0).sum())
                out = np.minimum(total, top).astype(dtype)
        out = out.reshape(T, bins, 2, height, width)
        return (out.astype(np.float32) if voxel else out), count, int(saturated[0])


def read_luma(paths: Sequence[str]) -> list[np.ndarray]:
    """Grey uint8 frames decoded as the simulator's reader does (OpenCV luma)."""
    import cv2

    out = []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise EvreidError(f"cannot read image {path} (missing, truncated or not an image)")
        if out and img.shape != out[0].shape:
            img = cv2.resize(img, (out[0].shape[1], out[0].shape[0]),
                             interpolation=cv2.INTER_LINEAR)
        out.append(img)
    return out


def needed_frames(indices: Sequence[int], warmup: int = 1) -> np.ndarray:
    """Frame indices whose luma the windows of ``indices`` need: k, k - 1 and the
    ``warmup`` frames before (none before frame 0)."""
    idx = np.asarray(indices, dtype=np.int64)
    parts = [idx - back for back in range(int(warmup) + 2)]
    every = np.concatenate(parts)
    return np.unique(every[every >= 0])
