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

What is approximated (the state carried from earlier frames is not simulated):

* the reference at the start of window k >= 2 is drawn per pixel: ``L0 - ref``
  in threshold units ``u`` is, with probability :data:`UNIFORM_WEIGHT`, uniform
  on (-1, 1), else triangular on (-1, 1) peaked at 0 -- the shape measured on
  the exact simulator's state over mini_mars (a tent whose edges stand at ~0.44
  of its peak); ``d0 = u * C+`` for u >= 0, ``u * C-`` below;
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

import numpy as np

from evreid.errors import EvreidError
from evreid.events import _ziggurat
from evreid.events.simulator import SimulatorConfig, frame_timestamps_us, log_intensity

#: weight of the uniform part of the reference-phase mixture (the rest: triangular)
UNIFORM_WEIGHT = 0.6
_CROSS_TOL = 1e-9


def _window_bins(L0, L1, dur, cp, cm, leak, u, refractory, bins, voxel, out):
    """Crossings of each pixel's straight line per window, binned into ``out``.

    L0, L1: [T, P] log intensity at the window's start / end; dur: [T] window
    lengths (us); cp, cm, leak: [P]; u: [T, P] starting state in threshold units;
    out: [T, bins, 2, P]. Returns the number of events.
    """
    T, P = L0.shape
    total = 0
    for w in range(T):
        d_t = dur[w]
        if d_t <= 0:
            continue
        for q in range(P):
            c_on = cp[q]
            c_off = cm[q]
            d0 = u[w, q] * (c_on if u[w, q] >= 0 else c_off)
            dl = L1[w, q] - L0[w, q] + leak[q] * d_t
            end = d0 + dl
            if end >= c_on - _CROSS_TOL * c_on:
                c = c_on
                chan = 0
                n = int(np.floor(end / c_on + _CROSS_TOL))
                slope = dl
            elif -end >= c_off - _CROSS_TOL * c_off:
                c = c_off
                chan = 1
                n = int(np.floor(-end / c_off + _CROSS_TOL))
                slope = -dl
                d0 = -d0
            else:
                continue
            last = -(1 << 40)
            for j in range(1, n + 1):
                frac = (j * c - d0) / slope
                t = int(np.floor(frac * d_t + 0.5))
                if t < 1:
                    t = 1
                elif t > d_t:
                    t = d_t
                if refractory > 0:
                    if t - last < refractory:
                        continue
                    last = t
                total += 1
                if bins == 1:
                    out[w, 0, chan, q] += 1
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
                    idx = -((-t * bins) // d_t) - 1
                    idx = min(max(idx, 0), bins - 1)
                    out[w, idx, chan, q] += 1
    return total


try:
    import numba as _numba

    _window_bins = _numba.njit(cache=True)(_window_bins)
except ImportError:  # a declared dependency: this only keeps a broken install usable
    pass


class _PixelParams:
    """A tracklet's per-pixel thresholds and leak rates: the simulator's draws."""

    def __init__(self, config: SimulatorConfig, seed: int, npix: int) -> None:
        thr_ss, leak_ss, _noise = np.random.SeedSequence(int(seed)).spawn(3)
        thresholds = _ziggurat.standard_normal(np.random.default_rng(thr_ss), 2 * npix)
        thresholds = thresholds.reshape(2, npix) * config.threshold_sigma
        thresholds[0] += config.pos_threshold
        thresholds[1] += config.neg_threshold
        np.maximum(thresholds, config.min_threshold, out=thresholds)
        self.cp, self.cm = thresholds
        self.leak = np.zeros(npix)
        self.phase: np.ndarray | None = None
        if config.leak_rate_hz > 0:
            leak_rng = np.random.default_rng(leak_ss)
            rate = _ziggurat.standard_normal(leak_rng, npix) * config.leak_jitter + 1.0
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
                       rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """``[T, bins, 2, H, W]`` (int32 counts, float32 voxels) and the event count.

        ``luma`` maps frame index -> grey uint8 [H, W] for every index k and k - 1
        (k >= 1) of ``indices``.
        """
        if representation not in ("count", "voxel"):
            raise EvreidError(f"event representation must be count or voxel, got "
                              f"{representation!r}")
        indices = np.asarray(indices, dtype=np.int64)
        first = luma[int(indices[0])]
        height, width = first.shape
        npix = height * width
        times = frame_timestamps_us(int(indices.max()) + 1, fps)
        T = len(indices)
        L0 = np.zeros((T, npix))
        L1 = np.zeros((T, npix))
        dur = np.zeros(T, np.int64)
        for i, k in enumerate(indices):
            if k == 0:
                continue           # frame 0's window is empty
            L0[i] = self._table[luma[int(k) - 1].ravel()]
            L1[i] = self._table[luma[int(k)].ravel()]
            dur[i] = times[k] - times[k - 1]
        params = self.params(tracklet_seed, npix)
        u = _reference_phase(rng, (T, npix))
        at_one = indices == 1      # frame 1 starts from the first frame's exact state
        u[at_one] = 0.0 if params.phase is None else params.phase
        voxel = representation == "voxel"
        out = np.zeros((T, bins, 2, npix), np.float64 if voxel else np.int32)
        count = _window_bins(L0, L1, dur, params.cp, params.cm, params.leak, u,
                             int(self.config.refractory_us), int(bins), voxel, out)
        if self.config.shot_noise_rate_hz > 0:
            lam = (self.config.shot_noise_rate_hz / 2 * dur / bins * 1e-6)[:, None, None, None]
            noise = rng.poisson(np.broadcast_to(lam, out.shape))
            out += noise
            count += int(noise.sum())
        out = out.reshape(T, bins, 2, height, width)
        return (out.astype(np.float32) if voxel else out), count


def _reference_phase(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """u in (-1, 1): uniform with probability UNIFORM_WEIGHT, else triangular at 0."""
    a = rng.random(shape)
    b = rng.random(shape)
    tri = a - b                                   # triangular on (-1, 1)
    uni = 2.0 * a - 1.0
    return np.where(rng.random(shape) < UNIFORM_WEIGHT, uni, tri)


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


def needed_frames(indices: Sequence[int]) -> np.ndarray:
    """Frame indices whose luma the windows of ``indices`` need (k and k - 1)."""
    idx = np.asarray(indices, dtype=np.int64)
    return np.unique(np.concatenate([idx, idx[idx > 0] - 1]))
