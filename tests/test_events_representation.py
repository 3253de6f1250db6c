"""Events container, voxel / count tensors and per-frame slicing."""

from __future__ import annotations

import numpy as np
import pytest

from evreid.errors import EvreidError
from evreid.events import Events, simulate, to_count_frames, to_voxel, write_events
from evreid.events.representation import load_tracklet_events, tracklet_from_times


def _ev(t, x, y, p, w=4, h=3) -> Events:
    return Events(np.array(t), np.array(x), np.array(y), np.array(p), w, h)


def test_events_validation_and_window():
    ev = _ev([0, 10, 10, 25], [0, 1, 2, 3], [0, 1, 2, 0], [1, -1, 1, -1])
    assert len(ev) == 4 and ev.t.dtype == np.int64 and ev.x.dtype == np.int16
    assert ev.window(0, 10).t.tolist() == [10, 10]        # (start, end]
    assert len(ev.window(10, 24)) == 0 and len(ev.window(-1, 100)) == 4
    with pytest.raises(EvreidError, match="not sorted"):
        _ev([5, 1], [0, 0], [0, 0], [1, 1])
    with pytest.raises(EvreidError, match="'x'.*outside"):
        _ev([1], [4], [0], [1])
    with pytest.raises(EvreidError, match="-1 and \\+1"):
        _ev([1], [0], [0], [0])
    with pytest.raises(EvreidError, match="differ in length"):
        _ev([1, 2], [0], [0], [1])
    with pytest.raises(EvreidError, match="non-integer"):
        _ev([1.5], [0], [0], [1])


def test_concatenate_and_from_unsorted():
    a = _ev([1, 5], [0, 1], [0, 0], [1, 1])
    b = _ev([3, 9], [2, 3], [1, 1], [-1, -1])
    c = Events.concatenate([a, b])
    assert c.t.tolist() == [1, 3, 5, 9] and c.x.tolist() == [0, 2, 1, 3]
    assert c.equals(Events.from_unsorted(np.array([9, 1, 5, 3]), [3, 0, 1, 2], [1, 0, 0, 1],
                                         [-1, 1, 1, -1], 4, 3))
    assert not c.equals(a)
    with pytest.raises(EvreidError, match="cannot concatenate"):
        Events.concatenate([a, Events.empty(5, 3)])


def test_voxel_bilinear_in_time():
    ev = _ev([25, 50, 100, 100], [0, 1, 2, 2], [0, 0, 1, 1], [1, -1, 1, -1])
    vox = to_voxel(ev, 0, 100, 3, 3, 4)
    assert vox.shape == (3, 2, 3, 4) and vox.dtype == np.float32
    # t=25 -> tau 0.5 (half in bins 0 and 1); t=50 -> tau 1; t=100 -> tau 2
    assert vox[0, 0, 0, 0] == 0.5 and vox[1, 0, 0, 0] == 0.5
    assert vox[1, 1, 0, 1] == 1.0 and vox[2, 0, 1, 2] == 1.0 and vox[2, 1, 1, 2] == 1.0
    assert vox.sum() == 4.0
    signed = to_voxel(ev, 0, 100, 3, 3, 4, polarity="signed")
    assert signed.shape == (3, 3, 4) and signed[2, 1, 2] == 0.0 and signed[1, 0, 1] == -1.0
    assert to_voxel(ev, 0, 100, 1, 3, 4).sum() == 4.0
    assert to_voxel(ev, 25, 100, 3, 3, 4).sum() == 3.0     # t=25 is outside (25, 100]


def test_count_frames_bins_closed_on_the_right():
    ev = _ev([1, 25, 26, 50, 100], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, -1, 1])
    cnt = to_count_frames(ev, 0, 100, 4, 3, 4)
    assert cnt[:, 0, 0, 0].tolist() == [2, 1, 0, 1] and cnt[:, 1, 0, 0].tolist() == [0, 1, 0, 0]
    signed = to_count_frames(ev, 0, 100, 4, 3, 4, polarity="signed")
    assert signed[:, 0, 0].tolist() == [2, 0, 0, 1]


def test_normalize_and_clip():
    ev = _ev([10] * 6 + [20], [0] * 6 + [1], [0] * 7, [1] * 7)
    cnt = to_count_frames(ev, 0, 100, 1, 3, 4, clip=3.0)
    assert cnt[0, 0, 0, 0] == 3.0 and cnt[0, 0, 0, 1] == 1.0
    mx = to_count_frames(ev, 0, 100, 1, 3, 4, normalize="max")
    assert mx.max() == 1.0 and mx[0, 0, 0, 1] == pytest.approx(1 / 6)
    ms = to_count_frames(ev, 0, 100, 1, 3, 4, normalize="mean_std")
    nz = ms[ms != 0]
    assert nz.mean() == pytest.approx(0.0, abs=1e-6) and nz.std() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(EvreidError, match="normalize"):
        to_count_frames(ev, 0, 100, 1, 3, 4, normalize="l2")


def test_counts_never_wrap():
    n = 70_000   # more than int16 / uint16 can count at one pixel
    ev = Events(np.arange(n), np.zeros(n), np.zeros(n), np.ones(n), 1, 1)
    assert to_count_frames(ev, -1, n, 1, 1, 1)[0, 0, 0, 0] == n


def test_grid_too_small_is_an_error():
    ev = _ev([1], [3], [2], [1])
    with pytest.raises(EvreidError, match="outside the requested 2x2"):
        to_count_frames(ev, 0, 10, 1, 2, 2)


def test_tracklet_windows_follow_frame_times():
    times = np.array([0, 100, 200, 300])
    ev = _ev([50, 100, 101, 200, 250, 300], [0] * 6, [0] * 6, [1] * 6)
    te = tracklet_from_times(ev, times)
    assert [len(te.frame_events(k)) for k in range(4)] == [0, 2, 2, 2]
    assert te.frame_events(1).t.tolist() == [50, 100]    # (t0, t1], t1 inclusive
    tensor = te.tensor([3, 1, 0], bins=2)
    assert tensor.shape == (3, 2, 2, 3, 4) and tensor.dtype == np.float32
    assert tensor[0, :, 0, 0, 0].tolist() == [1, 1] and tensor[2].sum() == 0
    first = tracklet_from_times(ev, times, first_window_us=100)
    assert len(first.frame_events(0)) == 0       # nothing before t0 here
    early = tracklet_from_times(_ev([-40, 60], [0, 0], [0, 0], [1, 1]), times, 50)
    assert early.frame_events(0).t.tolist() == [-40]
    vox = te.tensor([1], bins=3, representation="voxel")
    assert vox.shape == (1, 3, 2, 3, 4) and vox.sum() == 2.0
    with pytest.raises(EvreidError, match="representation"):
        te.tensor([1], 3, representation="image")


def test_load_tracklet_events_from_cache(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    times = np.array([0, 30_000, 70_000, 100_000, 140_000])   # not a fixed fps
    ev = simulate(frames, times)
    write_events(tmp_path / "a.npz", ev, frame_timestamps_us=times)
    te = load_tracklet_events(str(tmp_path / "a.npz"), 5, fps=25.0)
    assert te.windows[:, 1].tolist() == times.tolist()
    assert sum(len(te.frame_events(k)) for k in range(5)) == len(ev)
    for k in range(1, 5):
        assert te.frame_events(k).equals(ev.window(int(times[k - 1]), int(times[k])))
    with pytest.raises(EvreidError, match="cache holds 5 frame timestamps.*6 frames"):
        load_tracklet_events(str(tmp_path / "a.npz"), 6, fps=25.0)
    write_events(tmp_path / "b.h5", ev)
    by_fps = load_tracklet_events(str(tmp_path / "b.h5"), 5, fps=25.0)
    assert by_fps.windows[:, 1].tolist() == [0, 40_000, 80_000, 120_000, 160_000]
    with pytest.raises(EvreidError, match="does not exist"):
        load_tracklet_events(str(tmp_path / "missing.npz"), 5, 25.0)


def test_frame_zero_window_defaults_to_stored_value(tmp_path, monkeypatch):
    from evreid.events import Events, load_tracklet_events, write_events

    ev = Events(t=np.array([-40_000, -10_000, 20_000, 60_000], dtype=np.int64),
                x=np.array([0, 1, 2, 3], dtype=np.int16), y=np.zeros(4, dtype=np.int16),
                p=np.array([1, -1, 1, 1], dtype=np.int8), width=4, height=2)
    times = np.array([0, 50_000, 100_000], dtype=np.int64)
    write_events(tmp_path / "a.npz", ev, frame_timestamps_us=times, first_window_us=50_000)
    write_events(tmp_path / "b.npz", ev, frame_timestamps_us=times)
    stored = load_tracklet_events(str(tmp_path / "a.npz"), 3, 20.0).tensor([0, 1, 2], 1)
    assert stored[:, 0].sum(axis=(1, 2, 3)).tolist() == [2.0, 1.0, 1.0]
    absent = load_tracklet_events(str(tmp_path / "b.npz"), 3, 20.0).tensor([0, 1, 2], 1)
    assert absent[:, 0].sum(axis=(1, 2, 3)).tolist() == [0.0, 1.0, 1.0]
    forced = load_tracklet_events(str(tmp_path / "a.npz"), 3, 20.0, first_window_us=0)
    assert forced.tensor([0], 1).sum() == 0.0
    # identical events -> identical bytes, whatever the clock says (fixed zip dates)
    import time

    monkeypatch.setattr(time, "localtime",
                        lambda *_: time.struct_time((2001, 2, 3, 4, 5, 6, 0, 34, 0)))
    write_events(tmp_path / "c.npz", ev, frame_timestamps_us=times, first_window_us=50_000)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "c.npz").read_bytes()
