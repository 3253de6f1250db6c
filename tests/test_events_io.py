"""Event file formats: exact round trips and one clear error per bad file."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest
import scipy.io

from evreid.errors import EvreidError
from evreid.events import Events, SimulatorConfig, cache_is_fresh, read_events, write_events
from evreid.events.io import read_events_with_meta


def _random_events(n: int, width: int, height: int, seed: int = 0) -> Events:
    rng = np.random.default_rng(seed)
    return Events.from_unsorted(rng.integers(0, 5_000_000, n), rng.integers(0, width, n),
                                rng.integers(0, height, n), rng.choice([-1, 1], n),
                                width, height)


@pytest.mark.parametrize("name", ["ev.npz", "ev.h5", "ev.hdf5", "mats"])
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_round_trip(tmp_path, name, n):
    ev = _random_events(n, 128, 256)
    times = np.linspace(0, 5_000_000, 11).astype(np.int64)
    write_events(tmp_path / name, ev, frame_timestamps_us=times)
    assert read_events(tmp_path / name).equals(ev)


@pytest.mark.parametrize("size", [(128, 128), (40, 30)])
def test_aedat2_round_trip(tmp_path, size):
    ev = _random_events(3000, *size, seed=1)
    write_events(tmp_path / "ev.aedat", ev)
    back = read_events(tmp_path / "ev.aedat")
    assert back.equals(ev)


def test_aedat2_follows_jaer_dvs128_convention(tmp_path):
    # raw x=0, y=0, bit0=0 -> jAER: ON, x mirrored to 127; y=0 is jAER's bottom row
    # raw x=5, y=7, bit0=1 -> OFF at x=122, image row 120
    body = struct.pack(">IIII", (0 << 8) | (0 << 1) | 0, 10, (7 << 8) | (5 << 1) | 1, 20)
    special = struct.pack(">II", 0x8000, 15)            # external event: skipped
    data = b"#!AER-DAT2.0\r\n# a comment\r\n" + body[:8] + special + body[8:]
    (tmp_path / "j.aedat").write_bytes(data)
    ev = read_events(tmp_path / "j.aedat")
    assert (ev.width, ev.height) == (128, 128)
    assert ev.t.tolist() == [10, 20] and ev.p.tolist() == [1, -1]
    assert ev.x.tolist() == [127, 122] and ev.y.tolist() == [127, 120]


def test_aedat2_timestamp_wrap_is_unwrapped(tmp_path):
    body = struct.pack(">IIII", 0, 2**32 - 5, 0, 3)
    (tmp_path / "w.aedat").write_bytes(b"#!AER-DAT2.0\r\n" + body)
    assert read_events(tmp_path / "w.aedat").t.tolist() == [2**32 - 5, 2**32 + 3]


def test_aedat2_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(EvreidError, match="128x128"):
        write_events(tmp_path / "big.aedat", _random_events(5, 128, 256))
    neg = Events(np.array([-5]), np.array([0]), np.array([0]), np.array([1]), 8, 8)
    with pytest.raises(EvreidError, match="uint32"):
        write_events(tmp_path / "neg.aedat", neg)


def test_npz_cache_stores_config_and_frame_times(tmp_path):
    cfg = SimulatorConfig.preset("realistic")
    ev = _random_events(100, 16, 8)
    times = np.array([0, 40_000, 80_000])
    write_events(tmp_path / "c.npz", ev, frame_timestamps_us=times, config=cfg, key="a/b")
    back, meta = read_events_with_meta(tmp_path / "c.npz")
    assert back.equals(ev) and meta["frame_timestamps_us"].tolist() == times.tolist()
    assert meta["config"] == cfg.to_dict() and meta["config_hash"] == cfg.hash()
    assert meta["key"] == "a/b"
    assert cache_is_fresh(tmp_path / "c.npz", cfg)
    assert cache_is_fresh(tmp_path / "c.npz", cfg, num_frames=3)
    assert not cache_is_fresh(tmp_path / "c.npz", cfg, num_frames=4)
    assert not cache_is_fresh(tmp_path / "c.npz", SimulatorConfig.preset("clean"))
    assert not cache_is_fresh(tmp_path / "missing.npz", cfg)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert not cache_is_fresh(tmp_path / "junk.npz", cfg)


def test_truncated_npz(tmp_path):
    write_events(tmp_path / "a.npz", _random_events(2000, 16, 8))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EvreidError, match=r"cut\.npz: truncated or corrupt"):
        read_events(tmp_path / "cut.npz")


def test_npz_with_wrong_keys(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3), width=4, height=4)
    with pytest.raises(EvreidError, match=r"other\.npz: not an evreid event file \(missing key"):
        read_events(tmp_path / "other.npz")


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(EvreidError, match="does not exist"):
        read_events(tmp_path / "nope.npz")
    with pytest.raises(EvreidError, match="does not exist"):
        read_events(tmp_path / "no_folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvreidError, match="no .mat event files"):
        read_events(tmp_path / "empty")
    with pytest.raises(EvreidError, match="unknown event file type '.xyz'"):
        read_events(tmp_path / "x.xyz")


def test_truncated_and_foreign_aedat(tmp_path):
    write_events(tmp_path / "a.aedat", _random_events(10, 64, 64))
    data = (tmp_path / "a.aedat").read_bytes()
    (tmp_path / "cut.aedat").write_bytes(data[:-3])
    with pytest.raises(EvreidError, match=r"cut\.aedat: truncated AEDAT 2.0"):
        read_events(tmp_path / "cut.aedat")
    (tmp_path / "v3.aedat").write_bytes(b"#!AER-DAT3.1\r\n" + b"\0" * 16)
    with pytest.raises(EvreidError, match="version 3.1 is not supported"):
        read_events(tmp_path / "v3.aedat")
    (tmp_path / "raw.aedat").write_bytes(b"\0" * 16)
    with pytest.raises(EvreidError, match="not an AEDAT file"):
        read_events(tmp_path / "raw.aedat")


def test_mat_folder_layout_and_errors(tmp_path):
    folder = tmp_path / "trk"
    folder.mkdir()
    # SDCL-style files: 1-based x/y, 0/1 polarity, numeric order f2 < f10
    for name, t in [("f10.mat", [30, 31]), ("f2.mat", [10, 12])]:
        scipy.io.savemat(folder / name, {
            "section_event_timestamp": np.array([t]), "section_event_polarity": np.array([[1, 0]]),
            "section_event_x": np.array([[1, 128]]), "section_event_y": np.array([[1, 256]])})
    ev = read_events(folder)
    assert ev.t.tolist() == [10, 12, 30, 31] and ev.p.tolist() == [1, -1, 1, -1]
    assert ev.x.tolist() == [0, 127, 0, 127] and ev.y.tolist() == [0, 255, 0, 255]
    assert (ev.width, ev.height) == (128, 256)
    scipy.io.savemat(folder / "f11.mat", {"section_event_x": np.array([[1]])})
    with pytest.raises(EvreidError, match=r"f11\.mat: missing key\(s\) section_event_timestamp"):
        read_events(folder)
    (folder / "f11.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(EvreidError, match=r"f11\.mat: truncated or corrupt"):
        read_events(folder)


def test_h5_errors(tmp_path):
    import h5py

    with h5py.File(tmp_path / "o.h5", "w") as f:
        f.create_dataset("frames", data=np.zeros(3))
    with pytest.raises(EvreidError, match=r"o\.h5: no dataset 'events'"):
        read_events(tmp_path / "o.h5")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(EvreidError, match=r"bad\.h5: truncated or corrupt"):
        read_events(tmp_path / "bad.h5")


def test_optional_packages_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(EvreidError, match="pip install h5py"):
        write_events(tmp_path / "a.h5", _random_events(3, 4, 4))
    monkeypatch.setitem(sys.modules, "aedat", None)
    (tmp_path / "a.aedat4").write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(EvreidError, match="pip install aedat"):
        read_events(tmp_path / "a.aedat4")


def test_writes_are_atomic(tmp_path, monkeypatch):
    write_events(tmp_path / "a.npz", _random_events(10, 4, 4))
    before = (tmp_path / "a.npz").read_bytes()

    import zipfile

    real = zipfile.ZipFile.writestr
    calls = []

    def boom(self, *args, **kwargs):   # fail half-way through the archive
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(RuntimeError):
        write_events(tmp_path / "a.npz", _random_events(20, 4, 4))
    assert (tmp_path / "a.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
