"""The compiled simulator kernel: the same events as the NumPy path, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evreid.errors import EvreidError
from evreid.events import EventSimulator, SimulatorConfig, _kernel, frame_timestamps_us, simulate


def _walking_bar(n: int = 10, h: int = 24, w: int = 20, seed: int = 0) -> np.ndarray:
    """A textured bar moving over a textured background: crossings of every size."""
    rng = np.random.default_rng(seed)
    background = rng.integers(20, 236, (h, w)).astype(np.float64)
    bar = rng.integers(0, 256, (h, 4)).astype(np.float64)
    frames = []
    for k in range(n):
        frame = background.copy()
        x0 = (2 * k) % (w - 4)
        frame[:, x0:x0 + 4] = bar
        frames.append(np.clip(frame * (0.6 + 0.08 * k), 0, 255).astype(np.uint8))
    return np.stack(frames)


def _both(frames, times, cfg, seed=3):
    numpy_path = simulate(frames, times, cfg, seed=seed, device="numpy")
    compiled = simulate(frames, times, cfg, seed=seed, device="numba")
    return numpy_path, compiled


CASES = {
    "clean": SimulatorConfig.preset("clean"),
    "default": SimulatorConfig.preset("default"),
    "realistic": SimulatorConfig.preset("realistic"),
    # several noise events per pixel and interval: segments cut at each of them
    "dense noise": SimulatorConfig.preset("realistic", shot_noise_rate_hz=80.0),
    "long refractory + leak": SimulatorConfig.preset("default", refractory_us=4000,
                                                      leak_rate_hz=8.0,
                                                      shot_noise_rate_hz=20.0),
    "flow upsampling": SimulatorConfig.preset("realistic", upsample="flow"),
    "no lin-log": SimulatorConfig.preset("clean", lin_log_threshold=0.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_numpy_path(name):
    frames = _walking_bar()
    times = frame_timestamps_us(len(frames), 25.0)
    a, b = _both(frames, times, CASES[name])
    assert len(a) > 200
    assert a.equals(b)


def test_compiled_is_the_default_path():
    cfg = SimulatorConfig.preset("realistic", shot_noise_rate_hz=40.0)
    assert EventSimulator(4, 4, cfg).compiled
    assert EventSimulator(4, 4, cfg, device="cpu").compiled
    assert not EventSimulator(4, 4, cfg, device="numpy").compiled
    frames = _walking_bar(6, 12, 10)
    times = frame_timestamps_us(6, 30.0)
    assert simulate(frames, times, cfg, seed=1).equals(
        simulate(frames, times, cfg, seed=1, device="numpy"))


def test_rgb_and_float_frames():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (5, 9, 7, 3), dtype=np.uint8)
    times = np.cumsum(rng.integers(500, 30_000, 5))
    cfg = SimulatorConfig.preset("realistic")
    a, b = _both(rgb, times, cfg)
    assert len(a) and a.equals(b)
    a, b = _both(rgb / 255.0, times, cfg)
    assert len(a) and a.equals(b)


def test_event_order_is_time_then_pixel_then_generation():
    cfg = SimulatorConfig.preset("realistic", shot_noise_rate_hz=200.0)
    frames = _walking_bar(8, 16, 12)
    # coarse timestamps make ties common
    times = np.arange(8) * 40
    ev = simulate(frames, times, cfg, seed=2)
    pix = ev.y.astype(np.int64) * 12 + ev.x
    order = np.lexsort((pix, ev.t))
    assert np.array_equal(order, np.arange(len(ev)))     # already (t, pixel) sorted
    assert np.any(np.diff(ev.t) == 0)                     # and ties did occur
    assert ev.equals(simulate(frames, times, cfg, seed=2, device="numpy"))


def test_busy_bytes_pack_into_a_bit_mask():
    # pass 1 lists busy pixels 8 at a time: one multiplication packs 8 bytes of 0/1 into
    # an 8-bit mask (pixel k -> bit k) for every pattern, and the table lists its bits
    for pattern in range(256):
        word = sum((pattern >> k & 1) << (8 * k) for k in range(8))
        mask = (word * int(_kernel._BYTE_BITS)) % 2**64 >> 56
        assert mask == pattern
        busy = [k for k in range(8) if pattern >> k & 1]
        assert _kernel._BUSY_COUNT[mask] == len(busy)
        assert list(_kernel._BUSY_AT[mask, :len(busy)]) == busy


@pytest.mark.parametrize("height, width", [(1, 1), (7, 5), (256, 128), (3, 32767)])
def test_pixel_tags_decode_to_their_pixels(height, width):
    # each pixel's ON and OFF word, all at 1 us, through the sort that unpacks them
    tags = _kernel.pixel_tags(height * width, width).astype(np.int64)
    n = 2 * len(tags)
    words = np.concatenate([1 << 32 | tags, 1 << 32 | (tags | _kernel._TAG_OFF) & 0xFFFFFFFF])
    t, x, y = np.empty(n, np.int64), np.empty(n, np.int16), np.empty(n, np.int16)
    p = np.empty(n, np.int8)
    _kernel._write_sorted(n, 100, 40_000, words, np.empty(n, np.int64), t, x, y, p, 0)
    index = np.tile(np.arange(height * width), 2)
    assert np.array_equal(x, index % width) and np.array_equal(y, index // width)
    assert np.array_equal(p, np.repeat([1, -1], n // 2)) and np.all(t == 101)
    assert not _kernel.pixel_tags(height * width, width).flags.writeable


@pytest.fixture(scope="module")
def writer():
    """The kernel's segment writer, callable from Python."""
    import numba

    @numba.njit
    def emit(A, B, m, tag, last, R, t_a, t_b, words):
        return _kernel._emit(A, B, m, tag, last, R, t_a + 1, t_a, t_b, 0, words)

    return emit


@settings(max_examples=300, deadline=None)
@given(a=st.floats(-5_000.0, 45_000.0), b=st.floats(0.0, 12_000.0), m=st.integers(1, 20),
       last=st.integers(-20_000, 0), refractory=st.sampled_from([0, 1, 500, 5_000]),
       on=st.booleans())
def test_segment_writer_times_tags_and_refractory_filter(writer, a, b, m, last, refractory, on):
    # crossing k at rint(a + k*b) clamped to (t_a, t_b], the pixel's tag in the low half,
    # and the sequential refractory filter: kept when at least R after the last kept one
    t_a, t_b = 0, 40_000
    tag = np.int32(7 | 3 << 16) | (0 if on else np.int32(_kernel._TAG_OFF))
    words = np.full(m + _kernel._SHORT, -1, np.int64)
    n, last_kept = writer(a, b, np.int64(m), tag, np.int64(last), np.int64(refractory), t_a,
                          t_b, words)
    times = np.clip(np.rint(a + np.arange(1, m + 1) * b).astype(np.int64), t_a + 1, t_b)
    kept, prev = [], last
    for t in times.tolist():
        if refractory == 0 or t - prev >= refractory:
            kept.append(t)
            prev = t
    assert n == len(kept) and last_kept == prev
    assert ((words[:n] >> 32) + t_a).tolist() == kept
    assert np.all(words[:n].astype(np.int32) == tag)


@pytest.mark.parametrize("noise_hz", [50.0, 2000.0])
def test_buffers_grow_and_pass_two_resumes(noise_hz):
    # far too small buffers: pass 2 stops before pixels that do not fit (with and
    # without noise: at 2 kHz nearly every pixel is cut into segments) and resumes
    frames = _walking_bar(5)
    times = frame_timestamps_us(5, 25.0)
    cfg = SimulatorConfig.preset("realistic", shot_noise_rate_hz=noise_hz)
    sim = EventSimulator(24, 20, cfg, seed=3)
    sim._buffers = _kernel.Buffers(1, 24 * 20, 20)
    parts = [sim.add_frame(f, int(t)) for f, t in zip(frames, times, strict=True)]
    assert len(sim._buffers.words) > 8
    expected = simulate(frames, times, cfg, seed=3, device="numpy")
    for name in ("t", "x", "y", "p"):
        got = np.concatenate([getattr(e, name) for e in parts])
        assert np.array_equal(got, getattr(expected, name)), name
    # the state after the video matches too: the next interval is the same
    tail = simulate(np.concatenate([frames, frames[:1]]), np.append(times, times[-1] + 40_000),
                    cfg, seed=3, device="numpy")
    last = sim.add_frame(frames[0], int(times[-1] + 40_000))
    assert np.array_equal(last.t, tail.t[len(expected):])


@pytest.mark.parametrize("fps", [25.0, 10.0, 0.1])
def test_radix_sort_passes_for_every_interval_length(fps):
    # 40 ms: two byte-passes of the radix sort; 100 ms and 10 s: three
    frames = _walking_bar(6)
    times = frame_timestamps_us(6, fps)
    a, b = _both(frames, times, SimulatorConfig.preset("realistic", shot_noise_rate_hz=20.0))
    assert len(a) > 500 and a.equals(b)
    pix = b.y.astype(np.int64) * 20 + b.x
    assert np.array_equal(np.lexsort((pix, b.t)), np.arange(len(b)))


@pytest.mark.parametrize("gap_us, leak_hz", [(20_000_000, 1.0), (2**32 + 1_000, 0.01)])
def test_very_long_interval_takes_the_merge_sort(gap_us, leak_hz):
    # 20 s is beyond the radix sort; 72 min (past 2**31 us) beyond the kernel: NumPy takes it
    frames = _walking_bar(3)
    times = np.array([0, gap_us, gap_us + 500])
    assert times[1] - times[0] >= _kernel._RADIX_SPAN
    a, b = _both(frames, times, SimulatorConfig.preset("realistic", leak_rate_hz=leak_hz,
                                                       shot_noise_rate_hz=0.01))
    assert len(a) > 100 and a.equals(b)
    assert a.t.max() > gap_us


@pytest.mark.parametrize("noise_hz", [0.0, 0.5, 300.0])
def test_streaming_equals_whole_video(noise_hz):
    # frame by frame (one kernel call per interval) and the whole video in one call
    frames = _walking_bar(7)
    times = frame_timestamps_us(7, 25.0)
    cfg = SimulatorConfig.preset("realistic", shot_noise_rate_hz=noise_hz)
    sim = EventSimulator(24, 20, cfg, seed=5)
    parts = [sim.add_frame(f, int(t)) for f, t in zip(frames, times, strict=True)]
    whole = simulate(frames, times, cfg, seed=5)
    for name in ("t", "x", "y", "p"):
        assert np.array_equal(np.concatenate([getattr(e, name) for e in parts]),
                              getattr(whole, name)), name


def test_whole_video_call_grows_words_and_output(monkeypatch):
    # quiet frames, then a flicker of ~12 events per pixel and frame: the words overflow
    # inside the kernel, the output after the first interval's estimate (the kernel
    # returns, the sink grows, the waiting interval is written and the call goes on)
    rng = np.random.default_rng(0)
    quiet = np.full((3, 24, 20), 120, np.uint8) + rng.integers(0, 3, (3, 24, 20), np.uint8)
    flicker = np.where(np.arange(6)[:, None, None] % 2, 250, 21).astype(np.uint8)
    frames = np.concatenate([quiet, np.broadcast_to(flicker, (6, 24, 20))])
    times = frame_timestamps_us(len(frames), 25.0)
    reserved = []
    reserve = _kernel.EventSink.reserve
    monkeypatch.setattr(_kernel.EventSink, "reserve",
                        lambda sink, n: reserved.append(n) or reserve(sink, n))
    cfg = SimulatorConfig.preset("realistic", shot_noise_rate_hz=50.0)
    a, b = _both(frames, times, cfg)
    assert len(b) > 12 * 24 * 20 * 5 and a.equals(b)
    assert len(reserved) >= 1 and len(b.t) == len(b.x) == len(b.p)
    assert b.t.base is None or b.t.flags.owndata     # trimmed, not a view of a larger array


def test_low_pass_is_left_to_numpy():
    cfg = SimulatorConfig.preset("realistic", cutoff_hz=200.0)
    assert not EventSimulator(4, 4, cfg).compiled
    with pytest.raises(EvreidError, match="cutoff_hz"):
        EventSimulator(4, 4, cfg, device="numba")


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(2, 5), h=st.integers(1, 5), w=st.integers(1, 5),
       sigma=st.sampled_from([0.0, 0.03]), refractory=st.sampled_from([0, 300, 5000]),
       leak=st.sampled_from([0.0, 3.0]), noise=st.sampled_from([0.0, 30.0, 300.0]),
       seed=st.integers(0, 2**32))
def test_compiled_matches_numpy_on_random_videos(data, n, h, w, sigma, refractory, leak, noise,
                                                 seed):
    frames = np.array(data.draw(st.lists(st.integers(0, 255), min_size=n * h * w,
                                         max_size=n * h * w)), np.uint8).reshape(n, h, w)
    gaps = data.draw(st.lists(st.integers(1, 60_000), min_size=n - 1, max_size=n - 1))
    times = np.concatenate([[data.draw(st.integers(0, 10**9))], gaps]).cumsum()
    cfg = SimulatorConfig.preset("default", threshold_sigma=sigma, refractory_us=refractory,
                                 leak_rate_hz=leak, shot_noise_rate_hz=noise)
    a, b = _both(frames, times, cfg, seed=seed)
    assert a.equals(b)
