"""The DVS pixel model: analytic cases, noise effects, devices, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evreid.errors import EvreidError
from evreid.events import EventSimulator, SimulatorConfig, log_intensity, simulate

IDEAL = SimulatorConfig.preset("clean", threshold_sigma=0.0)


def _ramp(levels_log: list[float], base: float = 50.0, shape=(1, 1)) -> np.ndarray:
    """Float frames (0..1 scale) whose log intensity is log(base) + level."""
    return np.stack([np.full(shape, base * math.exp(v) / 255.0) for v in levels_log])


def test_rising_ramp_gives_five_on_events_at_fifths():
    ev = simulate(_ramp([0.0, 1.0]), [0, 1000], IDEAL)
    assert ev.t.tolist() == [200, 400, 600, 800, 1000]
    assert ev.p.tolist() == [1] * 5


def test_falling_ramp_gives_off_events():
    ev = simulate(_ramp([1.0, 0.0]), [0, 1000], IDEAL)
    assert ev.t.tolist() == [200, 400, 600, 800, 1000]
    assert ev.p.tolist() == [-1] * 5


def test_constant_image_emits_nothing():
    frames = np.full((5, 4, 6), 90, np.uint8)
    assert len(simulate(frames, np.arange(5) * 40_000, SimulatorConfig())) == 0


def test_remainder_carries_over_between_frames():
    # +0.3 then +0.2: crossings at 0.2 (2/3 into frame 1) and 0.4 (half into frame 2);
    # resetting the reference at each frame would put the second at 0.5 (t = 2000).
    ev = simulate(_ramp([0.0, 0.3, 0.5]), [0, 1000, 2000], IDEAL)
    assert ev.t.tolist() == [667, 1500]


def test_events_per_pixel_and_polarity_mixture():
    frames = np.stack([_ramp([0.0, 0.45])[:, 0, 0], _ramp([0.0, -0.65])[:, 0, 0]], axis=-1)
    ev = simulate(frames[:, None, :], [0, 900], IDEAL)
    on, off = ev.x[ev.p > 0], ev.x[ev.p < 0]
    assert on.tolist() == [0, 0] and off.tolist() == [1, 1, 1]
    assert ev.t[ev.p > 0].tolist() == [400, 800]


def _sequential_refractory(times: list[int], period: int) -> list[int]:
    kept, last = [], None
    for t in times:
        if last is None or t - last >= period:
            kept.append(t)
            last = t
    return kept


def test_refractory_period_drops_the_right_events():
    frames = _ramp([0.0, 1.0, 2.0])
    all_t = simulate(frames, [0, 1000, 2000], IDEAL).t.tolist()
    assert all_t == [200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000]
    ev = simulate(frames, [0, 1000, 2000], IDEAL.replace(refractory_us=300))
    assert ev.t.tolist() == _sequential_refractory(all_t, 300) == [200, 600, 1000, 1400, 1800]
    # the reference still moves by every crossing: after the drops no extra events appear
    later = simulate(_ramp([0.0, 1.0, 2.0, 2.0]), [0, 1000, 2000, 3000],
                     IDEAL.replace(refractory_us=300))
    assert later.t.tolist() == [200, 600, 1000, 1400, 1800]


@pytest.mark.parametrize("period", [50, 300, 2000])
def test_refractory_matches_sequential_filter_per_pixel(period):
    # Noise-free, the refractory period only drops events (the reference follows every
    # crossing), so per pixel the result is the sequential filter of the unfiltered
    # stream: exercises the vectorised resolution across pixels, steps and frames.
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (12, 9, 11)).astype(np.uint8)
    times = np.cumsum(rng.integers(100, 1500, 12))
    cfg = SimulatorConfig.preset("clean", threshold_sigma=0.05)
    full = simulate(frames, times, cfg, seed=1)
    ev = simulate(frames, times, cfg.replace(refractory_us=period), seed=1)
    assert 0 < len(ev) < len(full)
    for yx in {(int(y), int(x)) for y, x in zip(full.y, full.x, strict=True)}:
        mine = (full.y == yx[0]) & (full.x == yx[1])
        got = (ev.y == yx[0]) & (ev.x == yx[1])
        assert ev.t[got].tolist() == _sequential_refractory(full.t[mine].tolist(), period)


@pytest.mark.parametrize("bound", [1000, 65536, 70_000, 2**32])
def test_bounded_argsort_is_the_stable_argsort(bound):
    # the time sort of each interval: radix passes must give exactly the stable order
    from evreid.events.pixel_model import stable_argsort

    keys = np.random.default_rng(bound).integers(0, bound, 20_000)
    keys[::7] = keys[0]                        # many ties
    assert np.array_equal(stable_argsort(keys, bound), np.argsort(keys, kind="stable"))


def test_leak_events_follow_rate():
    cfg = IDEAL.replace(leak_rate_hz=1.0, leak_jitter=0.0)
    frames = np.full((11, 3, 3), 120, np.uint8)
    ev = simulate(frames, np.arange(11) * 1_000_000, cfg, seed=4)
    counts = np.bincount(ev.y.astype(int) * 3 + ev.x, minlength=9)
    assert counts.tolist() == [10] * 9 and np.all(ev.p == 1)
    # per-pixel phase: pixels do not fire in lock step
    assert len(np.unique(ev.t[:9])) > 1


def test_shot_noise_rate_and_polarities():
    cfg = IDEAL.replace(shot_noise_rate_hz=50.0)
    frames = np.full((3, 8, 8), 120, np.uint8)
    ev = simulate(frames, [0, 500_000, 1_000_000], cfg, seed=1)
    expected = 50.0 * 64 * 1.0
    # noise events plus the OFF/ON "answers" of reset pixels; at least the noise itself
    assert expected - 4 * math.sqrt(expected) < np.sum(ev.p > 0) + np.sum(ev.p < 0)
    assert np.sum(ev.p > 0) > 0.3 * len(ev) and np.sum(ev.p < 0) > 0.3 * len(ev)
    assert len(ev) < 3 * expected


def test_shot_noise_reset_moves_reference():
    # one pixel, static: every noise event shifts its reference, so the pixel
    # answers with an opposite event right after the first same-sign noise
    cfg = IDEAL.replace(shot_noise_rate_hz=0.0)
    sim = EventSimulator(1, 1, cfg)
    sim.add_frame(np.full((1, 1), 100, np.uint8), 0)
    t, pix, on = np.array([500]), np.array([0]), np.array([1], np.int8)
    sim.pixels.noise_events(t, pix, on)
    sim.pixels.noise_events(t, pix, on)           # ref now 2 C above the input
    ev = sim.add_frame(np.full((1, 1), 100, np.uint8), 1000)
    assert ev.p.tolist() == [-1, -1]


class _FixedNoise:
    """Stands in for the shot-noise process: these events, in the interval that holds them."""

    def __init__(self, t: list[int], pix: list[int], p: list[int]) -> None:
        self.events = (np.array(t, np.int64), np.array(pix, np.int64), np.array(p, np.int8))

    def take(self, t_b: int):
        upto = self.events[0] <= t_b
        out = tuple(a[upto] for a in self.events)
        self.events = tuple(a[~upto] for a in self.events)
        return out


@pytest.mark.parametrize("device", ["numba", "numpy"])
def test_reset_past_two_levels_fires_both_at_the_reset(device):
    # C+ = 0.1, C- = 0.25: an OFF noise event lowers the reference by 0.25, so a static
    # input is 2.5 ON levels above it -- two ON events at that instant, not spread later
    cfg = IDEAL.replace(pos_threshold=0.1, neg_threshold=0.25, shot_noise_rate_hz=1.0)
    sim = EventSimulator(1, 2, cfg, device=device)
    frame = np.full((1, 2), 100, np.uint8)
    sim.add_frame(frame, 0)
    sim._noise = _FixedNoise([300, 999], [1, 0], [-1, -1])
    ev = sim.add_frame(frame, 1000)
    assert list(zip(ev.t.tolist(), ev.x.tolist(), ev.p.tolist(), strict=True)) == [
        (300, 1, -1), (300, 1, 1), (300, 1, 1), (999, 0, -1), (999, 0, 1), (999, 0, 1)]
    # pixel 0 is now 0.05 above its reference; a reset at the interval's very end fires
    # its three levels there too, and nothing is left for the next interval
    sim._noise = _FixedNoise([2000], [0], [-1])
    ev = sim.add_frame(frame, 2000)
    assert list(zip(ev.t.tolist(), ev.p.tolist(), strict=True)) == [(2000, -1)] + [(2000, 1)] * 3
    assert len(sim.add_frame(frame, 3000)) == 0


def test_lowpass_delays_events():
    # a step of 1.1 log units in 2 ms, then constant: the filtered pixel reaches all
    # five levels, but later (dark pixel: cutoff 100 Hz * 50/255 -> tau ~ 8 ms)
    frames = _ramp([0.0, 1.1, 1.1, 1.1])
    times = [0, 2000, 12000, 22000]
    plain = simulate(frames, times, IDEAL)
    slow = simulate(frames, times, IDEAL.replace(cutoff_hz=100.0))
    assert plain.t.tolist() == [364, 727, 1091, 1455, 1818]
    assert len(slow) == 5 and np.all(slow.p == 1)
    assert np.all(slow.t > plain.t) and slow.t[-1] > 5000


def test_lowpass_substeps_vs_single_step_agree_roughly():
    rng = np.random.default_rng(0)
    frames = rng.integers(30, 220, (4, 6, 6), dtype=np.uint8)
    times = np.arange(4) * 40_000
    fine = simulate(frames, times, IDEAL.replace(cutoff_hz=50.0))
    coarse = simulate(frames, times, IDEAL.replace(cutoff_hz=50.0, upsample="none"))
    assert abs(len(fine) - len(coarse)) <= 0.2 * len(fine) + 3


def test_flow_upsampling_moving_bar():
    frames = np.full((3, 24, 32), 40, np.uint8)
    for k in range(3):
        frames[k, :, 6 + 4 * k:12 + 4 * k] = 200
    times = [0, 40_000, 80_000]
    lin = simulate(frames, times, IDEAL)
    flow = simulate(frames, times, IDEAL.replace(upsample="flow"))
    assert len(flow) > 0 and flow.t.min() > 0 and flow.t.max() <= 80_000
    assert 0.5 * len(lin) < len(flow) < 2.0 * len(lin)
    # flow sub-frames sweep the edge: more distinct timestamps than 2 frame intervals give
    assert len(np.unique(flow.t)) > len(np.unique(lin.t)) / 2


def test_rgb_frames_use_luma():
    rng = np.random.default_rng(2)
    rgb = rng.random((3, 5, 4, 3))
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    times = [0, 1000, 2000]
    assert simulate(rgb, times, seed=3).equals(simulate(luma, times, seed=3))


def test_device_picks_a_cpu_implementation():
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (6, 12, 10), dtype=np.uint8)
    times = np.cumsum(rng.integers(200, 40_000, 6))
    cfg = SimulatorConfig.preset("realistic")
    a = simulate(frames, times, cfg, seed=7)
    assert len(a) > 100
    for device in ("cpu", "numba", "numpy"):
        assert simulate(frames, times, cfg, seed=7, device=device).equals(a)
    assert EventSimulator(2, 2, cfg, device="cpu").compiled
    # the torch path is gone: GPUs are refused with the reason, anything else as unknown
    for device in ("cuda", "cuda:1", "auto"):
        with pytest.raises(EvreidError, match=f"simulator device '{device}': the simulator "
                                              "runs on the CPU"):
            simulate(frames, times, cfg, device=device)
    with pytest.raises(EvreidError, match="unknown simulator device 'tpu'; choose numpy, "
                                          "numba or cpu"):
        EventSimulator(2, 2, cfg, device="tpu")


def test_thresholds_and_leak_rates_are_the_seeds_normal_draws():
    # simulator version 5: N(0, 1) from NumPy's Generator.standard_normal, C+ then C-
    # from the first spawned stream; leak rate then phase from the second
    cfg = SimulatorConfig.preset("realistic", threshold_sigma=0.5, leak_jitter=0.7)
    sim = EventSimulator(3, 5, cfg, seed=11)
    thr, leak, _ = np.random.SeedSequence(11).spawn(3)
    z = np.random.default_rng(thr).standard_normal(30)
    assert np.array_equal(sim.pixels.cp, np.maximum(0.2 + 0.5 * z[:15], 0.01))
    assert np.array_equal(sim.pixels.cm, np.maximum(0.2 + 0.5 * z[15:], 0.01))
    rng = np.random.default_rng(leak)
    rate = np.maximum(1.0 + 0.7 * rng.standard_normal(15), 0.0) * 0.1
    assert np.array_equal(sim.pixels.leak_per_us, rate * sim.pixels.cp * 1e-6)
    assert np.array_equal(sim.pixels.phase, rng.random(15) * sim.pixels.cp)


def test_lin_log_curve_is_c1_at_threshold():
    cfg = SimulatorConfig()
    T = cfg.lin_log_threshold
    h = 1e-6
    below, at, above = log_intensity(np.array([T - h, T, T + h]), cfg)
    assert at == pytest.approx(math.log(T))
    assert (at - below) / h == pytest.approx(1 / T, rel=1e-4)
    assert (above - at) / h == pytest.approx(1 / T, rel=1e-4)
    assert np.isfinite(log_intensity(np.zeros(1), cfg)).all()


def test_presets_and_hash():
    clean, real = SimulatorConfig.preset("clean"), SimulatorConfig.preset("realistic")
    assert clean.refractory_us == 0 and clean.shot_noise_rate_hz == 0 and clean.threshold_sigma > 0
    assert real.leak_rate_hz == 0.1 and real.shot_noise_rate_hz > 0 and real.refractory_us == 500
    assert clean.hash() != real.hash()
    assert SimulatorConfig.from_dict(real.to_dict()).hash() == real.hash()
    assert clean.replace(pos_threshold=0.25).hash() != clean.hash()
    with pytest.raises(EvreidError, match="unknown simulator preset 'noisy'"):
        SimulatorConfig.preset("noisy")
    with pytest.raises(EvreidError, match="unknown key"):
        SimulatorConfig.from_dict({"pos_thresh": 0.2})
    with pytest.raises(EvreidError, match="upsample"):
        SimulatorConfig(upsample="cubic")
    with pytest.raises(EvreidError, match="neg_threshold"):
        SimulatorConfig(neg_threshold=0)


def test_bad_inputs_raise_clear_errors():
    frames = np.zeros((3, 4, 4), np.uint8)
    with pytest.raises(EvreidError, match="increase strictly"):
        simulate(frames, [0, 10, 10])
    with pytest.raises(EvreidError, match="one entry per frame"):
        simulate(frames, [0, 10])
    with pytest.raises(EvreidError, match="uint8 or float"):
        simulate(frames.astype(np.int32), [0, 1, 2])
    with pytest.raises(EvreidError, match=r"\[N, H, W\]"):
        simulate(np.zeros((3, 4), np.uint8), [0, 1, 2])


def test_seeds_control_mismatch():
    rng = np.random.default_rng(9)
    frames = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    times = [0, 1000, 2000]
    assert simulate(frames, times, seed=1).equals(simulate(frames, times, seed=1))
    a = EventSimulator(8, 8, SimulatorConfig(), seed=1)
    b = EventSimulator(8, 8, SimulatorConfig(), seed=2)
    assert not np.array_equal(a.pixels.cp, b.pixels.cp)
    assert not simulate(frames, times, seed=1).equals(simulate(frames, times, seed=2))
    # noise on does not change the mismatch drawn for a seed
    c = EventSimulator(8, 8, SimulatorConfig.preset("realistic"), seed=1)
    assert np.array_equal(a.pixels.cp, c.pixels.cp)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(2, 4), h=st.integers(1, 4), w=st.integers(1, 4),
       sigma=st.sampled_from([0.0, 0.03, 0.1]), seed=st.integers(0, 2**32))
def test_properties(data, n, h, w, sigma, seed):
    frames = np.array(data.draw(st.lists(st.integers(0, 255), min_size=n * h * w,
                                         max_size=n * h * w)), np.uint8).reshape(n, h, w)
    gaps = data.draw(st.lists(st.integers(1, 50_000), min_size=n - 1, max_size=n - 1))
    times = np.concatenate([[data.draw(st.integers(0, 10**9))], gaps]).cumsum()
    cfg = SimulatorConfig.preset("clean", threshold_sigma=sigma)
    ev = simulate(frames, times, cfg, seed=seed)
    assert np.all(np.diff(ev.t) >= 0)
    if len(ev):
        assert ev.t.min() > times[0] and ev.t.max() <= times[-1]
    sim = EventSimulator(h, w, cfg, seed=seed)
    cmin = np.minimum(sim.pixels.cp, sim.pixels.cm).reshape(h, w)
    L = log_intensity(frames.astype(np.float64), cfg)
    for k in range(1, n):
        win = ev.window(int(times[k - 1]), int(times[k]))
        counts = np.zeros((h, w), int)
        np.add.at(counts, (win.y, win.x), 1)
        bound = np.floor(np.abs(L[k] - L[k - 1]) / cmin) + 1
        assert np.all(counts <= bound)
    assert simulate(frames, times, cfg, seed=seed).equals(ev)


def _loop_reference(frames: np.ndarray, times, threshold: float = 0.2) -> list[tuple]:
    """Textbook per-pixel, per-crossing Python loop (no noise, no mismatch)."""
    L = log_intensity(frames.astype(np.float64))
    n, h, w = L.shape
    out = []
    for y in range(h):
        for x in range(w):
            ref = L[0, y, x]
            for k in range(1, n):
                l0, l1, t0, t1 = L[k - 1, y, x], L[k, y, x], times[k - 1], times[k]
                while l1 - ref >= threshold * (1 - 1e-9):
                    ref += threshold
                    out.append((round(t0 + (ref - l0) / (l1 - l0) * (t1 - t0)), x, y, 1))
                while ref - l1 >= threshold * (1 - 1e-9):
                    ref -= threshold
                    out.append((round(t0 + (ref - l0) / (l1 - l0) * (t1 - t0)), x, y, -1))
    return sorted(out)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 6))
def test_matches_per_pixel_loop_reference(seed, n):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, 5, 4), dtype=np.uint8)
    times = np.cumsum(rng.integers(1, 100_000, n))
    ev = simulate(frames, times, IDEAL)
    ours = sorted(zip(ev.x.tolist(), ev.y.tolist(), ev.p.tolist(), ev.t.tolist(), strict=True))
    ref = sorted((x, y, p, t) for t, x, y, p in _loop_reference(frames, times))
    # the same events; a time may differ by 1 us where the two formulas for the
    # crossing time round a value within an ulp of a half microsecond differently
    assert [e[:3] for e in ours] == [e[:3] for e in ref]
    assert all(abs(a[3] - b[3]) <= 1 for a, b in zip(ours, ref, strict=True))
    assert sum(a[3] != b[3] for a, b in zip(ours, ref, strict=True)) <= max(1, len(ours) // 50)


@pytest.mark.parametrize("height, width", [(2, 32769), (40000, 2), (0, 4)])
def test_frame_size_beyond_int16_coordinates_is_refused(height, width):
    with pytest.raises(EvreidError, match=f"{height}x{width}.*1..32768"):
        EventSimulator(height, width)
    EventSimulator(2, 32768)          # the largest side that int16 coordinates hold
