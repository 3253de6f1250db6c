"""The simulator's inner loop compiled with numba: one sample interval, all pixels.

Why: the vectorised NumPy path makes about 35 array passes per event (repeat,
cumsum, gathers, a radix sort); a compiled loop over pixels makes one, and
sorts by time with a counting sort over the interval's microseconds. It is the
same model as :class:`evreid.events.simulator.EventSimulator` performed with
the same float64 operations in the same order (no fast-math, so no fused
multiply-add), hence the same events, bit for bit; tests hold the two paths to
that.

Covered: thresholds with mismatch, leak, shot noise (each noise event cuts its
pixel's segment at its instant), refractory period. Not covered (the caller
uses the NumPy path): the photoreceptor low-pass, whose ``exp`` is not
guaranteed to round like NumPy's.

Event order, as in the NumPy path: by time, ties by pixel (row-major), then in
order of generation within the pixel: pixels are generated in order, each in
time order, then a stable counting sort over the interval's microseconds.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:                      # pragma: no cover - numba is a dependency
    numba = None

#: Crossings within this fraction of a threshold count (the NumPy path uses it too).
CROSS_TOL = 1e-9
#: Above this many microseconds between two samples the counting sort gives way to
#: a merge sort.
_MAX_BUCKETS = 1 << 23


def available() -> bool:
    return numba is not None


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True, error_model="numpy")

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _emit(A, B, m, pol, last, R, t_a, t_b, x, y, n, ev_t, ev_x, ev_y, ev_pol):
        """The ``m`` crossings of one segment at times rint(A + k*B), k = 1..m, through
        the refractory filter into the buffers; returns (count, last kept time).

        Branch-free: every crossing is written and a dropped one is overwritten by the
        next (the count only advances when kept). Inlined where it is called: a real
        call per pixel would cost reference counting on the arrays.
        """
        for k in range(1, m + 1):
            t = np.int64(np.rint(A + np.float64(k) * B))
            t = min(max(t, t_a + 1), t_b)
            keep = R == 0 or t - last >= R
            last = t if keep else last
            ev_t[n] = t
            ev_x[n] = x
            ev_y[n] = y
            ev_pol[n] = pol
            n += keep
        return n, last

    @_jit
    def _generate(La, Lb, ref_in, ref_out, cp, cm, neg_cm, leak_per_us, last_in, last_out,
                  t_a, t_b, R, noise_head, noise_t, noise_pol, noise_next, width, ev_t,
                  ev_x, ev_y, ev_pol, scratch_count, scratch_a, scratch_b, scratch_pol, active):
        """Events of (t_a, t_b] for every pixel, pixel-major, into the buffers; the
        state after the interval (reference levels, last kept event times) goes to
        ``ref_out`` / ``last_out``, the inputs stay as they were (so an interval that
        overflows the buffers can be redone). Returns the count, or -1 on overflow.
        ``scratch_*``, ``active``: per-pixel work arrays.

        ``noise_t`` / ``noise_pol``: the interval's noise events, linked per pixel in time
        order by ``noise_head`` (each pixel's first, or -1) and ``noise_next`` (the next,
        or -1); see ``_link_noise``. Empty ``noise_t`` means no noise.

        A pixel's interval is cut into segments at its noise events; each segment
        mirrors ``EventSimulator._step`` / ``_crossings`` / ``_refractory`` for that
        pixel. Helpers are inlined: a real call per pixel that passes arrays costs
        reference counting, several times the work itself.
        """
        P = La.shape[0]
        capacity = ev_t.shape[0]
        n = 0
        dt = np.float64(t_b - t_a)
        t_a_f = np.float64(t_a)
        noisy = noise_t.shape[0] > 0
        leaky = leak_per_us.shape[0] > 0
        # Pass 1, over every pixel without branches (so it vectorises): a pixel's single
        # segment (t_a, t_b] -- its crossing count, end state and the line A + k*B its
        # event times lie on. Pass 2 emits the events, and redoes pixels with noise.
        # The arithmetic is the noisy path's, written out again on purpose: through a
        # shared helper this loop no longer vectorises and the kernel is 2.5x slower.
        crossings, line_a, line_b, polarity = scratch_count, scratch_a, scratch_b, scratch_pol
        for i in range(P):
            r = ref_in[i]
            d1 = Lb[i] - r
            r_end = r
            if leaky:
                drift = leak_per_us[i] * dt
                d1 += drift
                r_end = r - drift
            y_on = d1 / cp[i]
            y_on += CROSS_TOL
            y_off = d1 / neg_cm[i]
            y_off += CROSS_TOL
            on = y_on >= 1.0
            fires = on or y_off >= 1.0
            c_f = np.floor(y_on) if on else np.floor(y_off)
            c = cp[i] if on else cm[i]
            sgn = 1.0 if on else -1.0
            ref_out[i] = r_end + sgn * (c_f * c) if fires else r_end
            last_out[i] = last_in[i]
            e1 = sgn * d1
            e0 = min(sgn * (La[i] - r), c)        # a level already passed fires at t_a
            span = e1 - e0
            inv = dt / span if span > 0 else 0.0
            line_a[i] = t_a_f - e0 * inv
            line_b[i] = c * inv
            polarity[i] = 1 if on else -1
            crossings[i] = np.int64(c_f) if fires else 0
        # The pixels with work for pass 2, in pixel order: a loop over them alone has no
        # branch on "does this pixel fire", which most pixels do not (and mispredict).
        n_active = 0
        for i in range(P):
            busy = crossings[i] > 0
            if noisy:
                busy = busy | (noise_head[i] >= 0)
            active[n_active] = i
            n_active += busy
        for a in range(n_active):
            i = active[a]
            y = i // width
            x = i - y * width
            j = noise_head[i] if noisy else -1
            if j < 0:
                m = crossings[i]
                if n + m > capacity:
                    return -1
                A = line_a[i]
                B = line_b[i]
                pol = polarity[i]
                last = last_in[i]
                n, last = _emit(A, B, m, pol, last, R, t_a, t_b, x, y, n, ev_t, ev_x, ev_y,
                                ev_pol)
                last_out[i] = last
                continue
            # a pixel with noise: its segments one by one (as ``_split_at_noise``)
            t0 = t_a_f
            u0 = La[i]
            ref = ref_in[i]
            last = last_in[i]
            while True:
                # a segment up to the pixel's next noise event j, or to t_b after the last
                if j >= 0:
                    tn = np.float64(noise_t[j])
                    u1 = La[i] + (Lb[i] - La[i]) * ((tn - t_a) / dt)
                    h = tn - t0
                else:
                    u1 = Lb[i]
                    h = t_b - t0
                r = ref
                d1 = u1 - r
                if leaky:
                    drift = leak_per_us[i] * h
                    d1 += drift
                    ref = r - drift
                y_on = d1 / cp[i]
                y_on += CROSS_TOL
                y_off = d1 / neg_cm[i]
                y_off += CROSS_TOL
                count = 0
                if y_on >= 1.0:
                    count_f = np.floor(y_on)
                    c = cp[i]
                    sgn = 1.0
                    count = np.int64(count_f)
                elif y_off >= 1.0:
                    count_f = np.floor(y_off)
                    c = cm[i]
                    sgn = -1.0
                    count = np.int64(count_f)
                if count > 0:
                    ref = ref + sgn * (count_f * c)
                    if n + count > capacity:
                        return -1
                    e1 = sgn * d1
                    e0 = min(sgn * (u0 - r), c)      # a level already passed fires at t0
                    span = e1 - e0
                    inv = h / span if span > 0 else 0.0
                    A = t0 - e0 * inv
                    B = c * inv
                    pol = np.int8(1) if sgn > 0 else np.int8(-1)
                    n, last = _emit(A, B, count, pol, last, R, t_a, t_b, x, y, n, ev_t, ev_x,
                                    ev_y, ev_pol)
                if j < 0:
                    break
                # the noise event resets its pixel, kept or not
                ref = ref + (cp[i] if noise_pol[j] > 0 else -cm[i])
                tn_i = noise_t[j]
                if R == 0 or tn_i - last >= R:
                    if R > 0:
                        last = tn_i
                    if n + 1 > capacity:
                        return -1
                    ev_t[n] = tn_i
                    ev_x[n] = x
                    ev_y[n] = y
                    ev_pol[n] = noise_pol[j]
                    n += 1
                t0 = tn
                u0 = u1
                j = noise_next[j]
            ref_out[i] = ref
            last_out[i] = last
        return n

    @_jit
    def _write_sorted(n, t_a, ev_t, ev_x, ev_y, ev_pol, hist, out_t, out_x, out_y, out_p,
                      offset):
        """The first ``n`` buffered events, stably sorted by time, into ``out_*`` from
        ``offset`` on.

        ``hist``: zeroed counters, one per microsecond of the interval (counting sort;
        left zeroed), or empty (merge sort, for very long intervals).
        """
        if hist.shape[0] == 0:
            order = np.argsort(ev_t[:n], kind="mergesort")
            for k in range(n):
                e = order[k]
                dst = offset + k
                out_t[dst] = ev_t[e]
                out_x[dst] = ev_x[e]
                out_y[dst] = ev_y[e]
                out_p[dst] = ev_pol[e]
            return
        for e in range(n):
            hist[ev_t[e] - t_a] += 1
        # hist[k] counts events at t_a + k (k >= 1): turn it into each slot's first index
        total = np.int32(0)           # int32 (an interval's count): half the cache lines
        for k in range(hist.shape[0]):
            count = hist[k]
            hist[k] = total
            total += count
        for e in range(n):
            key = ev_t[e] - t_a
            slot = hist[key]
            hist[key] = slot + 1
            dst = offset + slot
            out_t[dst] = ev_t[e]
            out_x[dst] = ev_x[e]
            out_y[dst] = ev_y[e]
            out_p[dst] = ev_pol[e]
        hist[:] = 0                              # ready for the next interval

    @_jit
    def _link_noise(pix, u, t_a, t_b, head):
        """Shot-noise events from their draws (``pix``, then ``u``: one uniform for the
        time and one for the polarity of each, as ``EventSimulator._shot_noise`` turns
        them into events), linked per pixel in time order, ties in draw order (as the
        NumPy path ranks them): ``head[pixel]`` (-1 where none) is set to each pixel's
        first. Returns (times, polarities, next-in-pixel or -1)."""
        n = pix.shape[0]
        dt = np.float64(t_b - t_a)
        noise_t = np.empty(n, np.int64)
        noise_pol = np.empty(n, np.int8)
        nxt = np.empty(n, np.int64)
        for e in range(n):
            t = t_b - np.int64(np.floor(u[e] * dt))
            noise_t[e] = t
            noise_pol[e] = 1 if u[n + e] < 0.5 else -1
            i = pix[e]
            prev = -1
            cur = head[i]
            while cur >= 0 and noise_t[cur] <= t:
                prev = cur
                cur = nxt[cur]
            nxt[e] = cur
            if prev < 0:
                head[i] = e
            else:
                nxt[prev] = e
        return noise_t, noise_pol, nxt

    @_jit
    def _gather(table, values, out):
        for i in range(values.shape[0]):
            out[i] = table[values[i]]

    @_jit
    def _unlink(pix, head):
        for e in range(pix.shape[0]):
            head[pix[e]] = -1


class Buffers:
    """Scratch buffers of one simulator: events (grown when an interval overflows them)
    and a spare copy of the per-pixel state, swapped with the live one each interval."""

    def __init__(self, capacity: int, pixels: int) -> None:
        self.allocate(capacity)
        self.ref = np.empty(pixels, np.float64)
        self.last_t = np.empty(pixels, np.int64)
        self.count = np.empty(pixels, np.int64)
        self.line_a = np.empty(pixels, np.float64)
        self.line_b = np.empty(pixels, np.float64)
        self.polarity = np.empty(pixels, np.int8)
        self.active = np.empty(pixels, np.int32)
        self.noise_head = np.full(pixels, -1, np.int64)
        self._logs = [np.empty(pixels, np.float64), np.empty(pixels, np.float64)]
        self._hist = np.zeros(0, np.int32)

    def log_of(self, table: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """``table[frame]``, flat, in one of two arrays used in turn: a frame's log
        intensity must outlive the next frame's (it is that interval's start), not more."""
        self._logs.reverse()
        out = self._logs[0]
        _gather(table, frame.reshape(-1), out)
        return out

    def histogram(self, span: int) -> np.ndarray:
        """Zeroed counters for the microseconds 0..span of an interval (kept between
        intervals: the sort leaves them zeroed), or an empty array past _MAX_BUCKETS."""
        if span > _MAX_BUCKETS:
            return np.zeros(0, np.int32)
        if len(self._hist) < span + 1:
            self._hist = np.zeros(span + 1, np.int32)
        return self._hist[:span + 1]

    def allocate(self, capacity: int) -> None:
        self.t = np.empty(capacity, np.int64)
        self.x = np.empty(capacity, np.int16)
        self.y = np.empty(capacity, np.int16)
        self.pol = np.empty(capacity, np.int8)


class EventSink:
    """Output arrays that sorted intervals are written into end to end, grown as needed;
    one per video spares a copy of every event (and the page faults of fresh arrays)."""

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self.t = np.empty(capacity, np.int64)
        self.x = np.empty(capacity, np.int16)
        self.y = np.empty(capacity, np.int16)
        self.p = np.empty(capacity, np.int8)

    def reserve(self, n: int) -> None:
        """Room for ``n`` more events."""
        if self.size + n <= len(self.t):
            return
        capacity = max(2 * len(self.t), self.size + n)
        for name in ("t", "x", "y", "p"):
            old = getattr(self, name)
            new = np.empty(capacity, old.dtype)
            new[:self.size] = old[:self.size]
            setattr(self, name, new)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t, x, y, p) of the events written, trimmed in place (the sink is spent)."""
        for name in ("t", "x", "y", "p"):
            array = getattr(self, name)
            if len(array) != self.size:
                array.resize(self.size, refcheck=False)    # realloc: no copy to keep
        return self.t, self.x, self.y, self.p


def run_interval(La: np.ndarray, Lb: np.ndarray, ref: np.ndarray, cp: np.ndarray,
                 cm: np.ndarray, neg_cm: np.ndarray, leak_per_us: np.ndarray,
                 last_t: np.ndarray, t_a: int, t_b: int, refractory_us: int,
                 noise: tuple[np.ndarray, np.ndarray] | None, width: int,
                 buffers: Buffers, sink: EventSink) -> tuple[np.ndarray, np.ndarray]:
    """Writes the sorted events of the interval (t_a, t_b] into ``sink``; returns the new
    ``ref`` and ``last_t`` (the spare arrays of ``buffers``; the old ones become the spares).

    ``leak_per_us``: per pixel, or empty for no leak. ``noise``: shot-noise draws
    (pixels, uniforms) as ``_link_noise`` takes them, or None. The event buffers are
    grown (and the interval redone) when the interval has more events than they hold.
    """
    if noise is None:
        noise_t, noise_pol, noise_next = _NO_NOISE
    else:
        noise_t, noise_pol, noise_next = _link_noise(noise[0], noise[1], t_a, t_b,
                                                     buffers.noise_head)
    new_ref, new_last = buffers.ref, buffers.last_t
    while True:
        n = _generate(La, Lb, ref, new_ref, cp, cm, neg_cm, leak_per_us, last_t, new_last,
                      t_a, t_b, refractory_us, buffers.noise_head, noise_t, noise_pol,
                      noise_next, width,
                      buffers.t, buffers.x, buffers.y, buffers.pol, buffers.count,
                      buffers.line_a, buffers.line_b, buffers.polarity, buffers.active)
        if n >= 0:
            break
        buffers.allocate(2 * len(buffers.t))
    if noise is not None:
        _unlink(noise[0], buffers.noise_head)
    buffers.ref, buffers.last_t = ref, last_t
    sink.reserve(n)
    _write_sorted(n, t_a, buffers.t, buffers.x, buffers.y, buffers.pol,
                  buffers.histogram(t_b - t_a), sink.t, sink.x, sink.y, sink.p, sink.size)
    sink.size += n
    return new_ref, new_last


_NO_NOISE = (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int64))
