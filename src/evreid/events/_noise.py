"""Shot noise: one Poisson process over the whole sensor, drawn as far as it is asked.

Why a process and not a count per interval: the noise of a stretch of time must not
depend on how the caller cut time into frames, so that feeding a video frame by frame
(:meth:`EventSimulator.add_frame`) and handing it over whole (the compiled kernel's one
call per video) give the same events -- and it is what a sensor does.
"""

from __future__ import annotations

import math

import numba
import numpy as np


class ShotNoise:
    """Shot-noise events of a sensor of ``pixels`` pixels from time ``t0`` on (integer
    microseconds): a Poisson process of ``rate_hz`` per pixel, each event at a uniformly
    random pixel with either polarity, equally likely.

    Drawn as unit exponential gaps from one stream and one uniform per event (its pixel
    and polarity) from another, in chunks as far as :meth:`take` asks. Both NumPy streams
    give the same numbers however they are chunked, and the gaps are summed one after
    the other (a running sum carried across chunks), so the events do not depend on the
    chunks. An event at continuous time ``s`` microseconds after ``t0`` is at
    ``t0 + 1 + floor(s)``: it falls in exactly one interval (t_a, t_b] of whole
    microseconds.
    """

    def __init__(self, seed: np.random.SeedSequence, rate_hz: float, pixels: int,
                 t0: int) -> None:
        gap_seed, where_seed = seed.spawn(2)
        self._gaps = np.random.default_rng(gap_seed)
        self._where = np.random.default_rng(where_seed)
        self._us_per_event = 1e6 / (rate_hz * pixels)    # mean gap over the whole sensor
        self._pixels = pixels
        self._t0 = int(t0)
        self._sum = 0.0                                   # the gaps drawn so far, summed
        self._t = np.zeros(0, np.int64)                   # drawn, not yet taken
        self._pick = np.zeros(0, np.int64)                # 2 * pixel + (1 if OFF)

    def take(self, t_b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, pixel, polarity) of the events after those taken before, up to ``t_b``
        (inclusive), in time order: int64, int64, int8 (+1 ON, -1 OFF)."""
        horizon = float(t_b - self._t0)       # s < horizon  <=>  t0 + 1 + floor(s) <= t_b
        while self._sum * self._us_per_event < horizon:
            expected = (horizon - self._sum * self._us_per_event) / self._us_per_event
            self._draw(int(expected + 4.0 * math.sqrt(expected)) + 16)
        end = int(np.searchsorted(self._t, t_b, side="right"))
        t, pick = self._t[:end], self._pick[:end]
        self._t, self._pick = self._t[end:], self._pick[end:]
        polarity = (pick & 1).astype(np.int8)
        polarity *= -2
        polarity += 1                             # odd picks are OFF
        return t, pick >> 1, polarity

    def _draw(self, count: int) -> None:
        gaps = self._gaps.standard_exponential(count)
        u = self._where.random(count)
        t, pick, self._sum = _place(gaps, u, self._sum, self._us_per_event, self._t0 + 1,
                                    2 * self._pixels)
        if len(self._t):
            t, pick = np.concatenate([self._t, t]), np.concatenate([self._pick, pick])
        self._t, self._pick = t, pick


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _place(gaps, u, total, us_per_event, start, picks):
    """Events' times and picks from their draws: time ``start + floor(s * us_per_event)``
    at the running sum ``s`` of the gaps from ``total`` on -- (total + g1) + g2 ...: the
    same additions in the same order whatever the chunks -- and pick ``floor(u * picks)``
    (capped: ``u * picks`` can round up to ``picks`` when ``u`` is the largest double
    under 1). Returns (times, picks, new total)."""
    n = gaps.shape[0]
    t = np.empty(n, np.int64)
    pick = np.empty(n, np.int64)
    for i in range(n):
        total += gaps[i]
        t[i] = start + np.int64(total * us_per_event)
        pick[i] = min(np.int64(u[i] * picks), picks - 1)
    return t, pick, total
