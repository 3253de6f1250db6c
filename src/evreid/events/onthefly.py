"""Event tensors computed on the fly from frames (``EVENTS.SOURCE simulate``): no store.

Why: a network sees count (or voxel) bins of T frame windows, not event lists.
Within one frame window the simulator's log intensity is linear in time, so a
pixel's events there are the crossings of the levels ``ref + j*C+`` (or
``ref - j*C-``) by a straight line from ``L(t_{k-1})`` to ``L(t_k)``: their
number and times follow from the two frames, the pixel's thresholds and where
its reference stood when the window began. This module computes exactly that,
per sampled window, from the two frames around it.

What is exact: the lin-log curve (the simulator's table), the law of the
per-pixel threshold mismatch, leak rates and phases (by default a tracklet reads
them at its own offset of a pool drawn once with the simulator's formulas; with
``thresholds="simulator"``, config ``EVENTS.THRESHOLDS simulator``, they are the
very draws of ``simulate`` for the same tracklet seed,
:func:`evreid.events.cache.tracklet_seed`), the linear crossing times rounded to
1 us, the count / voxel binning rules, the refractory period among the window's
own events, leak (a drift of the reference, folded into the slope,
same per-pixel rates) and, for frame 1, the state: the reference is the first
frame's level (plus the leak phase), as in the simulator.

What is approximated (the state carried from earlier frames is not simulated
from the tracklet's start):

* the reference at the start of window k >= 2 comes from ``warmup`` earlier
  windows (default 1: frame k - 2 to k - 1) run from an approximate state at
  their start, frame s. By default (``start_states="drawn"``) ``L - ref`` in
  threshold units ``u`` is drawn per pixel (P consecutive values of a pool drawn
  once, from an offset drawn per clip and window): with probability
  :data:`UNIFORM_WEIGHT` uniform on (-1, 1), else triangular on (-1, 1) peaked at
  0 -- the shape measured on the exact simulator's state over mini_mars (a tent
  whose edges stand at ~0.44 of its peak). The warm-up windows then move the
  reference by whole thresholds exactly as the simulator does. A draw puts pixels
  of a still background near a threshold, where the least change fires them: on
  the smooth synthetic benchmark ~15 % too many events with one warm-up window
  (~2 % on mini_mars' noisy crops). ``start_states="anchored"`` (config
  ``EVENTS.START_STATES anchored``) reads frame 0 too: a pixel whose level at
  frame s lies within one threshold of its frame-0 state is taken never to have
  fired, and its state is that difference (exact for a still background, a guess
  for a pixel that fired and came back: on mini_mars three pixels in four have
  fired by frame 5); only the others are drawn. That brings the synthetic
  benchmark to ~5 % and mini_mars to ~2 % (benchmarks/RESULTS.md, loader section)
  for one more frame read and ~1.3 ms of CPU more per T = 8 mini_mars clip (5.4
  -> 6.7 ms in one A/B run: past the 3x-a-frames-only-clip budget, hence not the
  default);
* the refractory period does not see the previous window's last event;
* tracklets share one pool of pixel parameters (``thresholds="pool"``): pixel q
  of one tracklet has those of pixel q + s of another (s from the tracklet seed),
  like one sensor's fixed pattern shifted, where the simulator draws anew;
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
#: a tile's thresholds and scratch stay in the L2 cache across the T windows (1,024:
#: 10 % slower, more calls per clip; 32,768: no gain)
_TILE = 2048


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


def _luma_step(g, s0, s1, table):
    """The change of log intensity from grey frame ``s0`` to ``s1`` (its own loop: a
    loop with table look-ups does not compile to SIMD, the others do)."""
    for i in range(len(g)):
        g[i] = table[s1[i]] - table[s0[i]]


def _start(u, c_on, c_off):
    """A start state ``L - ref`` from ``u`` in threshold units: ``u C+`` when u >= 0,
    else ``u C-`` (the simulator's frame-0 state, the leak phase in [0, 1) of C+,
    included)."""
    return u * (c_on if u >= 0 else c_off)


def _warm_up(d, pool, g, leak, h, cp, cm, icp, icm, first):
    """One warm-up window (h us) of a tile: the change of log intensity ``g`` and the
    leak drift added to ``L - ref`` (``d``; with ``first``, the start state from
    ``pool``), then the reference moved by every whole threshold crossed (the
    simulator's rule floor(d / C + tol) >= 1)."""
    for i in range(len(d)):
        c_on = cp[i]
        c_off = cm[i]
        v = (_start(pool[i], c_on, c_off) if first else d[i]) + g[i]
        v += leak[i] * h
        k_on = max(np.floor(v * icp[i] + _CROSS_TOL), 0.0)
        k_off = max(np.floor(-v * icm[i] + _CROSS_TOL), 0.0)
        d[i] = v - k_on * c_on + k_off * c_off


def _crossings(d, pool, g, leak, cp, cm, icp, icm, first, rel, inv_step, signed_n, slack,
               d_t, top, voxel):
    """Per pixel of a tile in a window of ``d_t`` us: the change ``g`` gets the leak
    drift; the count of events (``signed_n``: + ON, - OFF, 0 for the pixels left to
    :func:`_emit_events`), ``rel`` = d0 / c and ``inv_step`` = 1 / spacing (us) from
    the start state ``d`` (with ``first``, from ``pool``, and stored in ``d``).
    Returns (events counted here, pixels left for the slow path)."""
    inv_dt = 1.0 / d_t
    slow_pixels = 0
    total = 0
    for i in range(len(d)):
        c_on = cp[i]
        c_off = cm[i]
        ic_on = icp[i]
        ic_off = icm[i]
        d0 = _start(pool[i], c_on, c_off) if first else d[i]
        d[i] = d0
        gi = g[i] + leak[i] * d_t
        g[i] = gi
        end = d0 + gi
        y_on = np.floor(end * ic_on + _CROSS_TOL)
        y_off = np.floor(-end * ic_off + _CROSS_TOL)
        on = y_on >= 1.0
        n = y_on if on else max(y_off, 0.0)
        c = c_on if on else c_off
        ic = ic_on if on else ic_off
        slope = gi if on else -gi
        slow = voxel | (slope * slack > c * d_t) | (n > top)
        rel[i] = (d0 if on else -d0) * ic
        inv_step[i] = slope * ic * inv_dt
        fast_n = 0.0 if slow else n
        signed_n[i] = fast_n if on else -fast_n
        slow_pixels += np.int64(slow & (n > 0.0))
        total += np.int64(fast_n)
    return total, slow_pixels


def _bin_counts(rel, inv_step, signed_n, done, cell_on, cell_off, edge, first, last):
    """One count bin: the events up to ``edge`` less those of the bins before."""
    for i in range(len(rel)):
        ns = signed_n[i]
        n = abs(ns)
        upto = n if last else min(max(np.ceil(edge * inv_step[i] + rel[i]) - 1.0, 0.0), n)
        got = upto - (0.0 if first else done[i])
        done[i] = upto
        cell_on[i] = got if ns > 0.0 else 0.0
        cell_off[i] = 0.0 if ns > 0.0 else got


def _anchored_pool(out, phase, offsets, stack, row_of, indices, times, table, start, leak,
                   cp, cm, icp, icm, warmup, level0):
    """Each window's start states ``u`` at its first warm-up frame s, into ``out[w]``:
    a pixel whose level at s lies within one threshold of its frame-0 state takes that
    difference, the others the pool's draw ``phase[offsets[w]:][:P]``. ``level0``:
    work space of P floats."""
    P = stack.shape[1]
    frame0 = stack[row_of[0]]
    for i in range(P):
        level0[i] = table[frame0[i]] - _start(start[i], cp[i], cm[i])
    for w in range(len(indices)):
        m0 = max(indices[w] - warmup, 1)
        s1 = stack[row_of[m0 - 1]]
        h = np.float64(times[m0 - 1] - times[0])
        o = offsets[w]
        base = w * P
        for i in range(P):
            d = table[s1[i]] - level0[i] + leak[i] * h
            u = d * (icp[i] if d >= 0.0 else icm[i])
            out[base + i] = u if (u < 1.0) & (u > -1.0) else phase[o + i]


def _clip_bins(stack, row_of, times, indices, table, cp, cm, icp, icm, leak, start, phase,
               offsets, warmup, refractory, bins, voxel, out, top, saturated):
    """Per sampled window and pixel: a start state, ``warmup`` earlier windows that
    move the reference by whole thresholds, then the window's crossings, binned.

    stack: [F, P] grey uint8 frames, row_of[k] its row for frame k; times [K] us;
    table: lin-log of 0..255; cp, cm (icp, icm their reciprocals), leak, start: [P];
    phase: the pool of start states ``u`` (threshold units), window w reading
    ``phase[offsets[w]:][:P]``; out: [T, bins, 2, P], every cell written here (it
    need not be zeroed), counts stopping at ``top`` (each event that finds its cell
    full adds one to ``saturated[0]``). Returns the number of events.

    Counts take a closed form when no event can be dropped (spacing above the
    refractory period) nor saturate: a pixel's j-th event lies in bins up to b when
    ``floor(0.5 + (j c - d0) d_t / slope) <= E_b`` (E_b = b d_t // bins), so bins
    0..b hold ``ceil((E_b + 0.5) / spacing + d0 / c) - 1`` of its n events -- the
    per-event rule's counts, with no loop over events. Other pixels (and voxels) go
    event by event after the tile's dense pass. Each step is its own loop over a
    tile of pixels with no branches inside (selects only), so that it compiles to
    SIMD; the tile's thresholds and scratch stay in the cache across the windows.
    """
    T = len(indices)
    P = stack.shape[1]
    total = 0
    d = np.empty(_TILE)
    g = np.empty(_TILE)
    rel = np.empty(_TILE)         # d0 / c
    inv_step = np.empty(_TILE)    # 1 / spacing (us)
    signed_n = np.empty(_TILE)
    done = np.empty(_TILE)
    edges = np.empty(bins + 1)
    slack = refractory + 1.0
    for q0 in range(0, P, _TILE):
        q1 = min(q0 + _TILE, P)
        n_px = q1 - q0
        t_cp, t_cm, t_icp, t_icm = cp[q0:q1], cm[q0:q1], icp[q0:q1], icm[q0:q1]
        t_leak = leak[q0:q1]
        t_d, t_g = d[:n_px], g[:n_px]
        for w in range(T):
            k = indices[w]
            d_t = times[k] - times[k - 1] if k > 0 else 0
            if d_t <= 0:                    # frame 0's window is empty
                out[w, :, :, q0:q1] = 0
                continue
            for b in range(bins + 1):
                edges[b] = (b * d_t) // bins + 0.5
            m0 = max(k - warmup, 1)         # first window simulated for this one
            # start states: the exact one at frame 0, else drawn
            pool = start[q0:q1] if m0 == 1 else phase[offsets[w] + q0:offsets[w] + q1]
            for m in range(m0, k):          # warm-up windows (m - 1, m]
                _luma_step(t_g, stack[row_of[m - 1], q0:q1], stack[row_of[m], q0:q1], table)
                _warm_up(t_d, pool, t_g, t_leak, times[m] - times[m - 1], t_cp, t_cm, t_icp,
                         t_icm, m == m0)
            _luma_step(t_g, stack[row_of[k - 1], q0:q1], stack[row_of[k], q0:q1], table)
            counted, slow_pixels = _crossings(
                t_d, pool, t_g, t_leak, t_cp, t_cm, t_icp, t_icm, m0 == k, rel[:n_px],
                inv_step[:n_px], signed_n[:n_px], slack, d_t, top, voxel)
            total += counted
            for b in range(bins):
                _bin_counts(rel[:n_px], inv_step[:n_px], signed_n[:n_px], done[:n_px],
                            out[w, b, 0, q0:q1], out[w, b, 1, q0:q1], edges[b + 1], b == 0,
                            b == bins - 1)
            if slow_pixels == 0:
                continue
            for i in range(n_px):           # the rest, event by event
                end = t_d[i] + t_g[i]
                y_on = np.floor(end * t_icp[i] + _CROSS_TOL)
                y_off = np.floor(-end * t_icm[i] + _CROSS_TOL)
                on = y_on >= 1.0
                n = y_on if on else max(y_off, 0.0)
                if n == 0.0 or signed_n[i] != 0.0:
                    continue
                sign = 1.0 if on else -1.0
                total += _emit_events(sign * t_d[i], sign * t_g[i], t_cp[i] if on else t_cm[i],
                                      int(n), d_t, refractory, bins, voxel, out, w,
                                      0 if on else 1, q0 + i, top, saturated)
    return total


try:
    import numba as _numba

    _emit_events = _numba.njit(cache=True, error_model="numpy")(_emit_events)
    _start = _numba.njit(inline="always")(_start)
    for _name in ("_luma_step", "_warm_up", "_crossings", "_bin_counts", "_anchored_pool",
                  "_clip_bins"):
        globals()[_name] = _numba.njit(cache=True, nogil=True, error_model="numpy")(
            globals()[_name])
except ImportError:  # a declared dependency: this only keeps a broken install usable
    pass


#: threshold / phase pools hold this many frames' worth of pixels: a tracklet (or a
#: window) reads P consecutive values from its own offset in the pool
_POOL_FACTOR = 4
#: where a pool's parameters come from: ``pool`` (default) or ``simulator``
THRESHOLD_SOURCES = ("pool", "simulator")
#: how a window's warm-up starts: every pixel ``drawn`` (default), or ``anchored`` to
#: frame 0 where its level has not moved a threshold from there
START_STATES = ("drawn", "anchored")


class _PixelParams:
    """Per-pixel thresholds (and reciprocals), leak rates and leak phases as the
    kernel reads them, for ``npix`` pixels drawn as the simulator draws them
    (:class:`PixelModel` from ``seed``'s streams)."""

    def __init__(self, config: SimulatorConfig, seed: int | Sequence[int], npix: int) -> None:
        streams = (seed_streams(int(seed)) if isinstance(seed, (int, np.integer))
                   else np.random.SeedSequence(list(seed)).spawn(3))
        model = PixelModel(config, npix, streams[0], streams[1])
        self.cp, self.cm = model.cp, model.cm
        self.icp, self.icm = 1.0 / self.cp, 1.0 / self.cm   # the kernel multiplies
        self.leak = model.leak_per_us if model.leak_per_us is not None else np.zeros(npix)
        self.phase = model.phase_in_cp if model.leak_per_us is not None else np.zeros(npix)

    def window(self, offset: int, npix: int) -> _PixelParams:
        """The ``npix`` pixels from ``offset`` on (views, no copy)."""
        view = object.__new__(_PixelParams)
        for name in ("cp", "cm", "icp", "icm", "leak", "phase"):
            setattr(view, name, getattr(self, name)[offset:offset + npix])
        return view


class OnTheFlyEvents:
    """Count / voxel tensors of chosen frame windows, straight from the frames.

    ``thresholds``: ``pool`` (default) gives a tracklet the pixels at an offset of a
    pool of ``4 P`` pixels drawn once per (``seed``, P) with the simulator's
    formulas -- the same distribution of thresholds, leak rates and phases as
    ``evreid simulate``, other draws, and nothing to draw per clip (drawing a
    tracklet's own would cost ~0.4 ms a clip, more than a third of the kernel);
    ``simulator`` draws each tracklet's own exactly as ``evreid simulate`` does
    (cached for ``cache_size`` tracklets), so that window 1 equals the stored events.
    """

    def __init__(self, config: SimulatorConfig | None = None, seed: int = 0,
                 cache_size: int = 16, thresholds: str = "pool",
                 start_states: str = "drawn") -> None:
        if thresholds not in THRESHOLD_SOURCES:
            raise EvreidError(f"on-the-fly thresholds must be one of "
                              f"{', '.join(THRESHOLD_SOURCES)}, got {thresholds!r}")
        if start_states not in START_STATES:
            raise EvreidError(f"on-the-fly start states must be one of "
                              f"{', '.join(START_STATES)}, got {start_states!r}")
        self.start_states = start_states
        self.config = config or SimulatorConfig()
        self.seed = int(seed)
        self.thresholds = thresholds
        self._table = log_intensity(np.arange(256, dtype=np.float64), self.config)
        self._params: OrderedDict[tuple[int, int], _PixelParams] = OrderedDict()
        self._pools: dict[int, tuple[_PixelParams, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._cache_size = cache_size

    def _pool(self, npix: int) -> tuple[_PixelParams, np.ndarray]:
        """The pools for frames of ``npix`` pixels: parameters, and start states ``u``
        in threshold units (probability :data:`UNIFORM_WEIGHT` uniform on (-1, 1),
        else triangular on (-1, 1) peaked at 0)."""
        with self._lock:
            if npix in self._pools:
                return self._pools[npix]
        size = _POOL_FACTOR * npix
        params = _PixelParams(self.config, [self.seed, npix, 0x7001], size)
        rng = np.random.default_rng([self.seed, npix, 0x9A5E])
        a, b, pick = rng.random(size), rng.random(size), rng.random(size)
        phase = np.where(pick < UNIFORM_WEIGHT, 2.0 * a - 1.0, a - b)
        with self._lock:
            return self._pools.setdefault(npix, (params, phase))

    def needed_frames(self, indices: Sequence[int], warmup: int = 1) -> np.ndarray:
        """:func:`needed_frames` for this source's start states."""
        return needed_frames(indices, warmup, self.start_states == "anchored")

    def params(self, tracklet_seed: int, npix: int) -> _PixelParams:
        """A tracklet's per-pixel parameters (see ``thresholds``)."""
        if self.thresholds == "pool":
            pool = self._pool(npix)[0]
            return pool.window(int(tracklet_seed) % ((_POOL_FACTOR - 1) * npix + 1), npix)
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
        :meth:`needed_frames` lists for ``indices`` and ``warmup``.
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
        need = self.needed_frames(indices, warmup)
        if np.any(row_of[need] < 0):
            raise EvreidError(f"on-the-fly events: frames {need[row_of[need] < 0].tolist()} "
                              f"were not given")
        times = frame_timestamps_us(len(row_of), fps)
        T = len(indices)
        params = self.params(tracklet_seed, npix)
        phase = self._pool(npix)[1]
        # each window's start states: P pool values from an offset of its own
        offsets = rng.integers(0, len(phase) - npix + 1, size=T)
        voxel = representation == "voxel"
        dtype = np.dtype(np.float64 if voxel else dtype)
        top = np.iinfo(dtype).max if dtype.kind in "iu" else 2**62
        saturated = np.zeros(1, np.int64)
        out = np.empty((T, bins, 2, npix), dtype)
        if self.start_states == "anchored":   # the pool values, anchored where they may be
            anchored = np.empty(T * npix)
            _anchored_pool(anchored, phase, offsets, stack, row_of, indices, times,
                           self._table, params.phase, params.leak, params.cp, params.cm,
                           params.icp, params.icm, int(warmup), np.empty(npix))
            phase, offsets = anchored, np.arange(T) * npix
        count = _clip_bins(stack, row_of, times, indices, self._table, params.cp, params.cm,
                           params.icp, params.icm, params.leak, params.phase, phase, offsets,
                           int(warmup), int(self.config.refractory_us), int(bins), voxel, out,
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


def read_luma(paths: Sequence[str], data: Sequence[np.ndarray] | None = None
              ) -> list[np.ndarray]:
    """Grey uint8 frames decoded as the simulator's reader does (OpenCV luma);
    ``data``: the files' bytes (uint8) when already read."""
    import cv2

    out = []
    for i, path in enumerate(paths):
        img = (cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if data is None
               else cv2.imdecode(data[i], cv2.IMREAD_GRAYSCALE))
        if img is None:
            raise EvreidError(f"cannot read image {path} (missing, truncated or not an image)")
        if out and img.shape != out[0].shape:
            img = cv2.resize(img, (out[0].shape[1], out[0].shape[0]),
                             interpolation=cv2.INTER_LINEAR)
        out.append(img)
    return out


def needed_frames(indices: Sequence[int], warmup: int = 1, anchored: bool = False
                  ) -> np.ndarray:
    """Frame indices whose luma the windows of ``indices`` need: k, k - 1 and the
    ``warmup`` frames before (none before frame 0)."""
    idx = np.asarray(indices, dtype=np.int64)
    parts = [idx - back for back in range(int(warmup) + 2)]
    if anchored:                  # anchored start states read frame 0 too
        parts.append(np.zeros(1, np.int64))
    every = np.concatenate(parts)
    return np.unique(every[every >= 0])
