"""Standard normal draws for the simulator's per-pixel parameters, fast and reproducible.

Why not ``Generator.standard_normal``: a simulator draws three normals per pixel for
every video (two thresholds, a leak rate), and NumPy's sampler took about 9 ns a draw
here -- a twentieth of simulating a 60-frame MARS tracklet. The same generator's raw
64-bit words take about 2 ns each, and a compiled ziggurat over them about 2 more.

The method (Marsaglia and Tsang's ziggurat, 256 layers): the half-density
``f(x) = exp(-x**2 / 2)`` is covered by 255 stacked rectangles of equal area and a
base strip that also holds the tail beyond ``R``. One word picks a layer (8 bits), a
sign (1 bit) and a position in it (52 bits); in about 99 % of draws the position lies
under the next narrower layer, hence under the curve, and is the answer (one integer
compare, one multiply). Otherwise the draw is decided exactly with more words: the
wedge between the curve and the rectangle by comparing against ``exp``, the tail by
Marsaglia's exponential method.

Both implementations -- compiled (numba) and NumPy with a Python loop for the rare
draws -- consume the words in the same order with the same float operations (``exp``
and ``log`` from the C library in both), so they give the same numbers; tests hold them
to it and to the normal distribution.
"""

from __future__ import annotations

import math

import numpy as np

from evreid.events import _kernel

#: Right edge of the base layer (where the tail begins), and each layer's area, for
#: 256 layers (Marsaglia and Tsang 2000).
_R = 3.6541528853610088
_AREA = 4.92867323399e-3
_LAYERS = 256
_MANTISSA = 1 << 52


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per layer: the accept bound on the 52-bit position (``below``), the position's
    scale to x (``scale``) and the density at the layer's right edge (``density``, with
    one entry more: 1 at the top)."""
    edge = np.empty(_LAYERS + 1)
    edge[0] = _AREA / math.exp(-0.5 * _R * _R)      # the base strip's virtual width
    edge[1] = _R
    for i in range(1, _LAYERS - 1):
        edge[i + 1] = math.sqrt(-2.0 * math.log(_AREA / edge[i] + math.exp(-0.5 * edge[i]
                                                                             * edge[i])))
    edge[_LAYERS] = 0.0
    below = np.array([int(edge[i + 1] / edge[i] * _MANTISSA) for i in range(_LAYERS)],
                     np.int64)
    scale = edge[:_LAYERS] / _MANTISSA
    density = np.exp(-0.5 * edge * edge)
    density[0] = 0.0         # unused: layer 0's overflow is the tail, not a wedge
    return below, scale, density


_BELOW, _SCALE, _DENSITY = _tables()
_SCALE_LIST, _DENSITY_LIST = _SCALE.tolist(), _DENSITY.tolist()    # fast scalar reads
_TO_UNIT = 2.0 ** -53
_TOP53 = (1 << 53) - 1


def _unit(word: int) -> float:
    """A uniform in (0, 1] from a word's top 53 bits (never 0: it is taken a log of)."""
    return (((word >> 11) & _TOP53) + 1) * _TO_UNIT


def _decide(words: np.ndarray, at: int, word: int) -> tuple[float | None, int]:
    """A draw that fell outside its layer's inner part, decided exactly with the
    words from ``at`` on. Returns (the normal or None for "draw again", the next unused
    word); when the words run out first, (None, ``len(words)``): all are spent."""
    layer = word & 0xFF
    negative = (word >> 8) & 1
    position = (word >> 9) & (_MANTISSA - 1)
    if layer == 0:
        if at + 2 > len(words):
            return None, len(words)
        x = -math.log(_unit(int(words[at]))) / _R
        y = -math.log(_unit(int(words[at + 1])))
        if y + y <= x * x:
            return None, at + 2
        value = _R + x
        return (-value if negative else value), at + 2
    if at + 1 > len(words):
        return None, len(words)
    x = position * _SCALE_LIST[layer]
    low, high = _DENSITY_LIST[layer], _DENSITY_LIST[layer + 1]
    y = low + _unit(int(words[at])) * (high - low)
    if y >= math.exp(-0.5 * x * x):
        return None, at + 1
    return (-x if negative else x), at + 1


def _fill_numpy(words: np.ndarray, out: np.ndarray) -> tuple[int, int]:
    """``out`` filled from ``words`` in order; returns (values written, words used). Stops
    early (fewer values) when the words run out, a draw left undecided counting as
    using them all."""
    u = words.astype(np.uint64)
    layer = (u & np.uint64(0xFF)).astype(np.intp)
    position = ((u >> np.uint64(9)) & np.uint64(_MANTISSA - 1)).astype(np.int64)
    value = position * _SCALE[layer]
    value = np.where((u >> np.uint64(8)) & np.uint64(1), -value, value)
    outside = np.flatnonzero(position >= _BELOW[layer]).tolist() + [len(words)]
    # a rare draw takes the words after it, which shifts which word serves which value:
    # runs of inside words are copied in bulk, the rare ones decided one by one
    n = at = k = 0
    while n < len(out) and at < len(words):
        while outside[k] < at:
            k += 1
        run = min(outside[k] - at, len(out) - n)
        out[n:n + run] = value[at:at + run]
        n += run
        at += run
        if n == len(out) or at >= len(words):
            break
        decided, at = _decide(words, at + 1, int(words[at]))
        if decided is not None:
            out[n] = decided
            n += 1
    return n, at

if _kernel.available():
    import numba

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _fill_compiled(words, out, below, scale, density):
        n_words = words.shape[0]
        n = 0
        at = 0
        while n < out.shape[0] and at < n_words:
            word = words[at]
            at += 1
            layer = word & 0xFF
            position = (word >> 9) & (_MANTISSA - 1)
            negative = (word >> 8) & 1
            x = position * scale[layer]
            if position < below[layer]:
                out[n] = -x if negative else x
                n += 1
                continue
            if layer == 0:
                if at + 2 > n_words:
                    at = n_words        # as ``_decide``: the undecided draw spends them
                    break
                tail = -np.log((((words[at] >> 11) & _TOP53) + 1) * _TO_UNIT) / _R
                y = -np.log((((words[at + 1] >> 11) & _TOP53) + 1) * _TO_UNIT)
                at += 2
                if y + y > tail * tail:
                    out[n] = -(_R + tail) if negative else _R + tail
                    n += 1
                continue
            if at + 1 > n_words:
                at = n_words
                break
            unit = (((words[at] >> 11) & _TOP53) + 1) * _TO_UNIT
            at += 1
            y = density[layer] + unit * (density[layer + 1] - density[layer])
            if y < np.exp(-0.5 * x * x):
                out[n] = -x if negative else x
                n += 1
        return n, at


def standard_normal(rng: np.random.Generator, size: int, *, compiled: bool | None = None
                    ) -> np.ndarray:
    """``size`` standard normal draws from ``rng``'s raw words (not the same numbers as
    ``rng.standard_normal``). ``compiled``: None picks numba when it is installed."""
    use_numba = _kernel.available() if compiled is None else compiled
    out = np.empty(size, np.float64)
    filled = 0
    while filled < size:
        # about 1 % of draws need a second or third word: a small margin, refilled if short
        need = size - filled
        words = rng.bit_generator.random_raw(need + need // 32 + 8).view(np.int64)
        if use_numba:
            n, _ = _fill_compiled(words, out[filled:], _BELOW, _SCALE, _DENSITY)
        else:
            n, _ = _fill_numpy(words, out[filled:])
        filled += n
    return out
