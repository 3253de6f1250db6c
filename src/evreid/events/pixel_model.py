"""The DVS pixel model: photoreceptor curve, per-pixel parameters, and its NumPy reference.

The model itself (lin-log curve, thresholds with mismatch, exact crossing times,
refractory period, leak, shot-noise resets, photoreceptor low-pass) is described
in docs/SIMULATOR.md. :class:`PixelModel` holds every pixel's parameters and
state and advances all of them over one sample interval, vectorised with NumPy:
this is the reference. The compiled kernel (:mod:`evreid.events._kernel`)
advances the same state arrays with the same float64 operations in the same
order, so both give the same events, bit for bit; the kernel leaves the low-pass
filter to this reference (its ``exp`` need not round like NumPy's).

Events of one interval come back in the canonical order: by time, ties by pixel
(row-major), then in order of generation (time order) within the pixel.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np

from evreid.errors import EvreidError
from evreid.events.config import SimulatorConfig

#: Crossings within this fraction of a threshold count (absorbs float rounding); the
#: compiled kernel uses the same constant: the two must agree.
CROSS_TOL = 1e-9
#: Luma weights (ITU-R BT.601, as OpenCV's RGB2GRAY).
LUMA = np.array([0.299, 0.587, 0.114])
#: Lowest relative photoreceptor bandwidth (at black).
MIN_CUTOFF_FRACTION = 0.05
#: The refractory clock of a pixel that has not fired yet: far enough in the past.
NEVER = np.iinfo(np.int64).min // 4

Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


def frame_luma(frame: np.ndarray) -> np.ndarray:
    """One frame as float64 luma in DN (0..255 scale).

    uint8 frames are DN already; float frames are read on a 0..1 scale (1.0 =
    255 DN). RGB(A) frames are reduced with BT.601 weights.
    """
    arr = np.asarray(frame)
    if arr.dtype == np.uint8:
        scale = 1.0
    elif arr.dtype.kind == "f":
        scale = 255.0
    else:
        raise EvreidError(f"frames must be uint8 or float, got dtype {arr.dtype}")
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            raise EvreidError(f"colour frames must be [H, W, 3], got {arr.shape}")
        luma = arr[..., :3].astype(np.float64) @ LUMA
    elif arr.ndim == 2:
        luma = arr.astype(np.float64)
    else:
        raise EvreidError(f"a frame must be [H, W] or [H, W, 3], got shape {arr.shape}")
    if scale != 1.0:
        luma *= scale
    # uint8 luma is finite and non-negative by construction: check floats only
    if arr.dtype != np.uint8 and (not np.all(np.isfinite(luma)) or luma.min() < 0):
        raise EvreidError("frames must be finite and non-negative")
    return luma


def log_intensity(luma: np.ndarray, config: SimulatorConfig | None = None) -> np.ndarray:
    """Lin-log photoreceptor curve of luma in DN: ``log(I)`` above ``lin_log_threshold``
    T, the tangent line ``log(T) + (I - T) / T`` below (a C1 join); ``log(I + eps)``
    when T is 0."""
    cfg = config or SimulatorConfig()
    luma = np.asarray(luma, dtype=np.float64)
    T = float(cfg.lin_log_threshold)
    if T > 0:
        return np.log(np.maximum(luma, T)) + (np.minimum(luma, T) - T) / T
    return np.log(luma + cfg.eps)


def stable_argsort(keys: np.ndarray, bound: int) -> np.ndarray:
    """The stable argsort of integer ``keys`` known to lie in [0, bound).

    Keys below 2**16 take NumPy's O(n) radix sort as uint16; below 2**32, two
    stable 16-bit passes (low half, then high half); many times faster than a
    comparison sort, and the same order.
    """
    if bound <= 65536:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    if bound <= 2**32:
        order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
        high = (keys >> 16).astype(np.uint16)
        return order[np.argsort(high[order], kind="stable")]
    return np.argsort(keys, kind="stable")


def seed_streams(seed: int) -> list[np.random.SeedSequence]:
    """The three streams a video's seed spawns: threshold mismatch, leak (rates and
    phase), shot noise. The simulator and the on-the-fly events draw alike from them."""
    return np.random.SeedSequence(int(seed)).spawn(3)


class PixelModel:
    """Every pixel's parameters and state, and the NumPy reference of one interval.

    Parameters, drawn once from ``thr_seed`` / ``leak_seed`` (NumPy generators):
    thresholds ``cp`` / ``cm`` = max(C + sigma * N(0, 1), C_min) (both from one
    stream, C+ first), and with leak the rate per pixel in log units per microsecond
    and a starting phase in [0, C+) (from the other stream). State: the reference
    level ``ref``, the last kept event time ``last_t`` (refractory clock), and the
    low-pass filter's output ``filt``; :meth:`start` sets them at the first frame.
    The compiled kernel reads and advances the same arrays.
    """

    def __init__(self, config: SimulatorConfig, pixels: int, thr_seed: np.random.SeedSequence,
                 leak_seed: np.random.SeedSequence) -> None:
        self.cfg = cfg = config
        self.npix = P = int(pixels)
        # drawn and scaled in place (no temporaries: this is most of the set-up of a
        # short video), the same operations as the formulas in the comments
        thresholds = np.random.default_rng(thr_seed).standard_normal(2 * P).reshape(2, P)
        thresholds *= cfg.threshold_sigma
        thresholds[0] += cfg.pos_threshold           # C+ = max(C + sigma * z, C_min)
        thresholds[1] += cfg.neg_threshold
        np.maximum(thresholds, cfg.min_threshold, out=thresholds)
        self.cp, self.cm = thresholds
        self.leak_per_us: np.ndarray | None = None
        self.phase: np.ndarray | None = None
        if cfg.leak_rate_hz > 0:
            # rate * max(0, 1 + jitter * z) * C+ * 1e-6: log units per microsecond
            leak_rng = np.random.default_rng(leak_seed)
            leak = leak_rng.standard_normal(P)
            leak *= cfg.leak_jitter
            leak += 1.0
            np.maximum(leak, 0.0, out=leak)
            leak *= cfg.leak_rate_hz
            leak *= self.cp
            leak *= 1e-6
            self.leak_per_us = leak
            # the phase in units of C+ (as the on-the-fly events take it), then in log units
            self.phase_in_cp = leak_rng.random(P)
            self.phase = self.phase_in_cp * self.cp
        self.ref = np.zeros(0)
        self.filt: np.ndarray | None = None
        self.last_t = np.full(P, NEVER, np.int64)

    def start(self, L: np.ndarray) -> None:
        """The state at the first frame, of flat log intensity ``L``: the reference is
        ``L`` (less the leak phase), the filter at rest."""
        # a copy: the reference is updated in place and must not alias the frame's log
        self.ref = L - self.phase if self.phase is not None else L.copy()
        if self.cfg.cutoff_hz > 0:
            self.filt = L.copy()

    @functools.cached_property
    def neg_cm(self) -> np.ndarray:
        """-C- per pixel (d / -C- is exact)."""
        return -self.cm

    @functools.cached_property
    def cmin(self) -> np.ndarray:
        """min(C+, C-) per pixel: the sub-steps' unit."""
        return np.minimum(self.cp, self.cm)

    # -- one interval -------------------------------------------------------------
    def interval(self, t_a: int, t_b: int, La: np.ndarray, Lb: np.ndarray,
                 luma_a: np.ndarray | None, noise: Triple | None) -> Triple:
        """Events (t, pixel, polarity) of the interval (t_a, t_b] in the canonical
        order; advances the state. ``La`` / ``Lb``: flat log intensity at its ends;
        ``luma_a``: the luma at ``t_a`` (the low-pass filter's bandwidth); ``noise``:
        the interval's shot-noise events in time order, or None."""
        cfg = self.cfg
        dt = float(t_b - t_a)
        tau = None
        if cfg.cutoff_hz > 0:
            rel = np.maximum(luma_a.ravel() / 255.0, MIN_CUTOFF_FRACTION)
            tau = 1e6 / (2 * math.pi * cfg.cutoff_hz * rel)      # microseconds
        if noise is not None and len(noise[0]) == 0:
            noise = None
        if cfg.needs_substeps:
            change = np.abs(Lb - La)
            if self.filt is not None:
                change = np.maximum(change, np.abs(self.filt - La))
            m = np.clip(np.ceil(change / (cfg.max_log_step * self.cmin)), 1, cfg.max_substeps)
            M = int(m.max())
        else:
            m, M = None, 1
        if M == 1 and noise is None:
            parts = [self._step(slice(None), t_a, float(t_a), dt, La, Lb, tau, t_b)]
        elif M == 1:
            parts = list(self._split_at_noise(t_a, t_b, La, Lb, tau, noise))
        else:
            parts = list(self._substeps(t_a, t_b, La, Lb, tau, noise, m, M))
        parts = [q for q in parts if q is not None and len(q[0])]
        if not parts:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.int8)
        if len(parts) == 1:
            t, pix, p = parts[0]           # pixel-major already
        else:
            t, pix, p = (np.concatenate([q[i] for q in parts]) for i in range(3))
            # parts are step-major: make them pixel-major (stable, so each pixel's
            # events stay in the order they were generated, which is time order)
            order = stable_argsort(pix, self.npix)
            t, pix, p = t[order], pix[order], p[order]
        # time order, ties by pixel then generation order: the canonical order (all
        # times lie in (t_a, t_b]: clipped crossings and noise alike)
        order = stable_argsort(t - t_a, t_b - t_a + 1)
        return t[order], pix[order], p[order]

    def _substeps(self, t_a: int, t_b: int, La: np.ndarray, Lb: np.ndarray,
                  tau: np.ndarray | None, noise: Triple | None, m: np.ndarray,
                  M: int) -> Iterator[Triple | None]:
        """Per-pixel uniform sub-steps: pixel i takes m[i] steps of (t_b - t_a) / m[i]; a
        noise event resets its pixel at the end of the sub-step that holds it."""
        dt = float(t_b - t_a)
        m_int = m.astype(np.int64)
        noise_step = None
        if noise is not None:
            frac = (noise[0].astype(np.float64) - t_a) / dt
            noise_step = np.ceil(frac * m_int[noise[1]].astype(np.float64)).astype(np.int64) - 1
        dL = Lb - La
        for j in range(M):
            sel = slice(None) if j == 0 else (m_int > j).nonzero()[0]
            mj = m[sel]
            s0 = j / mj
            dLs = dL[sel]
            La_s = La[sel]
            u0 = La_s + dLs * s0
            u1 = np.where(m_int[sel] == j + 1, Lb[sel], La_s + dLs * ((j + 1) / mj))
            yield self._step(sel, t_a, t_a + s0 * dt, dt / mj, u0, u1,
                             None if tau is None else tau[sel], t_b)
            if noise_step is not None:
                hit = (noise_step == j).nonzero()[0]
                if len(hit):
                    yield self.noise_events(noise[0][hit], noise[1][hit], noise[2][hit])

    def _split_at_noise(self, t_a: int, t_b: int, La: np.ndarray, Lb: np.ndarray,
                        tau: np.ndarray | None, noise: Triple) -> Iterator[Triple | None]:
        """One-step interval where pixels with shot noise are split at each noise event.

        A noise event resets its pixel exactly at its time: the pixel's segment is cut
        there, the reference moves by +C+ / -C-, and the rest follows. Passes go over
        the noise rank within a pixel (noise is sparse), then one pass over all pixels.
        """
        nt, npix, npol = noise
        # noise comes in time order: a stable sort by pixel gives (pixel, time) order
        order = stable_argsort(npix, self.npix)
        nt, npix, npol = nt[order], npix[order], npol[order]
        n = len(nt)
        first = np.zeros(n, bool)
        first[0] = True
        first[1:] = npix[1:] != npix[:-1]
        rank = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
        dt = float(t_b - t_a)
        dL = Lb - La
        ts0 = np.full(self.npix, float(t_a))
        u0 = La.copy()
        for r in range(int(rank.max()) + 1):
            idx = (rank == r).nonzero()[0]
            pp, tn_i = npix[idx], nt[idx]
            tn = tn_i.astype(np.float64)
            u_end = La[pp] + dL[pp] * ((tn - t_a) / dt)
            start = ts0[pp]
            yield self._step(pp, t_a, start, tn - start, u0[pp], u_end,
                             None if tau is None else tau[pp], t_b)
            yield self.noise_events(tn_i, pp, npol[idx])
            ts0[pp] = tn
            u0[pp] = u_end
        yield self._step(slice(None), t_a, ts0, t_b - ts0, u0, Lb, tau, t_b)

    def _step(self, sel: slice | np.ndarray, t_a: int, ts0: float | np.ndarray,
              h: float | np.ndarray, u0: np.ndarray, u1: np.ndarray, tau: np.ndarray | None,
              t_b: int) -> Triple | None:
        """One linear segment for the pixels ``sel``: crossings -> events, state update.

        ``ts0`` / ``h`` are the segment start time and length in microseconds (scalars
        or per-pixel arrays); ``u0`` / ``u1`` the log intensity at its ends. Events come
        back pixel-major, in time order within a pixel, refractory filter applied.
        """
        if tau is not None:
            y0 = self.filt[sel]
            btau = (u1 - u0) / (h if isinstance(h, float) else np.maximum(h, 1e-9)) * tau
            y1 = u1 - btau + (y0 - u0 + btau) * np.exp(-h / tau)
            self.filt[sel] = y1
            v0, v1 = y0, y1
        else:
            v0, v1 = u0, u1
        ref = self.ref[sel]
        d1 = v1 - ref
        if self.leak_per_us is not None:
            drift = self.leak_per_us[sel] * h
            d1 += drift
        active, on, counts_f, c = self._crossings(sel, d1)
        # Gather what the event times need before the reference moves (``ref`` may be
        # a view of ``self.ref``).
        d0_a = v0[active] - ref[active]
        d1_a = d1[active]
        if self.leak_per_us is not None:
            self.ref[sel] = ref - drift
        src = active if isinstance(sel, slice) else sel[active]
        if len(active) == 0:
            return None
        sgn = np.where(on, 1.0, -1.0)
        # The reference moves by the emitted count times C (ref + n_on*C+ - n_off*C- of
        # the model, written for the one polarity that fired: the same float result).
        self.ref[src] = self.ref[src] + sgn * (counts_f * c)
        counts = counts_f.astype(np.int64)
        # Per active pixel, in the orientation of its polarity (s = +1 ON, -1 OFF):
        # e0 = s*D0, e1 = s*D1, crossings at k*C (k = 1..n) reached at
        # t_k = t0 + (k*C - e0) / (e1 - e0) * h  =  A + k*B, and at t0 for the levels
        # the input had already passed then (k*C <= e0: after a reset's jump).
        e1 = sgn * d1_a
        e0 = sgn * d0_a
        span = e1 - e0
        pos = span > 0
        h_a = h if isinstance(h, float) else h[active]
        t0_a = ts0 if isinstance(ts0, float) else ts0[active]
        inv = np.where(pos, h_a / np.where(pos, span, 1.0), 0.0)
        A = t0_a - e0 * inv
        B = c * inv
        ends = counts.cumsum()
        k = self._ranks(counts, ends)
        t = np.rint(np.repeat(A, counts) + k.astype(np.float64) * np.repeat(B, counts))
        # rint(max(x, t0)) = max(rint(x), rint(t0)); a start at t_a is the clip's
        if not isinstance(ts0, float):
            t = np.maximum(t, np.repeat(np.rint(t0_a), counts))
        elif ts0 > t_a:
            t = np.maximum(t, float(np.rint(ts0)))
        t = np.clip(t.astype(np.int64), t_a + 1, t_b)
        pix = np.repeat(src, counts)
        p = np.repeat(sgn.astype(np.int8), counts)
        if self.cfg.refractory_us > 0:
            keep = self._refractory(t, pix, k, ends - counts, ends - 1, src)
            if keep is not None:
                kept = keep.nonzero()[0]     # one mask scan, then three cheap gathers
                t, pix, p = t[kept], pix[kept], p[kept]
        return t, pix, p

    def _crossings(self, sel: slice | np.ndarray, d1: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pixels of ``sel`` that cross a level, with polarity, count and threshold.

        The count is ``floor(D1 / C + tol)`` for the polarity whose level is crossed
        (``D1`` = input minus reference at the segment end); a pixel fires when that
        reaches 1, so the mask needs no floor and the floor runs on fired pixels only.
        """
        cp, cm = self.cp[sel], self.cm[sel]
        y_on = d1 / cp
        y_on += CROSS_TOL
        y_off = d1 / self.neg_cm[sel]
        y_off += CROSS_TOL
        active = ((y_on >= 1.0) | (y_off >= 1.0)).nonzero()[0]
        y_on_a = y_on[active]
        on = y_on_a >= 1.0
        counts_f = np.floor(np.where(on, y_on_a, y_off[active]))
        c = np.where(on, cp[active], cm[active])
        return active, on, counts_f, c

    @staticmethod
    def _ranks(counts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """1, 2, ..., n per pixel for the repeated events: a cumsum of ones that drops
        back to 1 at each pixel's first event (cheaper than arange minus repeat)."""
        steps = np.ones(int(ends[-1]), np.int64)
        steps[ends[:-1]] = 1 - counts[:-1]
        return steps.cumsum()

    def noise_events(self, t: np.ndarray, pix: np.ndarray, p: np.ndarray) -> Triple:
        """Noise events (at most one per pixel): reset their pixels (the reference moves
        by +C+ or -C-), then the refractory filter."""
        delta = np.where(p > 0, self.cp[pix], -self.cm[pix])
        np.add.at(self.ref, pix, delta)
        R = int(self.cfg.refractory_us)
        if R > 0:
            last = self.last_t[pix]
            kept = (t - last) >= R
            self.last_t[pix] = np.where(kept, t, last)
            if not kept.all():
                return t[kept], pix[kept], p[kept]
        return t, pix, p

    def _refractory(self, t: np.ndarray, pix: np.ndarray, k: np.ndarray,
                    first_idx: np.ndarray, last_idx: np.ndarray,
                    src: np.ndarray) -> np.ndarray | None:
        """Keep-mask (None = keep all) of one step's events under the refractory period.

        Events arrive pixel-major and in time order within a pixel (``k`` = 1, 2, ...
        is the rank within the pixel, ``first_idx`` / ``last_idx`` the index of each
        pixel's first / last event, ``src`` the pixels), so the check needs no sort.
        Exact sequential semantics: an event is kept if it is at least
        ``refractory_us`` after the previous *kept* event of its pixel.

        An event at least ``refractory_us`` after the event before it (for a pixel's
        first event: after its last kept event) is kept whatever happened before. The
        others form runs behind such an event; only they need sequential passes, one
        per position in a run, and runs are short.
        """
        R = int(self.cfg.refractory_us)
        sure = np.ones(len(t), bool)
        sure[1:] = (t[1:] - t[:-1]) >= R
        sure[first_idx] = (t[first_idx] - self.last_t[src]) >= R
        if sure.all():
            self.last_t[src] = t[last_idx]
            return None
        keep = sure                            # the undecided ones are filled in below
        u = (~sure).nonzero()[0]               # undecided events, in order
        first_u = k[u] == 1
        # a run starts at an undecided event whose predecessor is kept for sure (or
        # that is its pixel's first); the last kept time before it is its anchor
        starts = first_u | sure[np.maximum(u - 1, 0)]
        anchor_pos = starts.nonzero()[0]
        us = u[anchor_pos]
        anchor = np.where(first_u[anchor_pos], self.last_t[pix[us]], t[np.maximum(us - 1, 0)])
        run = starts.astype(np.int64).cumsum() - 1
        n_u = len(u)
        pos = np.arange(n_u) - np.maximum.accumulate(np.where(starts, np.arange(n_u), 0))
        for j in range(int(pos.max()) + 1):
            sel = (pos == j).nonzero()[0]
            ev, rid = u[sel], run[sel]
            kept = (t[ev] - anchor[rid]) >= R
            keep[ev] = kept
            anchor[rid] = np.where(kept, t[ev], anchor[rid])
        # last kept time per pixel: its last event if kept, else the anchor of the run
        # that event ends (the run's last kept time)
        self.last_t[src] = t[last_idx]
        open_end = (~keep[last_idx]).nonzero()[0]
        if len(open_end):
            run_of = np.zeros(len(t), np.int64)
            run_of[u] = run
            self.last_t[src[open_end]] = anchor[run_of[last_idx[open_end]]]
        return keep
