"""The pixel model compiled with numba: sample intervals, all pixels, in plain numba.

Why: the NumPy reference (:class:`evreid.events.pixel_model.PixelModel`) makes tens
of array passes per event (repeat, cumsum, gathers, sorts). Here a branch-free pass
over all pixels finds each one's crossings, a second pass over the pixels that fire
(or have noise) writes their events, and a radix sort on the interval's microseconds
orders them; the pixel state is advanced in place. ``run_interval`` does one
interval; ``run_video`` every interval of a grey uint8 video in one compiled call (no
Python between frames). It is the reference's model performed with the same float64
operations in the same order (no fast-math, so no fused multiply-add), hence the same
events, bit for bit; tests hold the two to that. How fast, and what each device
below bought: docs/SIMULATOR.md.

Covered: thresholds with mismatch, leak, shot noise (each noise event cuts its
pixel's segment at its instant), refractory period. Not covered (the caller
uses the NumPy path): the photoreceptor low-pass, whose ``exp`` is not
guaranteed to round like NumPy's.

Event order, as in the NumPy path: by time, ties by pixel (row-major), then in
order of generation within the pixel: pixels are generated in order, each in
time order, then a stable radix sort on the interval's microseconds.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from evreid.events.pixel_model import CROSS_TOL

#: From this many microseconds between two samples on, the radix sort gives way to a
#: merge sort.
_RADIX_SPAN = 1 << 24
#: The longest interval the kernel takes (about 35.8 minutes): event times are buffered
#: as int32 microseconds after its start. ``EventSimulator`` gives longer ones to NumPy.
MAX_SPAN = int(np.iinfo(np.int32).max)
#: A segment's first crossings are written without a branch on its count (most
#: firing pixels cross once or twice).
_SHORT = 2
#: Events are buffered as int64 words, (microseconds after the interval's start) << 32 |
#: tag, which the sort orders as they are; the tag packs x in bits 0-15, y in bits 16-30
#: and an OFF polarity in the sign bit (``_decode``).
_TAG_OFF = -2147483648
#: Eight busy bytes (0 or 1, the first pixel lowest) times this, shifted right by 56:
#: bit k set if pixel k is busy (the partial products never overlap, so never carry).
_BYTE_BITS = np.uint64(0x0102040810204080)
#: For each 8-bit mask: the positions of its set bits, lowest first (then zeros) ...
_BUSY_AT = np.array([[k for k in range(8) if mask >> k & 1] + [0] * (8 - bin(mask).count("1"))
                     for mask in range(256)], np.int32)
#: ... and how many there are.
_BUSY_COUNT = np.array([bin(mask).count("1") for mask in range(256)], np.int64)


_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# Hot loops index arrays with unsigned integers: numba then leaves out the
# negative-index wraparound (a shift, a mask and an add on every access), which
# is measurable in pass 2 and the sort.
_u = np.uint64

@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _word(key, tag):
    """An event's buffer word: its time key (0 <= key <= MAX_SPAN) over its tag."""
    return (np.int64(key) << 32) | (np.int64(tag) & 0xFFFFFFFF)

@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _emit(A, B, m, tag, last, R, low, t_a, t_b, n, words):
    """The ``m`` crossings of one segment at times rint(A + k*B), k = 1..m, clamped
    to [low, t_b], through the refractory filter into ``words``; returns (count, last
    kept time). ``low``: the segment's start (a whole microsecond, after ``t_a``):
    levels the input had passed when the segment began fire then.

    Every crossing is written and a dropped one is overwritten by the next (the
    count only advances when kept); the first ``_SHORT`` slots are written whatever
    ``m`` is (the caller leaves room), so they need no branch on it. Inlined where it
    is called: a real call per pixel would cost reference counting on the arrays.
    """
    for k in range(1, _SHORT + 1):
        t = np.int64(np.rint(A + np.float64(k) * B))
        t = min(max(t, low), t_b)
        keep = (k <= m) & ((R == 0) | (t - last >= R))
        last = t if keep else last
        words[_u(n)] = _word(t - t_a, tag)
        n += keep
    for k in range(_SHORT + 1, m + 1):
        t = np.int64(np.rint(A + np.float64(k) * B))
        t = min(max(t, low), t_b)
        keep = R == 0 or t - last >= R
        last = t if keep else last
        words[_u(n)] = _word(t - t_a, tag)
        n += keep
    return n, last

@_jit
def _pass1(La, Lb, ref, cp, cm, leak_per_us, t_a, t_b, noise_pix, crossings, line_a,
           line_b, busy, active):
    """Pass 1 of an interval (t_a, t_b], over every pixel: the single-segment answer
    for each -- its signed crossing count, end reference level (written to ``ref``)
    and the line A + k*B its event times lie on; then the list of pixels with work
    for pass 2 (``active``, in pixel order): those that fire and those with noise
    (``noise_pix``). Returns their number. ``busy``: work space of one byte per
    pixel, rounded up to whole 8-byte words, the bytes past the pixels zero."""
    P = La.shape[0]
    dt = np.float64(t_b - t_a)
    t_a_f = np.float64(t_a)
    leaky = leak_per_us.shape[0] > 0
    # Over every pixel without branches (so it vectorises): a pixel's single
    # segment (t_a, t_b] -- its signed crossing count, end reference and the line
    # A + k*B its event times lie on. Pass 2 emits the events, and redoes pixels with
    # noise. The arithmetic is the noisy path's, written out again on purpose:
    # through a shared helper this loop no longer vectorises. It touches as few
    # bytes per pixel as it can: memory traffic is most of its time.
    for i_s in range(P):
        i = _u(i_s)
        r = ref[i]
        d1 = Lb[i] - r
        r_end = r
        if leaky:
            drift = leak_per_us[i] * dt
            d1 += drift
            r_end = r - drift
        # one division, not the NumPy path's two: d1 / C+ can reach 1 only when d1 > 0
        # and d1 / (-C-) only when d1 <= 0, so the other one never decides
        on = d1 > 0.0
        y = d1 / (cp[i] if on else -cm[i])   # exactly d1 / (-C-), as the NumPy path
        y += CROSS_TOL
        fires = y >= 1.0
        c_f = np.floor(y)
        c = cp[i] if on else cm[i]
        sgn = 1.0 if on else -1.0
        ref[i] = r_end + sgn * (c_f * c) if fires else r_end
        e1 = sgn * d1
        e0 = sgn * (La[i] - r)    # levels passed before t_a: times clamped to t_a + 1
        span = e1 - e0
        inv = dt / span if span > 0 else 0.0
        line_a[i] = t_a_f - e0 * inv
        line_b[i] = c * inv
        count = np.int32(c_f) if fires else np.int32(0)
        crossings[i] = count if on else -count
        busy[i] = fires
    for e in range(noise_pix.shape[0]):
        busy[_u(noise_pix[e])] = True
    # The pixels with work for pass 2, in pixel order: a loop over them alone has no
    # branch on "does this pixel fire", which most pixels do not (and mispredict).
    # Eight pixels at a time: their busy bytes as one word, packed into a bit mask by
    # one multiplication, whose table entry lists the busy ones (written
    # unconditionally: ``active`` has 8 slots of room at its end).
    n_active = 0
    busy_words = busy.view(np.uint64)
    for w in range(busy_words.shape[0]):
        mask = _u((busy_words[_u(w)] * _BYTE_BITS) >> np.uint64(56))
        base = np.int32(8 * w)
        for k in range(8):
            active[_u(n_active + k)] = base + _BUSY_AT[mask, k]
        n_active += _BUSY_COUNT[mask]
    return n_active

@_jit
def _pass2(start, n, n_active, La, Lb, ref, cp, cm, leak_per_us, last, t_a, t_b, R,
           noise_head, noise_t, noise_pol, noise_next, noise_ref, tags, words,
           crossings, line_a, line_b, active):
    """Pass 2 of an interval: the events of the pixels ``active[start:n_active]``,
    pixel-major, each pixel's in time order, into ``words`` from index ``n`` on;
    advances those pixels' state (``ref``, ``last``) in place. Returns (events in
    ``words``, where it stopped): it stops before a pixel whose events do not fit,
    so the caller can grow ``words`` and go on from there.

    ``noise_t`` / ``noise_pol``: the interval's noise events, linked per pixel in time
    order by ``noise_head`` (each pixel's first, or -1) and ``noise_next`` (the next,
    or -1); ``noise_ref`` holds, at each pixel's first, the pixel's reference level
    before the interval (pass 1 has overwritten ``ref``). See ``_link_noise``. Empty
    ``noise_t`` means no noise. ``tags``: each pixel's ON tag (``pixel_tags``).

    A pixel's interval is cut into segments at its noise events; each segment
    mirrors ``EventSimulator._step`` / ``_crossings`` / ``_refractory`` for that
    pixel. Helpers are inlined: a real call per pixel that passes arrays costs
    reference counting, several times the work itself.
    """
    capacity = words.shape[0]
    dt = np.float64(t_b - t_a)
    t_a_f = np.float64(t_a)
    noisy = noise_t.shape[0] > 0
    leaky = leak_per_us.shape[0] > 0
    a = start
    while a < n_active:
        # the run of pixels up to the next one with noise, in a loop of its own: it
        # keeps its values in registers (one loop with both kinds spilled them)
        while a < n_active:
            i = _u(active[_u(a)])
            if noisy and noise_head[i] >= 0:
                break
            signed = crossings[i]
            m = np.int64(abs(signed))
            if n + max(m, _SHORT) > capacity:
                return n, a
            tag = tags[i] if signed > 0 else tags[i] | np.int32(_TAG_OFF)
            a += 1
            A = line_a[i]
            B = line_b[i]
            n, last[i] = _emit(A, B, m, tag, last[i], R, t_a + 1, t_a, t_b, n, words)
        if a >= n_active:
            break
        i = _u(active[_u(a)])
        tag_on = tags[i]
        tag_off = tag_on | np.int32(_TAG_OFF)
        j = noise_head[i]
        # a pixel with noise: its segments one by one (as ``_split_at_noise``); its
        # state is committed at the end (a pixel that does not fit is left as it was)
        n_pixel = n
        t0 = t_a_f
        u0 = La[i]
        r_now = noise_ref[j]                 # pass 1 has overwritten ref[i]
        last_i = last[i]
        while True:
            # a segment up to the pixel's next noise event j, or to t_b after the last
            if j >= 0:
                tn = np.float64(noise_t[j])
                u1 = La[i] + (Lb[i] - La[i]) * ((tn - t_a) / dt)
                h = tn - t0
            else:
                u1 = Lb[i]
                h = t_b - t0
            r = r_now
            d1 = u1 - r
            if leaky:
                drift = leak_per_us[i] * h
                d1 += drift
                r_now = r - drift
            y_on = d1 / cp[i]
            y_on += CROSS_TOL
            y_off = d1 / -cm[i]
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
                r_now = r_now + sgn * (count_f * c)
                if n + max(count, _SHORT) > capacity:
                    return n_pixel, a
                e1 = sgn * d1
                e0 = sgn * (u0 - r)   # levels passed at t0 (a reset's jump) fire then
                span = e1 - e0
                inv = h / span if span > 0 else 0.0
                A = t0 - e0 * inv
                B = c * inv
                tag = tag_on if sgn > 0 else tag_off
                n, last_i = _emit(A, B, count, tag, last_i, R,
                                  max(np.int64(t0), t_a + 1), t_a, t_b, n, words)
            if j < 0:
                break
            # the noise event resets its pixel, kept or not
            r_now = r_now + (cp[i] if noise_pol[j] > 0 else -cm[i])
            tn_i = noise_t[j]
            if R == 0 or tn_i - last_i >= R:
                if R > 0:
                    last_i = tn_i
                if n + 1 > capacity:
                    return n_pixel, a
                words[n] = _word(tn_i - t_a, tag_on if noise_pol[j] > 0 else tag_off)
                n += 1
            t0 = tn
            u0 = u1
            j = noise_next[j]
        ref[i] = r_now
        last[i] = last_i
        a += 1
    return n, n_active

@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _put(v, t_a, at, out_t, out_x, out_y, out_p):
    """Event word ``v`` (layout at ``_TAG_OFF``) as an event at ``at`` of the output."""
    out_t[at] = t_a + (v >> 32)
    out_x[at] = np.int16(v & 0xFFFF)
    out_y[at] = np.int16((v >> 16) & 0x7FFF)
    out_p[at] = np.int8(1 - 2 * ((v >> 31) & 1))

@_jit
def _write_sorted(n, t_a, span, words, work, out_t, out_x, out_y, out_p, offset):
    """The first ``n`` buffered event words, stably sorted by time, as events into
    ``out_*`` from ``offset`` on (``words`` is reused as work space).

    An LSD radix sort on the microsecond within the interval, one byte a pass (two
    passes for up to 65,535 us, three up to 2**24), between ``words`` and ``work``:
    each pass scatters into 256 sequential runs, which stay in cache (a counting sort
    over every microsecond scatters at random), and the words are unpacked in a last
    sequential pass into the four outputs (cold memory: scattering straight there is
    dearer). Longer intervals take a merge sort.
    """
    if span >= _RADIX_SPAN:
        order = np.argsort(words[:n] >> 32, kind="mergesort")
        for k in range(n):
            _put(words[order[k]], t_a, offset + k, out_t, out_x, out_y, out_p)
        return
    three = span >= 65536
    passes = 3 if three else 2
    counts = np.zeros((passes, 256), np.int64)
    for e in range(n):
        key = words[_u(e)] >> 32
        counts[0, _u(key & 255)] += 1
        counts[1, _u((key >> 8) & 255)] += 1
        if three:
            counts[2, _u((key >> 16) & 255)] += 1
    for d in range(passes):
        total = np.int64(0)
        for k in range(256):
            c = counts[d, k]
            counts[d, k] = total
            total += c
    src, dst = words, work
    for d in range(passes):
        shift = 32 + 8 * d
        for e in range(n):
            v = src[_u(e)]
            digit = _u((v >> shift) & 255)
            at = counts[d, digit]
            counts[d, digit] = at + 1
            dst[_u(at)] = v
        src, dst = dst, src
    for e in range(n):
        _put(src[_u(e)], t_a, _u(offset + e), out_t, out_x, out_y, out_p)

@_jit
def _link_noise(noise_pix, head, ref, nxt, noise_ref):
    """Links an interval's shot-noise events (in time order, ties in draw order: as
    :class:`evreid.events._noise.ShotNoise` gives them) per pixel: ``head[pixel]``
    (-1 where none) to the pixel's first, ``nxt`` to the next of its pixel (or -1);
    ``noise_ref`` gets the pixel's ``ref`` (its level before the interval)."""
    for e in range(noise_pix.shape[0]):
        i = noise_pix[e]
        nxt[e] = -1
        noise_ref[e] = ref[i]
        if head[i] < 0:
            head[i] = e
            continue
        prev = head[i]
        while nxt[prev] >= 0:
            prev = nxt[prev]
        nxt[prev] = e

@_jit
def _gather(table, values, out):
    for i in range(values.shape[0]):
        out[i] = table[values[i]]

@_jit
def _unlink(pix, head):
    for e in range(pix.shape[0]):
        head[pix[e]] = -1


@_jit
def _interval_words(La, Lb, ref, cp, cm, leak_per_us, last, t_a, t_b, R, noise_t,
                    noise_pix, noise_pol, noise_next, noise_ref, tags, words, b_head,
                    b_crossings, b_line_a, b_line_b, b_busy, b_active):
    """The events of the interval (t_a, t_b] as unsorted words (pixel-major), the
    pixel state advanced: noise links, pass 1, pass 2 (``words`` replaced by a larger
    array whenever it runs out of room). ``noise_*``: the interval's shot-noise
    events in time order (``noise_next`` / ``noise_ref``: work space of their
    length). Returns (events, words)."""
    _link_noise(noise_pix, b_head, ref, noise_next, noise_ref)
    n_active = _pass1(La, Lb, ref, cp, cm, leak_per_us, t_a, t_b, noise_pix, b_crossings,
                      b_line_a, b_line_b, b_busy, b_active)
    n, done = 0, 0
    while True:
        n, done = _pass2(done, n, n_active, La, Lb, ref, cp, cm, leak_per_us, last, t_a,
                         t_b, R, b_head, noise_t, noise_pol, noise_next, noise_ref, tags,
                         words, b_crossings, b_line_a, b_line_b, b_active)
        if done == n_active:
            break
        grown = np.empty(max(2 * words.shape[0], 1024), np.int64)
        grown[:n] = words[:n]
        words = grown
    _unlink(noise_pix, b_head)
    return n, words

@_jit
def _video(start, stop, c0, table, frames, times, La, Lb, ref, cp, cm, leak_per_us, last, R,
           noise_t, noise_pix, noise_pol, noise_next, noise_ref, tags, words, work,
           b_head, b_crossings, b_line_a, b_line_b, b_busy, b_active, out_t, out_x,
           out_y, out_p, size):
    """The intervals (times[k-1], times[k]], k = ``start`` .. ``stop`` - 1, of a video
    in one call: ``run_interval``'s work for each, frame ``k``'s log intensity gathered from
    ``table`` into ``Lb`` (``La`` holds frame k-1's; the two are swapped after each).

    ``frames``: [N, pixels] uint8; ``noise_*``: the video's shot-noise events in time
    order, ``c0`` the first one not yet used (``noise_next`` / ``noise_ref``: work
    space of their length). Returns (k, c, n, size, words, work): stopped at interval
    k, whose ``n`` events wait in ``words`` because the outputs lack room (k = ``stop``:
    all done), ``c`` the noise cursor after it, ``size`` the events in the outputs;
    ``words`` / ``work`` are replaced by larger arrays when they run out of room (the
    outputs are the caller's: it trims them to their final size).
    """
    pixels = frames.shape[1]
    for k in range(start, stop):
        t_a = times[k - 1]
        t_b = times[k]
        frame = frames[k]
        for i in range(pixels):
            Lb[_u(i)] = table[frame[_u(i)]]
        c1 = c0
        while c1 < noise_t.shape[0] and noise_t[c1] <= t_b:
            c1 += 1
        n, words = _interval_words(La, Lb, ref, cp, cm, leak_per_us, last, t_a, t_b, R,
                                   noise_t[c0:c1], noise_pix[c0:c1], noise_pol[c0:c1],
                                   noise_next[c0:c1], noise_ref[c0:c1], tags, words,
                                   b_head, b_crossings, b_line_a, b_line_b, b_busy,
                                   b_active)
        if work.shape[0] < n:
            work = np.empty(max(n, 2 * work.shape[0]), np.int64)
        if size + n > out_t.shape[0]:
            return k, c1, n, size, words, work
        _write_sorted(n, t_a, t_b - t_a, words, work, out_t, out_x, out_y, out_p, size)
        size += n
        La, Lb = Lb, La
        c0 = c1
    return stop, c0, 0, size, words, work


@functools.lru_cache(maxsize=8)
def pixel_tags(pixels: int, width: int) -> np.ndarray:
    """Each pixel's tag (layout at ``_TAG_OFF``) with ON polarity, row-major; read-only.
    Kept per sensor size: pass 2 looks a pixel's tag up instead of dividing its index."""
    index = np.arange(pixels, dtype=np.int32)
    tags = index % np.int32(width) | (index // np.int32(width)) << 16
    tags.flags.writeable = False
    return tags


class Buffers:
    """Work arrays of one simulator, reused every interval: the event words (grown when
    an interval has more events than they hold) and the sort's work space, pass 1's
    per-pixel results, the noise links, two log-intensity frames -- and the sensor's
    pixel tags."""

    def __init__(self, capacity: int, pixels: int, width: int) -> None:
        self.tags = pixel_tags(pixels, width)
        self.words = np.empty(capacity, np.int64)
        self.crossings = np.empty(pixels, np.int32)
        self.line_a = np.empty(pixels, np.float64)
        self.line_b = np.empty(pixels, np.float64)
        self.active = np.empty(pixels + 8, np.int32)
        self.busy = np.zeros(-(-pixels // 8) * 8, np.bool_)
        self.noise_head = np.full(pixels, -1, np.int64)
        self._logs = [np.empty(pixels, np.float64), np.empty(pixels, np.float64)]
        self._work = np.empty(0, np.int64)

    def sort_room(self, n: int) -> np.ndarray:
        """A work array of at least ``n`` words for the radix sort."""
        if len(self._work) < n:
            self._work = np.empty(max(n, 2 * len(self._work)), np.int64)
        return self._work

    def log_of(self, table: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """``table[frame]``, flat, in one of two arrays used in turn: a frame's log
        intensity must outlive the next frame's (it is that interval's start), not more."""
        self._logs.reverse()
        out = self._logs[0]
        _gather(table, frame.reshape(-1), out)
        return out


class EventSink:
    """Output arrays that sorted intervals are written into end to end, grown as needed;
    one per video spares a copy of every event (and the page faults of fresh arrays)."""

    _FIELDS = (("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8))

    def __init__(self, capacity: int) -> None:
        self.size = 0
        for name, dtype in self._FIELDS:
            setattr(self, name, np.empty(capacity, dtype))

    def reserve(self, n: int) -> None:
        """Room for ``n`` more events."""
        if self.size + n <= len(self.t):
            return
        capacity = max(2 * len(self.t), self.size + n)
        for name, dtype in self._FIELDS:
            old = getattr(self, name)
            new = np.empty(capacity, dtype)
            new[:self.size] = old[:self.size]
            setattr(self, name, new)

    def append(self, t: np.ndarray, pixel: np.ndarray, p: np.ndarray, width: int) -> None:
        """Events given as (t, flat pixel, polarity) -- from the NumPy path -- at the end;
        ``width``: the sensor's."""
        n = len(t)
        self.reserve(n)
        end = self.size + n
        self.t[self.size:end] = t
        self.y[self.size:end], self.x[self.size:end] = np.divmod(pixel, width)
        self.p[self.size:end] = p
        self.size = end

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t, x, y, p) of the events written, trimmed in place (the sink is spent)."""
        out = []
        for name, _ in self._FIELDS:
            array = getattr(self, name)
            if len(array) != self.size:
                array.resize(self.size, refcheck=False)     # realloc: no copy to keep
            out.append(array)
        return tuple(out)


def run_interval(La: np.ndarray, Lb: np.ndarray, ref: np.ndarray, cp: np.ndarray,
                 cm: np.ndarray, leak_per_us: np.ndarray, last_t: np.ndarray, t_a: int,
                 t_b: int, refractory_us: int,
                 noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                 buffers: Buffers, sink: EventSink) -> None:
    """Writes the sorted events of the interval (t_a, t_b] into ``sink`` and advances the
    pixel state (``ref``, ``last_t``) in place.

    ``leak_per_us``: per pixel, or empty for no leak. ``noise``: the interval's
    shot-noise events (t, pixel, polarity) in time order, or None.
    """
    if not 0 < t_b - t_a <= MAX_SPAN:
        raise ValueError(f"interval of {t_b - t_a} us: the kernel takes 1..{MAX_SPAN}")
    b = buffers
    n, b.words = _interval_words(La, Lb, ref, cp, cm, leak_per_us, last_t, t_a, t_b,
                                 refractory_us, *_noise_arrays(noise), b.tags, b.words,
                                 b.noise_head, b.crossings, b.line_a, b.line_b, b.busy,
                                 b.active)
    sink.reserve(n)
    _write_sorted(n, t_a, t_b - t_a, b.words, b.sort_room(n), sink.t, sink.x, sink.y, sink.p,
                  sink.size)
    sink.size += n



def run_video(table: np.ndarray, frames: np.ndarray, times: np.ndarray, L0: np.ndarray,
              ref: np.ndarray, cp: np.ndarray, cm: np.ndarray, leak_per_us: np.ndarray,
              last_t: np.ndarray, refractory_us: int,
              noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None, buffers: Buffers,
              sink: EventSink) -> np.ndarray:
    """``run_interval`` for every interval of a video, in one compiled call: writes the
    events of (times[0], times[-1]] into ``sink`` and advances the pixel state in place.

    ``frames``: [N, H, W] (or [N, pixels]) grey uint8, C-contiguous, ``table`` the log
    intensity of each of the 256 values; ``L0``: frame 0's log intensity, one of
    ``buffers``' two log arrays (as ``Buffers.log_of`` gives it); ``noise``: the shot-noise
    events of the whole span in time order, or None. Every interval must be 1 ..
    ``MAX_SPAN`` microseconds. Returns the last frame's log intensity, which ``buffers``
    keeps as its latest (the next ``log_of`` writes the other array). The output grows
    by ``sink.reserve``, between compiled calls, so that ``sink.arrays`` can trim it.
    """
    spans = np.diff(times)
    if len(spans) and not (spans.min() > 0 and spans.max() <= MAX_SPAN):
        raise ValueError(f"intervals of {spans.min()}..{spans.max()} us: the kernel takes "
                         f"1..{MAX_SPAN}")
    b = buffers
    La, Lb = L0, (b._logs[1] if L0 is b._logs[0] else b._logs[0])
    noise_t, noise_pix, noise_pol, noise_next, noise_ref = _noise_arrays(noise)
    flat = frames.reshape(len(frames), -1)
    N = len(frames)
    start, cursor = 1, 0
    while start < N:
        k, cursor, n, sink.size, b.words, b._work = _video(
            start, N, cursor, table, flat, times, La, Lb, ref, cp, cm, leak_per_us, last_t,
            refractory_us, noise_t, noise_pix, noise_pol, noise_next, noise_ref, b.tags,
            b.words, b._work, b.noise_head, b.crossings, b.line_a, b.line_b, b.busy,
            b.active, sink.t, sink.x, sink.y, sink.p, sink.size)
        if (k - start) % 2:
            La, Lb = Lb, La             # where the kernel's swaps left them
        if k == N:
            break
        # interval k's events wait in the words: room for them and the rest of the video
        # at the rate so far, then on from the next interval. An empty sink is sized by
        # the first interval (nothing to copy) with a wide margin: a video's later
        # intervals can run at a few times its rate, a late growth copies every event
        # so far, while room never written costs no memory traffic
        rate = 2.0 if k == 1 else 1.25
        sink.reserve(n + int((sink.size + n) * (N - 1 - k) * rate / k))
        _write_sorted(n, times[k - 1], times[k] - times[k - 1], b.words, b._work, sink.t,
                      sink.x, sink.y, sink.p, sink.size)
        sink.size += n
        La, Lb, start = Lb, La, k + 1
    b._logs = [La, Lb]
    return La


def _noise_arrays(noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None
                  ) -> tuple[np.ndarray, ...]:
    """(t, pixel, polarity, next-in-pixel, ref-at-first): shot-noise events in time order
    with the kernel's work space for linking them (empty arrays for no noise)."""
    if noise is None:
        return _NO_NOISE
    t, pixel, polarity = noise
    return t, pixel, polarity, np.empty(len(t), np.int64), np.empty(len(t), np.float64)


_NO_NOISE = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8),
             np.zeros(0, np.int64), np.zeros(0, np.float64))
