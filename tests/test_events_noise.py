"""Shot noise: a Poisson process over the sensor, the same however time is cut."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from evreid.events import SimulatorConfig, simulate
from evreid.events._noise import ShotNoise, _place


def _noise(rate_hz: float, pixels: int, t0: int = 1_000, seed: int = 3) -> ShotNoise:
    return ShotNoise(np.random.SeedSequence(seed), rate_hz, pixels, t0)


def test_rate_and_uniformity_over_pixels_time_and_polarity():
    t, pix, p = _noise(2000.0, 35).take(1_000_000)
    n = len(t)
    expected = 2000.0 * 35 * 0.999
    assert abs(n - expected) < 4 * math.sqrt(expected)
    assert t.min() > 1_000 and t.max() <= 1_000_000 and np.all(np.diff(t) >= 0)
    assert t.dtype == np.int64 and pix.dtype == np.int64 and p.dtype == np.int8
    # each pixel, each tenth of the span and each polarity gets its share
    for counts, cells in ((np.bincount(pix, minlength=35), 35),
                          (np.bincount((t - 1_001) * 10 // 999_000, minlength=10), 10),
                          (np.bincount(p + 1, minlength=3)[[0, 2]], 2)):
        assert len(counts) == cells
        chi2 = float(np.sum((counts - n / cells) ** 2 / (n / cells)))
        assert chi2 < cells + 6 * math.sqrt(2 * cells), (cells, counts)


def test_gaps_are_exponential():
    # 1,000 events/s over the sensor: gaps of 1 ms on average, 1 us rounding negligible
    t, _, _ = _noise(10.0, 100).take(5_000_000)
    gaps = np.diff(t)
    assert stats.kstest(gaps, stats.expon(scale=1000.0).cdf).pvalue > 1e-3


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3_000_000), max_size=8), st.floats(0.5, 5000.0),
       st.integers(1, 500))
def test_events_do_not_depend_on_how_time_is_cut(cuts, rate_hz, pixels):
    whole = _noise(rate_hz, pixels).take(3_000_000)
    noise = _noise(rate_hz, pixels)
    parts, t_a = [], 1_000
    for t_b in sorted({*cuts, 3_000_000}):
        part = noise.take(t_b)
        assert np.all((part[0] > t_a) & (part[0] <= t_b)) or t_b <= t_a
        parts.append(part)
        t_a = max(t_a, t_b)
    for k in range(3):
        assert np.array_equal(np.concatenate([q[k] for q in parts]), whole[k])


def test_no_event_at_the_start_and_large_start_times():
    # an event at continuous time 0 would be at t0 + 1: never at t0 itself
    t0 = 1_700_000_000_000_000                     # microseconds since 1970
    t, pix, _ = _noise(1000.0, 10, t0=t0).take(t0 + 100_000)
    assert len(t) > 0 and t.min() > t0 and t.max() <= t0 + 100_000
    assert pix.min() >= 0 and pix.max() < 10


@pytest.mark.parametrize("device", ["numba", "numpy"])
def test_simulated_noise_is_the_same_with_frames_in_between(device):
    # a static scene: frames in between change nothing but how time is cut
    cfg = SimulatorConfig.preset("realistic", leak_rate_hz=0.0, shot_noise_rate_hz=40.0)
    frames = np.full((6, 9, 11), 90, np.uint8)
    few = simulate(frames[:2], [0, 1_000_000], cfg, seed=5, device=device)
    many = simulate(frames, [0, 150_000, 150_001, 400_000, 700_000, 1_000_000], cfg, seed=5,
                    device=device)
    assert len(few) > 100 and few.equals(many)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.01, 5000.0), st.integers(1, 100_000),
       st.integers(0, 2**50), st.integers(1, 2_000_000))
def test_events_are_the_running_sums_of_the_gaps(seed, rate_hz, pixels, t0, span):
    # the draws, spelled out: event k at t0 + 1 + floor(us_per_event * (g1 + ... + gk)),
    # summed left to right across chunks; pixel and polarity from floor(u * 2 * pixels)
    # at most ~2 M events expected (5 kHz x 100 k pixels x 2 s would be 1e9: ~30 GB)
    span = min(span, 1 + int(2e12 / (rate_hz * pixels)))
    noise = ShotNoise(np.random.SeedSequence(seed), rate_hz, pixels, t0)
    got = [noise.take(t0 + span // 3), noise.take(t0 + span)]
    t, pix, pol = (np.concatenate([part[k] for part in got]) for k in range(3))
    gap_seed, where_seed = np.random.SeedSequence(seed).spawn(2)
    n = len(t)
    sums = np.cumsum(np.random.default_rng(gap_seed).standard_exponential(n + 1))
    picks = np.floor(np.random.default_rng(where_seed).random(n) * 2 * pixels).astype(np.int64)
    assert np.array_equal(t, t0 + 1 + (sums[:n] * (1e6 / (rate_hz * pixels))).astype(np.int64))
    assert t0 + 1 + int(sums[n] * (1e6 / (rate_hz * pixels))) > t0 + span   # none left out
    assert np.array_equal(pix, picks >> 1) and np.array_equal(pol, 1 - 2 * (picks & 1))
    assert t.dtype == pix.dtype == np.int64 and pol.dtype == np.int8


def test_placing_keeps_picks_below_their_count():
    # the largest double under 1 times the number of picks rounds up to it
    u = np.array([np.nextafter(1.0, 0.0), 0.0, 0.5])
    t, pick, total = _place(np.array([1.0, 2.0, 3.0]), u, 0.5, 10.0, 7, 2**31 - 2)
    assert pick.tolist() == [2**31 - 3, 0, 2**30 - 1] and total == 6.5
    assert t.tolist() == [7 + 15, 7 + 35, 7 + 65]       # start + floor(running sum * 10)
