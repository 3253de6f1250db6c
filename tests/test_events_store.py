"""The clip-indexed event store: exact round trips, per-window access, bins, freshness,
conversion of the old cache, compact counts that saturate (never wrap)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from evreid.data.clips import compact_counts
from evreid.errors import EvreidError
from evreid.events import Events, SimulatorConfig, cache_is_fresh, read_events, write_events
from evreid.events.representation import tracklet_from_times
from evreid.events.store import (
    STREAMS,
    EventStore,
    convert_to_store,
    read_index,
    write_store,
)


def random_events(rng, n=5000, width=20, height=12, span=400_000, ties=True):
    t = np.sort(rng.integers(1, span, n))
    if ties:   # many events at equal times, across and within pixels
        t = np.sort(np.repeat(t[: n // 3], 3))[:n]
        n = len(t)
    x = rng.integers(0, width, n)
    y = rng.integers(0, height, n)
    p = rng.choice([-1, 1], n)
    order = np.lexsort((y * width + x, t))   # the simulator's (time, pixel) order
    return Events(t[order], x[order], y[order], p[order], width, height)


def frame_times(num=10, step=40_000):
    return np.arange(num, dtype=np.int64) * step + step


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_exact_for_any_events(tmp_path, seed):
    """Mixed polarities within a pixel, ties, events outside every window."""
    rng = np.random.default_rng(seed)
    ev = random_events(rng)
    path = tmp_path / "a.evs"
    write_store(path, ev, frame_times(), first_window_us=10_000)
    assert read_index(path).version == 1
    back = EventStore(path).events()
    assert back.equals(ev)
    assert read_events(path).equals(ev)               # through the io dispatch


def test_round_trip_keeps_a_non_canonical_order(tmp_path):
    ev = Events(np.array([5, 5, 5, 9]), np.array([3, 1, 2, 0]), np.array([0, 0, 0, 1]),
                np.array([1, -1, 1, 1]), 4, 2)      # equal times, pixels not ascending
    write_store(tmp_path / "b.evs", ev, np.array([10]), first_window_us=10)
    assert EventStore(tmp_path / "b.evs").events().equals(ev)


def test_long_runs_and_large_residuals_round_trip(tmp_path):
    """A pixel with 300 events (> the uint8 run length) and irregular times (residuals
    beyond int8, gaps beyond the run's spacing), plus an empty window."""
    rng = np.random.default_rng(3)
    t = np.sort(rng.choice(np.arange(1, 39_999), 300, replace=False))
    t = np.concatenate([t, [40_010, 79_000]])
    ev = Events(t, np.zeros(len(t), int), np.zeros(len(t), int), np.ones(len(t), int), 3, 3)
    write_store(tmp_path / "c.evs", ev, np.array([40_000, 80_000, 120_000]), 40_000)
    store = EventStore(tmp_path / "c.evs")
    assert store.events().equals(ev)
    assert list(store.index.frame_counts) == [300, 2, 0]


@pytest.mark.parametrize("width, height", [(16, 8), (13, 7), (40, 9)])
def test_a_window_reads_only_its_events_and_bins_match_the_reference(tmp_path, width,
                                                                     height):
    """Sensor sizes whose occupancy mask fills whole 64-bit words, one partial word,
    and whole words plus a partial one (the mask is scanned a word at a time)."""
    rng = np.random.default_rng(4)
    ev = random_events(rng, n=20_000, width=width, height=height, ties=False)
    times = frame_times()
    write_store(tmp_path / "d.evs", ev, times)
    store = EventStore(tmp_path / "d.evs")
    ref = tracklet_from_times(ev, times)
    for k in (0, 3, 9):
        assert store.frame_events(k).equals(ref.frame_events(k))
    idx = np.array([1, 4, 4, 8])
    for rep in ("count", "voxel"):
        got, _ = store.bin_frames(idx, 3, rep)
        want = ref.tensor(idx, 3, rep)
        assert got.shape == want.shape == (4, 3, 2, height, width)
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert store.bin_frames(idx, 3, "count")[0].dtype == np.int32


def test_store_is_plain_npz_with_frame_timestamps_and_config_hash(tmp_path):
    """Readable with numpy alone; versioned; config hash and frame times inside."""
    cfg = SimulatorConfig()
    ev = random_events(np.random.default_rng(5), n=500)
    times = frame_times()
    write_events(tmp_path / "e.evs", ev, frame_timestamps_us=times, config=cfg, seed=7)
    with zipfile.ZipFile(tmp_path / "e.evs") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    with np.load(tmp_path / "e.evs", allow_pickle=False) as data:
        assert str(data["format"]) == "evreid-event-store"
        assert int(data["format_version"]) == 1
        assert str(data["config_hash"]) == cfg.hash()
        np.testing.assert_array_equal(data["frame_timestamps_us"], times)
        assert str(data["streams"]).split(",") == list(STREAMS)
        assert int(data["chunk_offsets"][-1]) == len(data["payload"])
    assert cache_is_fresh(tmp_path / "e.evs", cfg, num_frames=10)
    assert not cache_is_fresh(tmp_path / "e.evs", cfg, num_frames=11)
    assert not cache_is_fresh(tmp_path / "e.evs", cfg.replace(pos_threshold=0.3))
    assert read_index(tmp_path / "e.evs").meta["seed"] == 7


def test_old_npz_is_converted_exactly_and_never_misread(tmp_path):
    cfg = SimulatorConfig()
    ev = random_events(np.random.default_rng(6), n=3000)
    times = frame_times()
    write_events(tmp_path / "old.npz", ev, frame_timestamps_us=times, config=cfg)
    out = convert_to_store(tmp_path / "old.npz")
    assert out.suffix == ".evs" and read_events(out).equals(ev)
    assert cache_is_fresh(out, cfg, num_frames=len(times))
    # an old cache given a store's name is an error naming the file, not a misread
    (tmp_path / "fake.evs").write_bytes((tmp_path / "old.npz").read_bytes())
    with pytest.raises(EvreidError, match=r"fake\.evs: not an evreid event store"):
        read_events(tmp_path / "fake.evs")


def test_truncated_store_is_one_clear_error(tmp_path):
    ev = random_events(np.random.default_rng(7), n=2000)
    write_store(tmp_path / "f.evs", ev, frame_times())
    data = (tmp_path / "f.evs").read_bytes()
    (tmp_path / "f.evs").write_bytes(data[: len(data) // 2])
    with pytest.raises(EvreidError, match=r"f\.evs"):
        EventStore(tmp_path / "f.evs").events()


def test_store_needs_frame_timestamps(tmp_path):
    ev = random_events(np.random.default_rng(8), n=10)
    with pytest.raises(EvreidError, match="frame_timestamps_us"):
        write_events(tmp_path / "g.evs", ev)


@pytest.mark.parametrize(("dtype", "top"), [("uint8", 255), ("int16", 32767)])
def test_compact_counts_saturate_and_count_never_wrap(dtype, top):
    counts = np.array([[0, 1, top - 1], [top, top + 1, 70_000]], np.int32)
    tensor, saturated = compact_counts(counts, dtype)
    assert saturated == 2
    assert tensor.tolist() == [[0, 1, top - 1], [top, top, top]]
    assert str(tensor.dtype).endswith(dtype)


def test_simulated_mini_mars_tracklet_round_trips_smaller_than_the_old_cache(
        tmp_path, fixtures_dir):
    from evreid.data import build_dataset
    from evreid.events.cache import tracklet_seed
    from evreid.events.frames import read_frames
    from evreid.events.simulator import frame_timestamps_us, simulate

    tracklet = build_dataset("mars", fixtures_dir / "mini_mars").train[5]
    frames = read_frames(tracklet.frames)
    times = frame_timestamps_us(len(frames), tracklet.fps)
    cfg = SimulatorConfig()
    ev = simulate(frames, times, cfg, seed=tracklet_seed(0, tracklet.key))
    write_events(tmp_path / "t.evs", ev, frame_timestamps_us=times, config=cfg)
    write_events(tmp_path / "t.npz", ev, frame_timestamps_us=times, config=cfg)
    assert read_events(tmp_path / "t.evs").equals(ev)
    new, old = ((tmp_path / f"t.{s}").stat().st_size for s in ("evs", "npz"))
    assert new < 0.7 * old, (new, old)


def test_store_counts_saturate_at_the_compact_dtype_and_are_counted(tmp_path):
    """300 events in one pixel and bin: uint8 holds 255 and reports 45, int16 all 300."""
    t = np.arange(1, 301)
    ev = Events(t, np.ones(300, int), np.zeros(300, int), np.ones(300, int), 2, 1)
    write_store(tmp_path / "s.evs", ev, np.array([1000]), first_window_us=1000)
    store = EventStore(tmp_path / "s.evs")
    small, saturated = store.bin_frames([0], 1, "count", np.uint8)
    assert small.dtype == np.uint8 and small[0, 0, 0, 0, 1] == 255 and saturated == 45
    wide, saturated = store.bin_frames([0], 1, "count", np.int16)
    assert wide[0, 0, 0, 0, 1] == 300 and saturated == 0


def test_the_documented_plain_numpy_reader_decodes_a_window(tmp_path):
    """docs/EVENT_STORE.md's snippet (numpy + zstandard only) gives frame 5's events."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "EVENT_STORE.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    rng = np.random.default_rng(9)
    ev = random_events(rng, n=30_000, width=16, height=8, ties=False)
    write_store(tmp_path / "tracklet.evs", ev, frame_times())
    ns: dict = {}
    code = code.replace('"tracklet.evs"', repr(str(tmp_path / "tracklet.evs")))
    exec(compile(code, "EVENT_STORE.md", "exec"), ns)
    want = tracklet_from_times(ev, frame_times()).frame_events(5)
    order = np.lexsort((ns["pix"], ns["t"]))
    assert np.array_equal(ns["t"][order], want.t)
    assert np.array_equal(ns["x"][order], want.x) and np.array_equal(ns["y"][order], want.y)
    assert np.array_equal(ns["p"][order], want.p)


def test_events_convert_command_turns_an_old_cache_into_a_store(tmp_path, capsys):
    from evreid.cli import main

    cfg = SimulatorConfig()
    ev = random_events(np.random.default_rng(10), n=3000)
    write_events(tmp_path / "old.npz", ev, frame_timestamps_us=frame_times(), config=cfg)
    assert main(["events", "convert", str(tmp_path / "old.npz"), str(tmp_path / "new.evs")]) == 0
    assert "10 frame windows" in capsys.readouterr().out
    assert read_events(tmp_path / "new.evs").equals(ev)
    assert cache_is_fresh(tmp_path / "new.evs", cfg, num_frames=10)


def test_single_polarity_runs_take_the_branch_free_counts_and_match_the_reference(tmp_path):
    """One polarity per pixel (as a simulator gives within a window): the fast count
    pass, with long runs, large residuals and a run above uint8's range, equals the
    reference binning; the run above the range falls back and saturates, counted."""
    rng = np.random.default_rng(7)
    ev = random_events(rng, n=30_000, width=16, height=8, ties=False)
    pol = np.where((ev.x + ev.y) % 2 == 0, 1, -1).astype(np.int8)
    t = np.concatenate([ev.t, np.full(300, 200_001) + np.arange(300) * 3])
    x = np.concatenate([ev.x, np.full(300, 3)])
    y = np.concatenate([ev.y, np.full(300, 2)])
    p = np.concatenate([pol, np.where((3 + 2) % 2 == 0, 1, -1) * np.ones(300, np.int8)])
    ev = Events.from_unsorted(t, x, y, p, 16, 8)
    times = frame_times()
    write_store(tmp_path / "f.evs", ev, times)
    store = EventStore(tmp_path / "f.evs")
    ref = tracklet_from_times(ev, times)
    idx = np.arange(len(times))
    for bins in (1, 2, 3, 4):      # 4: past the fast path's register counts
        got, saturated = store.bin_frames(idx, bins, "count", np.int32)
        np.testing.assert_array_equal(got, ref.tensor(idx, bins, "count"))
        assert saturated == 0
    small, saturated = store.bin_frames(idx, 1, "count", np.uint8)
    want = ref.tensor(idx, 1, "count")
    np.testing.assert_array_equal(small, np.minimum(want, 255))
    assert saturated == int(np.maximum(want - 255, 0).sum()) > 0


def test_a_store_of_another_version_is_refused_by_name(tmp_path):
    """Version 2 (tried and dropped, see docs/EVENT_STORE.md) or any other: an error
    naming the file and the version, never a misread of its chunks."""
    write_store(tmp_path / "g.evs", random_events(np.random.default_rng(9), n=500),
                frame_times())
    with zipfile.ZipFile(tmp_path / "g.evs") as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    with zipfile.ZipFile(tmp_path / "v2.evs", "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            if name == "format_version.npy":
                with zf.open(name, "w") as handle:
                    np.lib.format.write_array(handle, np.array(2, np.int64))
            else:
                zf.writestr(name, data)
    with pytest.raises(EvreidError, match=r"v2\.evs: event store version 2"):
        EventStore(tmp_path / "v2.evs")
    with pytest.raises(EvreidError, match=r"v2\.evs"):
        read_events(tmp_path / "v2.evs")


def test_time_streams_are_zstd_frames_with_raw_literals(tmp_path):
    """``t_single`` / ``t_ends`` (near-uniform byte planes) are written at a negative
    zstd level: still standard frames, but not entropy-coded (they decode at memory
    speed), while the skewed streams stay compressed."""
    import zstandard

    ev = random_events(np.random.default_rng(12), n=20_000, width=64, height=32, ties=False)
    write_store(tmp_path / "h.evs", ev, frame_times())
    idx = read_index(tmp_path / "h.evs")
    with np.load(tmp_path / "h.evs") as data:
        payload = data["payload"].tobytes()
    dctx = zstandard.ZstdDecompressor()
    sizes = {name: [0, 0] for name in STREAMS}
    for k in range(idx.num_frames):
        for s, name in enumerate(STREAMS):
            a, b = idx.chunk_offsets[k * 10 + s], idx.chunk_offsets[k * 10 + s + 1]
            if b > a:
                sizes[name][0] += b - a
                sizes[name][1] += len(dctx.decompress(payload[a:b]))
    for name in ("t_single", "t_ends"):
        stored, raw = sizes[name]
        assert raw > 0 and stored >= raw            # literals kept raw (+ frame header)
    assert sizes["n"][0] < sizes["n"][1]             # the skewed streams still compressed


def test_reciprocal_floor_is_exact_below_its_bound():
    """The count kernel floors dividend * (1 + 2**-40) / den: exact for dividends below
    2**39, checked at the hardest points (multiples of den and one below them)."""
    from evreid.events.store import _EXACT_BELOW, _UP

    rng = np.random.default_rng(13)
    den = rng.integers(1, 5000, 20_000)
    q = rng.integers(0, _EXACT_BELOW // den)
    for a in (q * den, q * den + den - 1, np.minimum(q * den + den, _EXACT_BELOW - 1)):
        got = (a.astype(np.float64) * (_UP / den.astype(np.float64))).astype(np.int64)
        np.testing.assert_array_equal(got, a // den)


def test_runs_past_the_reciprocal_bound_bin_exactly(tmp_path):
    """A run whose n * span passes 2**39 (a 3e9 us window, 32-bit times) takes the
    integer path and bins like the reference, events on and next to the bin edges
    included."""
    rng = np.random.default_rng(14)
    window = 3_000_000_000
    edges = [window // 3, window // 3 + 1, 2 * window // 3, 2 * window // 3 + 1]
    t = np.concatenate([np.arange(1, 201) * 15_000_000 - 7, edges,
                        np.sort(rng.integers(window + 1, 2 * window, 50))])
    x = np.concatenate([np.zeros(204, int), rng.integers(0, 4, 50)])
    y = np.concatenate([np.zeros(204, int), rng.integers(0, 3, 50)])
    ev = Events.from_unsorted(t, x, y, np.ones(len(t), int), 4, 3)
    times = np.array([window, 2 * window])
    write_store(tmp_path / "i.evs", ev, times, window)
    store = EventStore(tmp_path / "i.evs")
    assert store.index.time_dtype == "<u4"
    got, _ = store.bin_frames([0, 1], 3, "count", np.int32)
    want = tracklet_from_times(ev, times, window).tensor([0, 1], 3)
    assert want[0].sum() == 204
    np.testing.assert_array_equal(got, want)
