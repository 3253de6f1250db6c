"""The clip-indexed event store (``.evs``): one file per tracklet, one chunk per frame.

Why: a training clip uses T frame windows out of a tracklet's tens; the old
``.npz`` cache made every clip inflate the whole tracklet. Here every frame
window ``(t_{k-1}, t_k]`` is its own chunk of zstd-compressed streams, found
through a byte-offset table, so a clip reads and decodes only its T chunks.

Why this coding: in a simulated (and a real) sensor the events of one pixel in
one frame window are a short run of one polarity whose times are close to an
arithmetic progression (level crossings of a nearly linear log intensity).
Ordered pixel-major within the window, the pixel index becomes an occupancy
bitmap, the polarity one bit per run, and the times the first and last time of
each run plus small residuals of the inner events against the straight line
between them. That halves the old cache's bytes for exactly the same events.

The container is a standard *uncompressed* ``.npz`` (every member a ``.npy``):
``np.load`` opens it anywhere, and evreid reads a frame's bytes straight from
the file at the payload member's offset (no decompression of the rest). The
full layout is documented in ``docs/EVENT_STORE.md``.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evreid.errors import EvreidError
from evreid.events.types import Events
from evreid.utils import atomic_open, npy_bytes

STORE_SUFFIX = ".evs"
STORE_FORMAT = "evreid-event-store"
#: the only version written and read. (A version 2 -- one chunk per window, bit-packed
#: end gaps, 3.6 % smaller -- was tried at 3591bfc and dropped: its clip read stayed
#: slower, 3.3 against 2.8 ms, because each gap's bit width hangs on a division.)
STORE_VERSION = 1
#: ten zstd frames per window, in payload order
STREAMS = ("mask", "n", "n_big", "pol", "pol_events", "t_single", "t_ends", "inner",
              "inner_big", "order")
_S = len(STREAMS)
#: the skewed streams (mask, run lengths, polarity, residuals): level 12 both shrinks
#: them and speeds their decoding against level 3 (fewer, longer matches: 0.45 -> 0.33
#: ms per T = 8 mini_mars clip, 11.7 -> 10.5 KiB per frame) for ~3.5 ms more writing
#: per frame; levels past 15 write slower and read no faster
_ZSTD_LEVEL = 12
#: the time streams (``t_single``, ``t_ends``: byte planes of near-uniform times) gain
#: ~1 % from zstd's entropy coding but cost a third of a clip's decompression; a
#: negative level stores their literals raw, which decode at memory speed (0.19 ->
#: 0.015 ms per T = 8 mini_mars clip for 0.6 KiB more per frame). Still zstd frames
_ZSTD_LEVEL_TIMES = -1
_TIME_STREAMS = (5, 6)
#: reciprocal rounded up, and the dividends below which a product with it floors exactly
_UP = 1.0 + 2.0 ** -40
_EXACT_BELOW = 1 << 39
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _zstd():
    try:
        import zstandard
    except ImportError:  # a declared dependency; this only guards broken installs
        raise EvreidError("the .evs event store needs the 'zstandard' package: "
                          "pip install zstandard") from None
    return zstandard


# ---------------------------------------------------------------------------------------
# one frame window <-> its streams
# ---------------------------------------------------------------------------------------
def _planes(values: np.ndarray, dtype: str) -> bytes:
    """Little-endian bytes of ``values`` regrouped by byte significance (compresses
    far better: the high bytes of small numbers are mostly zero)."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    return arr.view(np.uint8).reshape(-1, arr.itemsize).T.tobytes()


def _unplanes(raw: bytes, dtype: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if len(raw) % size:
        raise ValueError(f"a {dtype} stream of {len(raw)} bytes")
    planes = np.frombuffer(raw, np.uint8).reshape(size, -1)
    return np.ascontiguousarray(planes.T).view(dtype).ravel()


def encode_frame(t_rel: np.ndarray, pix: np.ndarray, on: np.ndarray, npix: int,
                 time_dtype: str) -> list[bytes]:
    """Uncompressed streams (see :data:`STREAMS`) of one window's events.

    ``t_rel`` = time minus the window start (1..duration), ``pix`` = y * width + x,
    ``on`` = polarity > 0, all in the stored (time) order.
    """
    count = len(t_rel)
    if count == 0:
        return [b""] * _S
    if np.any(np.diff(t_rel) < 0):
        order = np.lexsort((t_rel, pix))        # pixel-major, time within a pixel
        canonical = False
    else:
        # time-sorted input: a stable sort by pixel keeps time order within a pixel
        # (16-bit keys take NumPy's radix sort: ~10x faster than a merge sort)
        key = pix.astype(np.uint16) if npix <= 1 << 16 else pix
        order = np.argsort(key, kind="stable")
        # the decoder restores time order by a stable sort on (time, pixel); keep the
        # permutation only when the events were in some other order (ties unsorted)
        dt, dp = np.diff(t_rel), np.diff(pix)
        canonical = bool(np.all((dt > 0) | (dp >= 0)))
    pm_pix, pm_t, pm_on = pix[order], t_rel[order], on[order]
    starts = np.flatnonzero(np.concatenate([[True], pm_pix[1:] != pm_pix[:-1]]))
    n = np.diff(np.append(starts, count))
    mask = np.zeros(npix, bool)
    mask[pm_pix[starts]] = True
    run_on = pm_on[starts]
    mixed = not np.array_equal(np.repeat(run_on, n), pm_on)
    single = n == 1
    multi = ~single
    first = pm_t[starts[multi]]
    span = pm_t[starts[multi] + n[multi] - 1] - first
    inner = b""
    inner_big = b""
    if np.any(n >= 3):
        runs = np.flatnonzero(n >= 3)
        rn = n[runs]
        k = rn - 2                                 # inner events per run
        rid = np.repeat(np.arange(len(runs)), k)
        j = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k) + 1
        r_first = pm_t[starts[runs]][rid]
        r_span = pm_t[starts[runs] + rn - 1][rid] - r_first
        denom = rn[rid] - 1
        pred = r_first + (j * r_span + denom // 2) // denom
        res = pm_t[starts[runs][rid] + j] - pred
        big = (res < -127) | (res > 127)
        small = np.where(big, -128, res).astype(np.int8)
        inner = small.tobytes()
        inner_big = res[big].astype("<i8").tobytes()
    return [
        np.packbits(mask).tobytes(),
        np.minimum(n, 255).astype(np.uint8).tobytes(),
        n[n >= 255].astype("<u4").tobytes(),
        np.packbits(run_on).tobytes(),
        np.packbits(pm_on).tobytes() if mixed else b"",
        _planes(pm_t[starts[single]], time_dtype),
        _planes(np.concatenate([first, span]), time_dtype),
        inner,
        inner_big,
        b"" if canonical else order.astype("<u4").tobytes(),
    ]


def decode_frame(streams: list[bytes], npix: int, time_dtype: str, *,
                 time_order: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t_rel int64, pix int64, on bool) of one window from its uncompressed streams.

    ``time_order=False`` leaves the events pixel-major (enough for histograms, and
    cheaper); ``True`` restores the stored order exactly.
    """
    mask, n8, n_big, pol, pol_ev, t_single, t_ends, inner, inner_big, order = streams
    if not mask:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    run_pix = np.flatnonzero(np.unpackbits(np.frombuffer(mask, np.uint8), count=npix))
    n = np.frombuffer(n8, np.uint8).astype(np.int64)
    if len(n) != len(run_pix):
        raise ValueError(f"{len(n)} run lengths for {len(run_pix)} active pixels")
    if n_big:
        n[n == 255] = np.frombuffer(n_big, "<u4")
    count = int(n.sum())
    pix = np.repeat(run_pix, n)
    if pol_ev:
        on = np.unpackbits(np.frombuffer(pol_ev, np.uint8), count=count).astype(bool)
    else:
        on = np.repeat(np.unpackbits(np.frombuffer(pol, np.uint8), count=len(n)).astype(bool), n)
    starts = np.cumsum(n) - n
    t = np.empty(count, np.int64)
    single = n == 1
    t[starts[single]] = _unplanes(t_single, time_dtype)
    multi = ~single
    ends = _unplanes(t_ends, time_dtype).astype(np.int64)
    n_multi = int(multi.sum())
    if len(ends) != 2 * n_multi:
        raise ValueError("run start/end times do not match the run lengths")
    first, span = ends[:n_multi], ends[n_multi:]
    s_multi = starts[multi]
    t[s_multi] = first
    t[s_multi + n[multi] - 1] = first + span
    if inner:
        three = n[multi] >= 3
        rn = n[multi][three]
        k = rn - 2
        rid = np.repeat(np.arange(len(rn)), k)
        j = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k) + 1
        r_first = first[three][rid]
        denom = rn[rid] - 1
        res = np.frombuffer(inner, np.int8).astype(np.int64)
        if len(res) != len(j):
            raise ValueError("inner residuals do not match the run lengths")
        if inner_big:
            res[res == -128] = np.frombuffer(inner_big, "<i8")
        t[s_multi[three][rid] + j] = r_first + (j * span[three][rid] + denom // 2) // denom + res
    if not time_order:
        return t, pix, on
    if order:
        back = np.frombuffer(order, "<u4").astype(np.int64)
        out_t, out_pix, out_on = (np.empty_like(a) for a in (t, pix, on))
        out_t[back], out_pix[back], out_on[back] = t, pix, on
        return out_t, out_pix, out_on
    o = np.lexsort((pix, t))
    return t[o], pix[o], on[o]


# ---------------------------------------------------------------------------------------
# compiled: streams -> count / voxel bins directly (the loader's path)
# ---------------------------------------------------------------------------------------
def _plane_value(raw: np.ndarray, i: int, m: int, size: int) -> int:
    value = 0
    for b in range(size):
        value |= int(raw[b * m + i]) << (8 * b)
    return value


def _leading_zeros(w):
    return 64 - int(w).bit_length()


def _mask_pixels(mask, run_pix):
    """Writes the set bits of the packbits bitmap ``mask`` (most significant bit
    first) to ``run_pix`` in order and returns how many there are. A 64-bit word at a
    time, one leading-zero count per set bit: the per-bit scan cost ~50 us per window
    (32 k bits), this ~15 us at mini_mars' 40 % occupancy."""
    runs = 0
    nbytes = len(mask)
    if 8 * nbytes > len(run_pix):      # a corrupt (too long) mask: never write past
        return -1
    for wi in range((nbytes + 7) // 8):
        base = wi * 8
        w = np.uint64(0)
        for b in range(8):
            # big-endian word: bit 63 - j is pixel wi * 64 + j (bytes past the end read as 0)
            byte = mask[base + b] if base + b < nbytes else 0
            w = (w << np.uint64(8)) | np.uint64(byte)
        while w != 0:
            lz = np.int64(_leading_zeros(w))
            w ^= np.uint64(1 << 63) >> np.uint64(lz)
            run_pix[runs] = wi * 64 + lz
            runs += 1
    return runs


def _decode_times(raw, m, size):
    """The ``m`` byte-plane-stored times of ``size`` (2 or 4) bytes, as int64. A pass
    of its own: the binning loops then read plain values (reading the planes inside
    them, with the size test, cost ~0.2 ms more per T = 8 clip)."""
    out = np.empty(m, np.int64)
    if size == 2:
        for i in range(m):
            out[i] = np.int64(raw[i]) | (np.int64(raw[m + i]) << 8)
    else:
        for i in range(m):
            out[i] = (np.int64(raw[i]) | (np.int64(raw[m + i]) << 8)
                      | (np.int64(raw[2 * m + i]) << 16) | (np.int64(raw[3 * m + i]) << 24))
    return out


def _bin_counts_fast(mask, n8, n_big, pol, t_single, t_ends, inner, inner_big, tsize,
                     duration, bins, out, slot, top, run_pix, singles_at, multis_at):
    """Counts (at most 3 bins) of a window with one polarity per run and no run longer
    than ``top`` (then no cell can saturate, and each (pixel, channel) cell belongs
    to one run: counts are summed in registers and stored once). One pass packs each
    run's pixel, channel (and length) into ``singles_at`` / ``multis_at`` so that the
    single-event runs and the longer ones are then read sequentially, each kind in its
    own loop (their times live in different streams). Returns the event count, or -1
    where this path does not apply (the caller then takes :func:`_bin_frame`)."""
    if bins > 3:
        return -1
    e1 = (duration // bins) if bins > 1 and duration > 0 else np.int64(1) << 62
    e2 = ((2 * duration) // bins) if bins > 2 and duration > 0 else np.int64(1) << 62
    runs = _mask_pixels(mask, run_pix)
    if runs < 0 or runs != len(n8):
        return -1
    i_nbig = 0
    longest = 0
    singles = 0
    multis = 0
    for r in range(runs):
        n = np.int64(n8[r])
        if n == 255:
            n = np.int64(n_big[i_nbig])
            i_nbig += 1
        longest = max(longest, n)
        chan = 1 - ((pol[r >> 3] >> (7 - (r & 7))) & 1)
        packed = (run_pix[r] << 1) | chan
        # written to both lists, kept in one: no branch on the run length
        singles_at[singles] = packed
        multis_at[multis] = (packed << 32) | n
        one = np.int64(n == 1)
        singles += one
        multis += 1 - one
    if longest > top:
        return -1
    if len(t_single) != singles * tsize or len(t_ends) != 2 * multis * tsize:
        return -1
    times = _decode_times(t_single, singles, tsize)
    for i in range(singles):
        t = times[i]
        p = singles_at[i]
        out[slot, np.int64(t > e1) + np.int64(t > e2), p & 1, p >> 1] = 1
    total = singles
    i_inner = 0
    i_big = 0
    ends = _decode_times(t_ends, 2 * multis, tsize)
    for i in range(multis):
        v = multis_at[i]
        n = v & 0xFFFFFFFF
        chan = (v >> 32) & 1
        pix = v >> 33
        first = ends[i]
        span = ends[multis + i]
        last = first + span
        gt1 = np.int64(first > e1) + np.int64(last > e1)     # events past each edge
        gt2 = np.int64(first > e2) + np.int64(last > e2)
        if n > 2:
            # inner point j: first + (j * span + h) // (n - 1) + residual, h = (n - 1) // 2.
            # The quotient as a product with a reciprocal rounded up by 2**-40: exact
            # while the dividend stays below 2**39 (its error then stays under the
            # quotient's distance to the next integer, >= 1 / (n - 1)); each event on its
            # own, no running remainder chained through the run (-14 % per clip)
            den = n - 1
            h = den // 2
            if n * span < _EXACT_BELOW:
                inv = _UP / np.float64(den)
                dividend = span + h
                for _ in range(n - 2):
                    res = np.int64(inner[i_inner])
                    i_inner += 1
                    if res == -128:
                        res = np.int64(inner_big[i_big])
                        i_big += 1
                    t = first + np.int64(np.float64(dividend) * inv) + res
                    dividend += span
                    gt1 += np.int64(t > e1)
                    gt2 += np.int64(t > e2)
            else:
                for j in range(1, n - 1):
                    res = np.int64(inner[i_inner])
                    i_inner += 1
                    if res == -128:
                        res = np.int64(inner_big[i_big])
                        i_big += 1
                    t = first + (j * span + h) // den + res
                    gt1 += np.int64(t > e1)
                    gt2 += np.int64(t > e2)
        out[slot, 0, chan, pix] = n - gt1
        if bins >= 2:
            out[slot, 1, chan, pix] = gt1 - gt2
        if bins == 3:
            out[slot, 2, chan, pix] = gt2
        total += n
    return total


def _bin_run_general(out, slot, pix, n, first, span, run_on, mixed, pol_ev, ev, inner,
                     inner_big, i_inner, i_big, duration, bins, voxel, top, saturated):
    """One run event by event (voxels, mixed polarity, runs longer than ``top``);
    returns the event counter after it."""
    for j in range(n):
        if j == 0:
            t = first
        elif j == n - 1:
            t = first + span
        else:
            res = int(inner[i_inner])
            i_inner += 1
            if res == -128:
                res = int(inner_big[i_big])
                i_big += 1
            t = first + (j * span + (n - 1) // 2) // (n - 1) + res
        on = run_on
        if mixed:
            on = (pol_ev[ev >> 3] >> (7 - (ev & 7))) & 1
        chan = 0 if on else 1
        ev += 1
        if voxel and (duration <= 0 or bins == 1):
            out[slot, 0, chan, pix] += 1.0
        elif voxel:
            tau = t / duration * (bins - 1)
            lo = int(np.floor(tau))
            frac = tau - lo
            lo = min(lo, bins - 1)
            hi = min(lo + 1, bins - 1)
            out[slot, lo, chan, pix] += 1.0 - frac
            if hi > lo:
                out[slot, hi, chan, pix] += frac
        else:
            # bin b holds (b * D / bins, (b + 1) * D / bins]: count the edges passed,
            # t * bins > b * D, in integers and without a division
            idx = 0
            if duration > 0:
                for e in range(1, bins):
                    if t * bins > e * duration:
                        idx += 1
            if out[slot, idx, chan, pix] < top:
                out[slot, idx, chan, pix] += 1
            else:
                saturated[0] += 1
    return ev


def _bin_frame(mask, n8, n_big, pol, pol_ev, t_single, t_ends, inner, inner_big, tsize,
               duration, bins, voxel, out, slot, top, saturated):
    """Histogram one window's events into ``out[slot, bin, polarity, pixel]`` (zeros on
    entry) straight from its streams (the same decoding as :func:`decode_frame`, no
    event arrays). Counts use the sub-window rule of ``to_count_frames``, voxels the
    bilinear rule of ``to_voxel``; polarity channel 0 = ON. Counts stop at ``top``
    (the dtype's maximum): each event that finds its cell full adds one to
    ``saturated[0]``.

    The common case takes no branch per event: a run (one pixel of one window) of
    one polarity and at most ``top`` events cannot saturate a cell that starts at
    zero, and its inner times walk the straight line with a running quotient and
    remainder (one division per run); other runs go event by event."""
    m_single = len(t_single) // tsize
    n_multi = len(t_ends) // (2 * tsize)
    # t lies in bin b when t * bins > e * duration for the b edges e = 1..b
    edges = np.empty(max(bins - 1, 0), np.int64)
    for e in range(1, bins):
        edges[e - 1] = (e * duration) // bins if duration > 0 else 1 << 62
    r = 0
    i_single = 0
    i_multi = 0
    i_inner = 0
    i_big = 0
    i_nbig = 0
    ev = 0
    mixed = len(pol_ev) > 0
    for byte_i in range(len(mask)):
        byte = mask[byte_i]
        if byte == 0:
            continue
        for bit in range(8):
            if not (byte >> (7 - bit)) & 1:
                continue
            pix = byte_i * 8 + bit
            n = int(n8[r])
            if n == 255:
                n = int(n_big[i_nbig])
                i_nbig += 1
            run_on = (pol[r >> 3] >> (7 - (r & 7))) & 1
            first = 0
            span = 0
            if n == 1:
                first = _plane_value(t_single, i_single, m_single, tsize)
                i_single += 1
            else:
                first = _plane_value(t_ends, i_multi, 2 * n_multi, tsize)
                span = _plane_value(t_ends, n_multi + i_multi, 2 * n_multi, tsize)
                i_multi += 1
            if voxel or mixed or n > top:
                ev = _bin_run_general(out, slot, pix, n, first, span, run_on, mixed, pol_ev,
                                      ev, inner, inner_big, i_inner, i_big, duration, bins,
                                      voxel, top, saturated)
                if n >= 3:
                    for j in range(n - 2):
                        if inner[i_inner + j] == -128:
                            i_big += 1
                    i_inner += n - 2
                r += 1
                continue
            # counts: no cell of this run can pass ``top`` (n <= top), so no checks;
            # the bin of t is the number of edges below it
            chan = 0 if run_on else 1
            idx = 0
            for e in range(bins - 1):
                idx += first > edges[e]
            out[slot, idx, chan, pix] += 1
            if n >= 2:
                last = first + span
                idx = 0
                for e in range(bins - 1):
                    idx += last > edges[e]
                out[slot, idx, chan, pix] += 1
            if n >= 3:
                # line point j: first + (j * span + (n - 1) // 2) // (n - 1), walked with
                # a running quotient and remainder (one division per run)
                den = n - 1
                q_step = span // den
                r_step = span - q_step * den
                q_line = 0
                r_line = den // 2
                for _ in range(1, n - 1):
                    q_line += q_step
                    r_line += r_step
                    if r_line >= den:
                        r_line -= den
                        q_line += 1
                    res = int(inner[i_inner])
                    i_inner += 1
                    if res == -128:
                        res = int(inner_big[i_big])
                        i_big += 1
                    t = first + q_line + res
                    idx = 0
                    for e in range(bins - 1):
                        idx += t > edges[e]
                    out[slot, idx, chan, pix] += 1
            ev += n
            r += 1
    return ev


try:
    import numba as _numba

    _plane_value = _numba.njit(cache=True, inline="always")(_plane_value)
    from numba.cpython.unsafe.numbers import leading_zeros as _leading_zeros

    _mask_pixels = _numba.njit(cache=True)(_mask_pixels)
    _decode_times = _numba.njit(cache=True)(_decode_times)
    _bin_run_general = _numba.njit(cache=True, error_model="numpy")(_bin_run_general)
    _bin_counts_fast = _numba.njit(cache=True, nogil=True, error_model="numpy")(
        _bin_counts_fast)
    _bin_frame = _numba.njit(cache=True, nogil=True, error_model="numpy")(_bin_frame)
except ImportError:  # a declared dependency: this only keeps a broken install usable
    pass


_EMPTY_U8 = np.zeros(0, np.uint8)


def _as_u8(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, np.uint8) if raw else _EMPTY_U8


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------
def _windows(frame_timestamps_us: np.ndarray, first_window_us: int) -> np.ndarray:
    from evreid.events.representation import frame_windows

    return frame_windows(frame_timestamps_us, first_window_us)


def write_store(path: str | os.PathLike, ev: Events, frame_timestamps_us: Any,
                first_window_us: int = 0, config: Any = None, **extra: Any) -> int:
    """Write one tracklet's events as a ``.evs`` store; returns the bytes written.

    Frame k's chunk holds the events of ``(t_{k-1}, t_k]`` (frame 0:
    ``(t_0 - first_window_us, t_0]``); events outside every window are kept raw
    in ``outside_*`` columns, so the round trip is exact for any event stream.
    ``config`` (a SimulatorConfig or its dict) is stored with its hash; other
    JSON-serialisable ``extra`` values go to ``meta_json``.
    """
    path = Path(path)
    if frame_timestamps_us is None:
        raise EvreidError(f"{path}: an .evs store needs frame_timestamps_us (one chunk per "
                          f"frame window)")
    times = np.asarray(frame_timestamps_us, dtype=np.int64)
    if times.ndim != 1 or len(times) == 0:
        raise EvreidError(f"{path}: frame_timestamps_us must be a non-empty 1-D array")
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        raise EvreidError(f"{path}: frame timestamps must increase strictly")
    if int(first_window_us) < 0:
        raise EvreidError(f"{path}: first_window_us must be >= 0, got {first_window_us}")
    windows = _windows(times, int(first_window_us))
    longest = int((windows[:, 1] - windows[:, 0]).max())
    time_dtype = "<u2" if longest <= 0xFFFF else "<u4"
    if longest > 0xFFFFFFFF:
        raise EvreidError(f"{path}: a frame window of {longest} us is too long for the store")
    npix = ev.width * ev.height
    bounds = np.concatenate([windows[:1, 0], windows[:, 1]])
    cuts = np.searchsorted(ev.t, bounds, side="right")
    pix_all = ev.y.astype(np.int64) * ev.width + ev.x
    payload: list[bytes] = []
    pos = 0
    cctx = _zstd().ZstdCompressor(level=_ZSTD_LEVEL)
    cctx_times = _zstd().ZstdCompressor(level=_ZSTD_LEVEL_TIMES)
    offsets = np.zeros(len(windows) * _S + 1, np.int64)
    for k in range(len(windows)):
        lo, hi = int(cuts[k]), int(cuts[k + 1])
        streams = encode_frame(ev.t[lo:hi] - windows[k, 0], pix_all[lo:hi],
                               ev.p[lo:hi] > 0, npix, time_dtype)
        for s, raw in enumerate(streams):
            coder = cctx_times if s in _TIME_STREAMS else cctx
            blob = coder.compress(raw) if raw else b""
            payload.append(blob)
            pos += len(blob)
            offsets[k * _S + s + 1] = pos
    outside = np.concatenate([np.arange(0, cuts[0]), np.arange(cuts[-1], len(ev))])
    arrays: dict[str, np.ndarray] = {
        "format": np.array(STORE_FORMAT), "format_version": np.array(STORE_VERSION, np.int64),
        "width": np.array(ev.width, np.int64), "height": np.array(ev.height, np.int64),
        "count": np.array(len(ev), np.int64),
        "frame_timestamps_us": times, "first_window_us": np.array(int(first_window_us)),
        "frame_counts": np.diff(cuts).astype(np.int64),
        "time_dtype": np.array(time_dtype),
        "streams": np.array(",".join(STREAMS)),
        "outside_t": ev.t[outside], "outside_pix": pix_all[outside].astype(np.int64),
        "outside_p": ev.p[outside],
        "chunk_offsets": offsets,
    }
    if config is not None:
        cfg_dict = config if isinstance(config, dict) else config.to_dict()
        arrays["config_json"] = np.array(json.dumps(cfg_dict, sort_keys=True))
        arrays["config_hash"] = np.array(config.hash() if hasattr(config, "hash") else "")
    if extra:
        try:
            arrays["meta_json"] = np.array(json.dumps(extra, sort_keys=True))
        except TypeError as exc:
            raise EvreidError(f"{path}: metadata is not JSON-serialisable ({exc})") from None
    # payload last: its data then runs to the end of the members, and a reader
    # finds it from the zip directory
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w", allowZip64=True) as zf:
        for name, arr in arrays.items():
            _write_member(zf, name, npy_bytes(arr))
        header = _npy_header(pos)
        _write_member(zf, "payload", header + b"".join(payload))
    return path.stat().st_size


def _npy_header(length: int) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": (int(length),)})
    return buf.getvalue()


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    member = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
    member.compress_type = zipfile.ZIP_STORED     # uncompressed: readable at an offset
    member.external_attr = 0o644 << 16
    zf.writestr(member, data)


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
def _member_data_offset(handle, info: zipfile.ZipInfo, path: Path) -> int:
    """Byte offset of a stored member's data (after its local header)."""
    handle.seek(info.header_offset)
    local = handle.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise EvreidError(f"{path}: corrupt .evs store (bad local header of {info.filename})")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


@dataclass(frozen=True)
class StoreIndex:
    """What a reader keeps of a store: sizes, windows and where each chunk lies."""

    path: str
    width: int
    height: int
    count: int
    frame_timestamps_us: np.ndarray
    first_window_us: int
    windows: np.ndarray
    frame_counts: np.ndarray
    time_dtype: str
    chunk_offsets: np.ndarray
    payload_offset: int
    config_hash: str
    meta: dict
    version: int = STORE_VERSION

    @property
    def num_frames(self) -> int:
        return len(self.frame_timestamps_us)


_SMALL = ("format", "format_version", "width", "height", "count", "frame_timestamps_us",
          "first_window_us", "frame_counts", "time_dtype", "streams", "chunk_offsets")


def read_index(path: str | os.PathLike) -> StoreIndex:
    """Open a store's index (everything but the payload); one clear error if it is
    not a store of a version this evreid reads."""
    path = Path(path)
    if not path.is_file():
        raise EvreidError(f"event store {path} does not exist")
    try:
        with path.open("rb") as handle, zipfile.ZipFile(handle) as zf:
            infos = {i.filename.removesuffix(".npy"): i for i in zf.infolist()}
            if "format" not in infos or "payload" not in infos:
                raise EvreidError(f"{path}: not an evreid event store (no 'format' / "
                                  f"'payload' member; found {', '.join(sorted(infos))})")

            def load(name: str) -> np.ndarray:
                with zf.open(infos[name]) as member:
                    return np.lib.format.read_array(member, allow_pickle=False)

            fmt = str(load("format"))
            version = int(load("format_version"))
            if fmt != STORE_FORMAT:
                raise EvreidError(f"{path}: format {fmt!r} is not {STORE_FORMAT!r}")
            if version != STORE_VERSION:
                raise EvreidError(f"{path}: event store version {version}; this evreid reads "
                                  f"version {STORE_VERSION} (upgrade evreid or re-simulate)")
            small = {name: load(name) for name in _SMALL[2:]}
            if str(small["streams"]) != ",".join(STREAMS):
                raise EvreidError(f"{path}: unexpected stream list {small['streams']}")
            info = infos["payload"]
            if info.compress_type != zipfile.ZIP_STORED:
                raise EvreidError(f"{path}: the payload member is compressed; the store "
                                  f"must be an uncompressed .npz")
            data_offset = _member_data_offset(handle, info, path)
            handle.seek(data_offset)
            major, _minor = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if major == 1
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(handle)
            payload_offset = handle.tell()
            if dtype != np.uint8 or shape != (int(small["chunk_offsets"][-1]),):
                raise EvreidError(f"{path}: payload of shape {shape} does not match its "
                                  f"chunk table")
            config_hash = str(load("config_hash")) if "config_hash" in infos else ""
            meta = json.loads(str(load("meta_json"))) if "meta_json" in infos else {}
            if "config_json" in infos:
                meta["config"] = json.loads(str(load("config_json")))
    except EvreidError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise EvreidError(f"{path}: truncated or corrupt .evs event store ({exc})") from None
    times = small["frame_timestamps_us"].astype(np.int64)
    first = int(small["first_window_us"])
    offsets = small["chunk_offsets"].astype(np.int64)
    if len(offsets) != len(times) * _S + 1 or np.any(np.diff(offsets) < 0):
        raise EvreidError(f"{path}: chunk table does not match {len(times)} frames")
    return StoreIndex(str(path), int(small["width"]), int(small["height"]),
                      int(small["count"]), times, first, _windows(times, first),
                      small["frame_counts"].astype(np.int64), str(small["time_dtype"]),
                      offsets, payload_offset, config_hash, meta, version)


class EventStore:
    """Random access to one ``.evs`` file: a frame window's events without the rest."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.index = read_index(path)
        self.path = Path(path)
        self._dctx = _zstd().ZstdDecompressor()
        # plain ints for the per-window bookkeeping of a clip read (numpy scalars there
        # cost ~0.1 ms per T = 8 clip)
        self._offsets = self.index.chunk_offsets.tolist()
        self._durations = (self.index.windows[:, 1] - self.index.windows[:, 0]).tolist()
        self._counts = self.index.frame_counts.tolist()

    @property
    def num_frames(self) -> int:
        return self.index.num_frames

    @property
    def windows(self) -> np.ndarray:
        return self.index.windows

    def _chunks(self, frames: np.ndarray) -> list[list[bytes]]:
        """The uncompressed streams of each asked window."""
        offsets, base, decompress = self._offsets, self.index.payload_offset, \
            self._dctx.decompress
        out = []
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for k in frames.tolist():
                cuts = offsets[k * _S:(k + 1) * _S + 1]
                lo = cuts[0]
                raw = os.pread(fd, cuts[-1] - lo, base + lo)
                if len(raw) != cuts[-1] - lo:
                    raise EvreidError(f"{self.path}: truncated .evs store (frame {k})")
                view = memoryview(raw)
                out.append([decompress(view[a - lo:b - lo]) if b > a else b""
                            for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
        finally:
            os.close(fd)
        return out

    def frame_arrays(self, frames: Any, time_order: bool = False
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(t_rel, pix, on) of each asked frame window (t_rel = t - window start)."""
        frames = np.asarray(frames, dtype=np.int64).ravel()
        if len(frames) and (frames.min() < 0 or frames.max() >= self.num_frames):
            raise EvreidError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        npix = self.index.width * self.index.height
        out = []
        for k, streams in zip(frames, self._chunks(frames), strict=True):
            try:
                t, pix, on = decode_frame(streams, npix, self.index.time_dtype,
                                          time_order=time_order)
            except (ValueError, IndexError) as exc:
                raise EvreidError(f"{self.path}: corrupt chunk of frame {k} ({exc})") from None
            if len(t) != self.index.frame_counts[k]:
                raise EvreidError(f"{self.path}: frame {k} decodes to {len(t)} events, the "
                                  f"index says {self.index.frame_counts[k]}")
            out.append((t, pix, on))
        return out

    def bin_frames(self, frames: Any, bins: int, representation: str = "count",
                   dtype: Any = np.int32) -> tuple[np.ndarray, int]:
        """``[len(frames), bins, 2, H, W]`` count or voxel (float32) bins of the asked
        frame windows, decoded and binned in one compiled pass per window, and how many
        events found their count cell at ``dtype``'s maximum (counts saturate there,
        they never wrap)."""
        frames = np.asarray(frames, dtype=np.int64).ravel()
        if len(frames) and (frames.min() < 0 or frames.max() >= self.num_frames):
            raise EvreidError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        idx = self.index
        bins = int(bins)
        voxel = representation == "voxel"
        dtype = np.dtype(np.float64 if voxel else dtype)
        top = np.iinfo(dtype).max if dtype.kind in "iu" else 2**62
        saturated = np.zeros(1, np.int64)
        out = np.zeros((len(frames), bins, 2, idx.height * idx.width), dtype)
        tsize = np.dtype(idx.time_dtype).itemsize
        npix = idx.height * idx.width
        scratch = tuple(np.empty(npix + 7, np.int64) for _ in range(3))
        for slot, (k, streams) in enumerate(zip(frames.tolist(), self._chunks(frames),
                                                strict=True)):
            if not streams[0]:
                continue
            mask, n8, n_big, pol, pol_ev, t_single, t_ends, inner, inner_big, _ = streams
            args = (_as_u8(mask), _as_u8(n8), _as_u8(n_big).view("<u4"), _as_u8(pol))
            tail = (_as_u8(t_single), _as_u8(t_ends), _as_u8(inner).view(np.int8),
                    _as_u8(inner_big).view("<i8"), tsize, self._durations[k], bins)
            try:
                got = -1
                if not voxel and not pol_ev:
                    got = _bin_counts_fast(*args, *tail, out, slot, top, *scratch)
                if got < 0:
                    got = _bin_frame(*args, _as_u8(pol_ev), *tail, voxel, out, slot, top,
                                     saturated)
            except IndexError as exc:
                raise EvreidError(f"{self.path}: corrupt chunk of frame {k} ({exc})") from None
            if got != self._counts[k]:
                raise EvreidError(f"{self.path}: frame {k} decodes to {got} events, the index "
                                  f"says {self._counts[k]}")
        shape = (len(frames), bins, 2, idx.height, idx.width)
        out = out.reshape(shape) if not voxel else out.astype(np.float32).reshape(shape)
        return out, int(saturated[0])

    def frame_events(self, k: int) -> Events:
        (t, pix, on), = self.frame_arrays([k], time_order=True)
        return self._events(t + self.index.windows[k, 0], pix, on)

    def _events(self, t: np.ndarray, pix: np.ndarray, on: np.ndarray) -> Events:
        y, x = np.divmod(pix, self.index.width)
        return Events(t, x, y, np.where(on, 1, -1).astype(np.int8), self.index.width,
                      self.index.height)

    def events(self) -> Events:
        """Every event of the tracklet, in the stored order (the exact round trip)."""
        idx = self.index
        with np.load(self.path, allow_pickle=False) as data:
            o_t, o_pix, o_p = data["outside_t"], data["outside_pix"], data["outside_p"]
        parts = self.frame_arrays(np.arange(self.num_frames), time_order=True)
        before = o_t <= idx.windows[0, 0]
        t = np.concatenate([o_t[before]] + [p[0] + idx.windows[k, 0]
                                            for k, p in enumerate(parts)] + [o_t[~before]])
        pix = np.concatenate([o_pix[before]] + [p[1] for p in parts] + [o_pix[~before]])
        on = np.concatenate([o_p[before] > 0] + [p[2] for p in parts] + [o_p[~before] > 0])
        ev = self._events(t, pix, on)
        if len(ev) != idx.count:
            raise EvreidError(f"{self.path}: {len(ev)} events decoded, {idx.count} stored")
        return ev


_OPEN: OrderedDict[str, EventStore] = OrderedDict()
_OPEN_LOCK = threading.Lock()
_OPEN_MAX = 256


def open_store(path: str | os.PathLike) -> EventStore:
    """An :class:`EventStore`, its index cached per process (a loader worker reopens
    nothing it has seen; a rewritten file is noticed by its size and mtime)."""
    stat = os.stat(path)
    key = f"{os.fspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    with _OPEN_LOCK:
        store = _OPEN.get(key)
        if store is not None:
            _OPEN.move_to_end(key)
            return store
    store = EventStore(path)
    with _OPEN_LOCK:
        _OPEN[key] = store
        while len(_OPEN) > _OPEN_MAX:
            _OPEN.popitem(last=False)
    return store


def read_store(path: str | os.PathLike) -> tuple[Events, dict[str, Any]]:
    """All events plus metadata (``frame_timestamps_us``, ``first_window_us``, config)."""
    store = EventStore(path)
    idx = store.index
    meta: dict[str, Any] = dict(idx.meta)
    meta["frame_timestamps_us"] = idx.frame_timestamps_us
    meta["first_window_us"] = idx.first_window_us
    if idx.config_hash:
        meta["config_hash"] = idx.config_hash
    return store.events(), meta


def store_is_fresh(path: str | os.PathLike, config_hash: str, num_frames: int | None) -> bool:
    """Whether a store was made with this config hash (and covers ``num_frames``)."""
    try:
        idx = read_index(path)
    except EvreidError:
        return False
    return idx.config_hash == config_hash and (num_frames is None
                                               or idx.num_frames == num_frames)


def convert_to_store(src: str | os.PathLike, dst: str | os.PathLike | None = None) -> Path:
    """Rewrite an old ``.npz`` cache (or any event file with frame timestamps) as a
    store beside it (``dst`` default: same name, ``.evs``); the events are checked
    to round-trip exactly before the new file is kept."""
    from evreid.events.io import read_events_with_meta

    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(STORE_SUFFIX)
    ev, meta = read_events_with_meta(src)
    times = meta.pop("frame_timestamps_us", None)
    if times is None:
        raise EvreidError(f"{src}: no frame timestamps in the file; a store needs them "
                          f"(simulate again, or write_events with frame_timestamps_us)")
    first = int(meta.pop("first_window_us", 0))
    config = meta.pop("config", None)
    config_hash = meta.pop("config_hash", None)
    if config is not None:
        config = _HashedDict(config, config_hash or "")
    write_store(dst, ev, times, first, config=config, **meta)
    if not EventStore(dst).events().equals(ev):   # never keep a misread conversion
        dst.unlink()
        raise EvreidError(f"{src}: conversion to {dst} did not round-trip; nothing written")
    return dst


class _HashedDict(dict):
    """A config dict that keeps the hash it was stored with (an old cache's)."""

    def __init__(self, values: dict, digest: str) -> None:
        super().__init__(values)
        self._digest = digest

    def to_dict(self) -> dict:
        return dict(self)

    def hash(self) -> str:
        return self._digest
