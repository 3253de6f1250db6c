"""Events computed on the fly from frames: exact where the state is known, close to the
simulator's statistics elsewhere, deterministic, and fed through ClipDataset."""

from __future__ import annotations

import numpy as np
import pytest

from evreid.errors import EvreidError
from evreid.events import SimulatorConfig, simulate
from evreid.events.onthefly import OnTheFlyEvents, needed_frames
from evreid.events.representation import tracklet_from_times
from evreid.events.simulator import frame_timestamps_us


def moving_video(n=6, h=24, w=16, seed=0):
    """A textured pattern sliding sideways (smooth, so windows are near linear)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=(h, 4 * w)).astype(np.float64)
    return np.stack([np.clip(base[:, 2 * k:2 * k + w], 0, 255).astype(np.uint8)
                     for k in range(n)])


@pytest.mark.parametrize("preset", ["default", "clean"])
def test_first_window_matches_the_simulator_exactly(preset):
    """Window 1 starts from the first frame's state: nothing is approximated there
    (with the tracklet's own threshold draws, ``thresholds="simulator"``)."""
    cfg = SimulatorConfig.preset(preset)
    frames = moving_video()
    times = frame_timestamps_us(len(frames), 25)
    exact = tracklet_from_times(simulate(frames, times, cfg, seed=11), times).tensor([1], 3)
    got, count, _ = OnTheFlyEvents(cfg, thresholds="simulator").bins_from_luma(
        {k: f for k, f in enumerate(frames)}, [1], 25, 3, "count", 11,
        np.random.default_rng(0))
    assert count == int(exact.sum()) > 0
    np.testing.assert_array_equal(got, exact)


def test_later_windows_are_close_and_deterministic():
    cfg = SimulatorConfig()
    frames = moving_video(n=12)
    times = frame_timestamps_us(len(frames), 25)
    idx = np.arange(3, 12)
    exact = tracklet_from_times(simulate(frames, times, cfg, seed=5), times).tensor(idx, 3)
    luma = {k: f for k, f in enumerate(frames)}
    otf = OnTheFlyEvents(cfg)
    a, _, _ = otf.bins_from_luma(luma, idx, 25, 3, "count", 5, np.random.default_rng(1), 2)
    b, _, _ = otf.bins_from_luma(luma, idx, 25, 3, "count", 5, np.random.default_rng(1), 2)
    np.testing.assert_array_equal(a, b)
    assert abs(a.sum() / exact.sum() - 1) < 0.15
    # polarity balance per window follows the exact one
    on_exact, on_otf = exact[:, :, 0].sum(), a[:, :, 0].sum()
    assert abs(on_otf / a.sum() - on_exact / exact.sum()) < 0.05


def test_needed_frames_include_warmup_and_stop_at_zero():
    assert needed_frames([0, 5], 1).tolist() == [0, 3, 4, 5]
    assert needed_frames([2], 3).tolist() == [0, 1, 2]


def test_mini_mars_statistics_within_the_documented_tolerance(fixtures_dir):
    """Per-frame event counts within 8 % (median ratio) and the per-pixel count
    distribution within 0.03 (absolute, per bucket 0..4, 5+) of the exact simulator
    on a few mini_mars tracklets (the full measurement: bench_loader.py --fidelity)."""
    from evreid.data import build_dataset
    from evreid.events.cache import tracklet_seed
    from evreid.events.frames import read_frames

    cfg = SimulatorConfig()
    otf = OnTheFlyEvents(cfg)
    ratios, hist_e, hist_o = [], np.zeros(6), np.zeros(6)
    for tracklet in build_dataset("mars", fixtures_dir / "mini_mars").train[:32:8]:
        frames = read_frames(tracklet.frames)
        times = frame_timestamps_us(len(frames), tracklet.fps)
        seed = tracklet_seed(0, tracklet.key)
        idx = np.arange(2, len(frames), 3)
        exact = tracklet_from_times(simulate(frames, times, cfg, seed=seed), times).tensor(
            idx, 3)
        got, _, _ = otf.bins_from_luma({k: f for k, f in enumerate(frames)}, idx, tracklet.fps,
                                    3, "count", seed, np.random.default_rng(0))
        ratios.extend(got.sum(axis=(1, 2, 3, 4)) / np.maximum(exact.sum(axis=(1, 2, 3, 4)), 1))
        for grid, hist in ((exact, hist_e), (got, hist_o)):
            per_pixel = np.minimum(grid.sum(axis=(1, 2)).ravel(), 5).astype(int)
            hist += np.bincount(per_pixel, minlength=6)
    assert abs(np.median(ratios) - 1) < 0.08, np.median(ratios)
    np.testing.assert_allclose(hist_o / hist_o.sum(), hist_e / hist_e.sum(), atol=0.03)


def test_pooled_pixel_parameters_keep_the_simulators_distribution():
    """The default thresholds come from a shared pool (no draw per clip): the same law
    as the simulator's own draws (two-sample KS distance below the 0.1 % critical value
    for 3,072 pixels, 0.05), the same per tracklet seed, another for another seed."""
    from scipy.stats import ks_2samp

    from evreid.events.onthefly import _PixelParams

    cfg = SimulatorConfig.preset("realistic")          # leak rates and phases too
    npix = 64 * 48
    pooled = OnTheFlyEvents(cfg).params(123, npix)
    again = OnTheFlyEvents(cfg).params(123, npix)
    other = OnTheFlyEvents(cfg).params(124, npix)
    own = _PixelParams(cfg, 123, npix)
    for name in ("cp", "cm", "leak", "phase"):
        a, b = getattr(pooled, name), getattr(own, name)
        assert a.shape == (npix,)
        assert ks_2samp(a, b).statistic < 0.05, name
        np.testing.assert_array_equal(a, getattr(again, name))
        assert not np.array_equal(a, getattr(other, name))
    assert abs(pooled.cp.std() / own.cp.std() - 1) < 0.1
    np.testing.assert_allclose(pooled.icp, 1.0 / pooled.cp)
    with pytest.raises(EvreidError, match="thresholds must be one of"):
        OnTheFlyEvents(cfg, thresholds="mine")


def test_anchored_start_states_keep_a_still_pixel_quiet():
    """A scene still since frame 0 that then brightens by a fifth of a threshold: the
    simulator fires nothing, and neither does the window computed on the fly with
    anchored start states; drawn start states put some pixels near a threshold, and
    those fire. A change past the thresholds fires the same pixels in the simulator and
    with anchored states (the same threshold draws)."""
    cfg = SimulatorConfig.preset("clean")
    frames = np.full((8, 16, 16), 100, np.uint8)
    times = frame_timestamps_us(8, 25.0)
    for last in (104, 124):                     # ln(1.04) ~ 0.2 C, ln(1.24) ~ 1.1 C
        frames[7] = last
        exact = tracklet_from_times(simulate(frames, times, cfg, seed=5), times).tensor([7], 3)
        counts = {}
        for start in ("anchored", "drawn"):
            otf = OnTheFlyEvents(cfg, thresholds="simulator", start_states=start)
            got, counts[start], _ = otf.bins_from_luma(
                dict(enumerate(frames)), [7], 25.0, 3, "count", 5, np.random.default_rng(0),
                warmup=1)
            if start == "anchored":
                np.testing.assert_array_equal(got.sum(axis=(1, 2)), exact.sum(axis=(1, 2)))
        assert counts["anchored"] == exact.sum() and (exact.sum() == 0) == (last == 104)
        if last == 104:
            assert counts["drawn"] > 0
    assert needed_frames([7], 1, anchored=True).tolist() == [0, 5, 6, 7]
    with pytest.raises(EvreidError, match="start states must be one of drawn, anchored"):
        OnTheFlyEvents(cfg, start_states="exact")


def test_the_config_chooses_the_threshold_source(fixtures_dir):
    """EVENTS.THRESHOLDS reaches the loader's on-the-fly source; a wrong value is one line
    naming the key."""
    from evreid.config import get_cfg
    from evreid.data import build_dataset
    from evreid.data.clips import ClipDataset, EventOptions

    cfg = get_cfg()
    assert EventOptions.from_cfg(cfg).thresholds == "pool"
    cfg.merge_from_list(["EVENTS.SOURCE", "simulate", "EVENTS.THRESHOLDS", "simulator"])
    options = EventOptions.from_cfg(cfg)
    tracklets = build_dataset("mars", fixtures_dir / "mini_mars").train[:1]
    assert ClipDataset(tracklets, 4, "random_interval", events=options)._onthefly.thresholds \
        == "simulator"
    with pytest.raises(EvreidError, match=r"^EVENTS.THRESHOLDS must be one of pool, "
                                          r"simulator, got 'exact'$"):
        EventOptions(source="simulate", thresholds="exact")
    cfg.merge_from_list(["EVENTS.START_STATES", "anchored"])
    anchored = ClipDataset(tracklets, 4, "random_interval", events=EventOptions.from_cfg(cfg))
    assert anchored._onthefly.start_states == "anchored" and anchored[(0, 3)]["events"].sum() > 0
    with pytest.raises(EvreidError, match=r"^EVENTS.START_STATES must be one of drawn, "):
        EventOptions(source="simulate", start_states="exact")


def test_start_states_follow_the_uniform_triangular_mixture():
    """Window states drawn from the pool: uniform on (-1, 1) with weight 0.6, else
    triangular peaked at 0 (CDF checked with a KS test)."""
    from scipy.stats import kstest

    from evreid.events.onthefly import UNIFORM_WEIGHT

    u = OnTheFlyEvents()._pool(4096)[1]

    def cdf(x):
        tri = np.where(x < 0, (1 + x) ** 2 / 2, 1 - (1 - x) ** 2 / 2)
        return UNIFORM_WEIGHT * (x + 1) / 2 + (1 - UNIFORM_WEIGHT) * tri

    assert kstest(u, cdf).pvalue > 0.01


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_counts_saturate_at_the_dtype_and_are_counted(dtype):
    """A pixel with more events in a bin than the dtype holds keeps its maximum and the
    excess is counted, never wrapped (tiny thresholds, no refractory period)."""
    cfg = SimulatorConfig.preset("clean", pos_threshold=0.01, neg_threshold=0.01,
                                 threshold_sigma=0.0, min_threshold=0.001)
    frames = np.zeros((3, 2, 3), np.uint8)
    frames[1] = 255                                 # ~350 ON events in window 1
    frames[2, 0] = 255                              # row 1 falls back: OFF events
    luma = dict(enumerate(frames))
    otf = OnTheFlyEvents(cfg, thresholds="simulator")
    wide, n_wide, sat_wide = otf.bins_from_luma(luma, [1, 2], 25, 1, "count", 3,
                                                np.random.default_rng(0), 1, np.int32)
    small, n_small, sat = otf.bins_from_luma(luma, [1, 2], 25, 1, "count", 3,
                                             np.random.default_rng(0), 1, dtype)
    top = np.iinfo(dtype).max
    assert sat_wide == 0 and n_small == n_wide and small.dtype == dtype
    np.testing.assert_array_equal(small, np.minimum(wide, top))
    assert sat == int(np.maximum(wide.astype(np.int64) - top, 0).sum())
    assert (sat > 0) == (wide.max() > top) and wide[0, 0, 0].min() > 300


@pytest.mark.parametrize("preset", ["clean", "default", "realistic"])
@pytest.mark.parametrize("bins", [1, 3, 4])
def test_warm_up_from_frame_zero_makes_every_window_exact(preset, bins):
    """With warm-up windows reaching back to frame 0, nothing is drawn: every window
    (reference carried through the warm-up, leak, closed-form binning) equals the
    simulator's events bin for bin (shot noise off: it is drawn, not simulated)."""
    cfg = SimulatorConfig.preset(preset, shot_noise_rate_hz=0.0)
    frames = moving_video(n=8)
    times = frame_timestamps_us(len(frames), 25)
    idx = np.array([1, 2, 4, 7])
    exact = tracklet_from_times(simulate(frames, times, cfg, seed=11), times).tensor(idx, bins)
    got, count, saturated = OnTheFlyEvents(cfg, thresholds="simulator").bins_from_luma(
        dict(enumerate(frames)), idx, 25, bins, "count", 11, np.random.default_rng(0), 7)
    assert count == int(exact.sum()) > 0 and saturated == 0
    np.testing.assert_array_equal(got, exact)
