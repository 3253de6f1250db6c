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
  ``L - ref`` in threshold units ``u`` is drawn per pixel (a counter-based hash of
  the clip's seed, the window and the pixel), with probability
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
from evreid.events.pixel_model import PixelModel, seed_streams
from evreid.events.simulator import SimulatorConfig, frame_timestamps_us, log_intensity

#: weight of the uniform part of the reference-phase mixture (the rest: triangular)
UNIFORM_WEIGHT = 0.6
_CROSS_TOL = 1e-9


#: pixels per tile: the kernel runs every window over one tile before the next, so
#: a tile's thresholds and scratch stay in the L1 cache across the T windows
_TILE = 1024


def _phase(seed, w, q, c_on, c_off, uniform_weight):
    """The start state ``L - ref`` of pixel ``q`` in clip window ``w``: a counter-based
    hash of (seed, w, q) (no random array to fill) turned into ``u`` in threshold
    units, uniform with probability ``uniform_weight``, else triangular."""
    x = (np.uint64(seed) + np.uint64(w) * np.uint64(0x9E3779B9)
         + np.uint64(q) * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    a = np.float64(x & np.uint64(0x3FF)) * (1.0 / 1024.0) + 0.5 / 1024.0
    b = np.float64((x >> np.uint64(10)) & np.uint64(0x3FF)) * (1.0 / 1024.0) + 0.5 / 1024.0
    pick = np.float64(x >> np.uint64(20)) * (1.0 / 4096.0)
    u = 2.0 * a - 1.0 if pick < uniform_weight else a - b
    return u * (c_on if u >= 0 else c_off)


def _emit_events(d0, slope, c, n, d_t, refractory, bins, voxel, out, w, chan, q, top,
                 saturated):
    """Event by event (the general path: voxels, refractory drops, saturation): the
    ``n`` crossings at ``floor(0.5 + (j c - d0) d_t / slope)``, clamped to [1, d_t]."""
    inv = d_t / slope
    first = 0.5 - d0 * inv
    step = c * inv
    last = -(1 << 40)
    total = 0
    for j in range(1, n + 1):
        t = int(np.floor(first + j * step))
        t = min(max(t, 1), d_t)
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
            idx = 0                 # bin b holds (b D / bins, (b + 1) D / bins]
            for e in range(1, bins):
                if t * bins > e * d_t:
                    idx += 1
            if out[w, idx, chan, q] < top:
                out[w, idx, chan, q] += 1
            else:
                saturated[0] += 1
    return total


def _clip_bins(stack, row_of, times, indices, table, cp, cm, icp, icm, leak, start, seed,
               warmup, refractory, uniform_weight, bins, voxel, out, top, saturated):
    """Per sampled window and pixel: a start state, ``warmup`` earlier windows that
    move the reference by whole thresholds, then the window's crossings, binned.

    stack: [F, P] grey uint8 frames, row_of[k] its row for frame k; times [K] us;
    table: lin-log of 0..255; cp, cm (icp, icm their reciprocals), leak, start: [P];
    seed: the clip's phase draw; out: [T, bins, 2, P] zeros, counts stopping at
    ``top`` (each event that finds its cell full adds one to ``saturated[0]``).
    Returns the number of events.

    Counts take a closed form when no event can be dropped (spacing above the
    refractory period) nor saturate: a pixel's j-th event lies in bins up to b when
    ``floor(0.5 + (j c - d0) d_t / slope) <= E_b`` (E_b = b d_t // bins), so bins
    0..b hold ``ceil((E_b + 0.5) / spacing + d0 / c) - 1`` of its n events -- the
    per-event rule's counts, with no loop over events. Other pixels (and voxels) go
    event by event.
    """
    T = len(indices)
    P = stack.shape[1]
    total = 0
    d = np.empty(_TILE)
    rel = np.empty(_TILE)         # d0 / c
    inv_step = np.empty(_TILE)    # 1 / spacing (us)
    n_fast = np.empty(_TILE)
    n_slow = np.empty(_TILE)
    chan = np.empty(_TILE, np.int64)
    done = np.empty(_TILE)
    act = np.empty(_TILE, np.int64)
    edges = np.empty(bins + 1)
    leaky = False
    for q in range(P):
        leaky |= leak[q] != 0.0
    for q0 in range(0, P, _TILE):
        size = min(_TILE, P - q0)
        for w in range(T):
            k = indices[w]
            if k == 0:
                continue                    # frame 0's window is empty
            d_t = times[k] - times[k - 1]
            if d_t <= 0:
                continue
            for b in range(bins + 1):
                edges[b] = (b * d_t) // bins + 0.5
            m0 = max(k - warmup, 1)         # first window simulated for this one
            if m0 == 1:                     # the exact state at frame 0
                for i in range(size):
                    d[i] = start[q0 + i] * cp[q0 + i]
            else:
                for i in range(size):
                    q = q0 + i
                    d[i] = _phase(seed, w, q, cp[q], cm[q], uniform_weight)
            for m in range(m0, k):          # warm-up windows (m - 1, m]
                s0 = stack[row_of[m - 1]]
                s1 = stack[row_of[m]]
                h = times[m] - times[m - 1]
                for i in range(size):
                    q = q0 + i
                    v = d[i] + (table[s1[q]] - table[s0[q]])
                    if leaky:
                        v += leak[q] * h
                    # the simulator's rule floor(d / C + tol) >= 1 levels crossed
                    k_on = max(np.floor(v * icp[q] + _CROSS_TOL), 0.0)
                    k_off = max(np.floor(-v * icm[q] + _CROSS_TOL), 0.0)
                    d[i] = v - k_on * cp[q] + k_off * cm[q]
            s0 = stack[row_of[k - 1]]
            s1 = stack[row_of[k]]
            inv_dt = 1.0 / d_t
            for i in range(size):
                q = q0 + i
                g = table[s1[q]] - table[s0[q]]
                if leaky:
                    g += leak[q] * d_t
                end = d[i] + g
                y_on = np.floor(end * icp[q] + _CROSS_TOL)
                y_off = np.floor(-end * icm[q] + _CROSS_TOL)
                on = y_on >= 1.0
                n = y_on if on else (y_off if y_off >= 1.0 else 0.0)
                c = cp[q] if on else cm[q]
                sign = 1.0 if on else -1.0
                slope = sign * g
                fast = (not voxel) and slope * (refractory + 1.0) <= c * d_t and n <= top
                rel[i] = sign * d[i] * (icp[q] if on else icm[q])
                inv_step[i] = slope * (icp[q] if on else icm[q]) * inv_dt
                n_fast[i] = n if fast else 0.0
                n_slow[i] = 0.0 if fast else n
                chan[i] = 0 if on else 1
            count = 0
            for i in range(size):
                act[count] = i
                count += n_fast[i] > 0
            for b in range(bins):
                edge = edges[b + 1]
                for a in range(count):
                    i = act[a]
                    upto = np.ceil(edge * inv_step[i] + rel[i]) - 1.0
                    upto = n_fast[i] if b == bins - 1 else min(max(upto, 0.0), n_fast[i])
                    before = done[i] if b > 0 else 0.0
                    out[w, b, chan[i], q0 + i] = upto - before
                    done[i] = upto
                    total += np.int64(upto - before)
            count = 0
            for i in range(size):
                act[count] = i
                count += n_slow[i] > 0
            for a in range(count):
                i = act[a]
                q = q0 + i
                g = table[s1[q]] - table[s0[q]]
                if leaky:
                    g += leak[q] * d_t
                sign = 1.0 if chan[i] == 0 else -1.0
                total += _emit_events(sign * d[i], sign * g, cp[q] if chan[i] == 0 else cm[q],
                                      int(n_slow[i]), d_t, refractory, bins, voxel, out, w,
                                      chan[i], q, top, saturated)
    return total


try:
    import numba as _numba

    _phase = _numba.njit(cache=True, error_model="numpy", inline="always")(_phase)
    _emit_events = _numba.njit(cache=True, error_model="numpy")(_emit_events)
    _clip_bins = _numba.njit(cache=True, nogil=True, error_model="numpy")(_clip_bins)
except ImportError:  # a declared dependency: this only keeps a broken install usable
    pass


class _PixelParams:
    """A tracklet's per-pixel thresholds and leak rates as the kernel reads them: the
    simulator's own draws (:class:`PixelModel` from the same seed streams)."""

    def __init__(self, config: SimulatorConfig, seed: int, npix: int) -> None:
        thr_ss, leak_ss, _noise = seed_streams(seed)
        model = PixelModel(config, npix, thr_ss, leak_ss)
        self.cp, self.cm = model.cp, model.cm
        self.icp, self.icm = 1.0 / self.cp, 1.0 / self.cm   # the kernel multiplies
        self.leak = model.leak_per_us if model.leak_per_us is not None else np.zeros(npix)
        self.phase = model.phase_in_cp if model.leak_per_us is not None else None


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
        seed = int(rng.integers(0, 2**32))        # the phase hash's key for this clip
        voxel = representation == "voxel"
        dtype = np.dtype(np.float64 if voxel else dtype)
        top = np.iinfo(dtype).max if dtype.kind in "iu" else 2**62
        saturated = np.zeros(1, np.int64)
        out = np.zeros((T, bins, 2, npix), dtype)
        count = _clip_bins(stack, row_of, times, indices, self._table, params.cp, params.cm,
                           params.icp, params.icm, params.leak, start, seed, int(warmup),
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
