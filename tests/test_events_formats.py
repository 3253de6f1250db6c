"""Recorded event formats: real files, exact decoders, streaming, one clear error per bad file."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from evreid.errors import EvreidError
from evreid.events import Events, read_events, write_events
from evreid.events.io import describe_events, iter_events, open_events


def _events(n: int, width: int = 640, height: int = 480, seed: int = 0, gap: int = 3000,
            start: int = 5) -> Events:
    rng = np.random.default_rng(seed)
    t = start + np.cumsum(rng.integers(0, gap, n))
    return Events.from_unsorted(t, rng.integers(0, width, n), rng.integers(0, height, n),
                                rng.choice([-1, 1], n), width, height)


# --- real recordings --------------------------------------------------------------------
def test_aedat4_fixture(fixtures_dir):
    ev = read_events(fixtures_dir / "event_cameras" / "dvxplorer_320x240.aedat4")
    assert len(ev) == 111_954
    assert (ev.width, ev.height) == (320, 240)
    assert ev.t[0] == 1_605_537_493_718_345 and ev.duration_us == 589_917
    assert set(np.unique(ev.p).tolist()) == {-1, 1}


def test_evt2_fixture_size_from_the_gen3_plugin(fixtures_dir):
    path = fixtures_dir / "event_cameras" / "prophesee_evt2.raw"
    ev = read_events(path)
    assert len(ev) == 539_481
    assert (ev.width, ev.height) == (640, 480)     # "% plugin_name hal_plugin_gen3_fx3"
    assert (int(ev.t[0]), int(ev.t[-1])) == (1_317_888, 1_367_888)
    assert int((ev.p > 0).sum()) == 367_855
    info = describe_events(path)
    assert (info.format, info.events, info.duration_us) == ("evt2", 539_481, 50_000)
    # an explicit size wins over the header; a too-small one names the byte at fault
    assert read_events(path, sensor_size=(720, 1280)).width == 1280
    with pytest.raises(EvreidError, match=r"prophesee_evt2\.raw: event at byte \d+ has x="):
        read_events(path, sensor_size=(100, 100))


def test_evt2_fixture_streams_in_windows(fixtures_dir):
    path = fixtures_dir / "event_cameras" / "prophesee_evt2.raw"
    whole = read_events(path)
    windows = list(iter_events(path, window_us=7_000, max_events=40_000))
    assert [w.end_us - w.start_us for w in windows] == [7_000] * len(windows)
    assert windows[0].start_us == whole.t[0] - 1 and len(windows) == 8
    assert Events.concatenate([w.events for w in windows]).equals(whole)
    for w in windows:
        assert len(w.events) == 0 or (w.events.t[0] > w.start_us and w.events.t[-1] <= w.end_us)


# --- exact round trips of every format evreid writes ----------------------------------
@pytest.mark.parametrize("name, fmt", [("a.raw", None), ("a.raw", "evt3"), ("a.dat", None),
                                       ("a.txt", None), ("a.csv", None), ("a.npz", None),
                                       ("a.h5", None)])
@pytest.mark.parametrize("n", [0, 1, 3000])
def test_round_trip(tmp_path, name, fmt, n):
    ev = _events(n, gap=40_000)      # up to 2 minutes: EVT 3.0 time-high wraps every 16.7 s
    write_events(tmp_path / name, ev, format=fmt)
    assert read_events(tmp_path / name, format=fmt).equals(ev)


def test_time_high_gaps_are_bridged(tmp_path):
    # a 30 s pause (EVT 3.0 wraps after 16.7 s) and a 5 h pause (EVT 2.0 after 4.77 h)
    t = np.array([1, 2, 30_000_002, 30_000_003, 5 * 3600 * 10**6 + 7])
    ev = Events(t, [1, 2, 3, 4, 5], [0, 1, 2, 3, 4], [1, -1, 1, -1, 1], 8, 8)
    write_events(tmp_path / "e2.raw", ev)
    assert read_events(tmp_path / "e2.raw").equals(ev)
    write_events(tmp_path / "e3.raw", ev[:4], format="evt3")
    assert read_events(tmp_path / "e3.raw").equals(ev[:4])


def test_writers_refuse_what_the_format_cannot_hold(tmp_path):
    late = Events(np.array([2**34]), [0], [0], [1], 4, 4)
    with pytest.raises(EvreidError, match=r"x\.raw: an EVT 2\.0 stream starts below 2\^34 "
                                          r"us.*--rebase-time"):
        write_events(tmp_path / "x.raw", late)
    with pytest.raises(EvreidError, match=r"y\.dat: DAT timestamps"):
        write_events(tmp_path / "y.dat", late)
    with pytest.raises(EvreidError, match=r"z\.raw: an EVT 3\.0 stream starts below 2\^24"):
        write_events(tmp_path / "z.raw", late, format="evt3")
    with pytest.raises(EvreidError, match="writing AEDAT 4 is not supported"):
        write_events(tmp_path / "w.aedat4", late)


# --- EVT 3.0 decoding, word by word -----------------------------------------------------
def _evt3_file(path, words, header="% evt 3.0\n% geometry 64x32\n% end\n"):
    path.write_bytes(header.encode() + np.array(words, dtype="<u2").tobytes())
    return path


def test_evt3_vectors_and_time_words(tmp_path):
    words = [0x8001, 0x6005, 0x0007,          # time high 1, time low 5, y 7
             0x2000 | 0x800 | 3,              # ON at x=3
             0x3000 | 10,                     # vector base x=10, OFF
             0x4000 | 0b100000000101,         # VECT_12: x = 10, 12, 21; then base 22
             0x5000 | 0b10000001,             # VECT_8: x = 22, 29
             0xA123, 0xE000, 0x7000,          # trigger, others, continued: skipped
             0x6006, 0x0009, 0x2000 | 0]      # time low 6, y 9, OFF at x=0
    ev = read_events(_evt3_file(tmp_path / "v.raw", words))
    t1 = (1 << 12) | 5
    assert ev.t.tolist() == [t1] * 6 + [t1 + 1]
    assert ev.x.tolist() == [3, 10, 12, 21, 22, 29, 0]
    assert ev.y.tolist() == [7] * 6 + [9]
    assert ev.p.tolist() == [1, -1, -1, -1, -1, -1, -1]
    # the same file decoded 2 words at a time: state carries across chunks
    reader = open_events(tmp_path / "v.raw")
    assert Events.concatenate(list(reader.chunks(2))).equals(ev)


def test_evt3_time_high_wrap_and_events_before_time(tmp_path):
    words = [0x0001, 0x2005,                  # an event before any time high: dropped
             0x8FFF, 0x6FFF, 0x2001,          # t = 2^24 - 1
             0x8000, 0x6000, 0x2002]          # the counter wrapped: t = 2^24
    ev = read_events(_evt3_file(tmp_path / "w.raw", words))
    assert ev.t.tolist() == [2**24 - 1, 2**24] and ev.x.tolist() == [1, 2]


def test_prophesee_header_sizes(tmp_path):
    word = struct.pack("<I", (8 << 28) | 1) + struct.pack("<I", (1 << 28) | (5 << 11) | 3)
    cases = {"% evt 2.0\n% format EVT2;height=720;width=1280\n": (1280, 720),
             "% evt 2.0\n% geometry 304x240\n": (304, 240),
             "% evt 2.0\n% sensor_generation 4.1\n": (1280, 720),
             "% evt 2.0\n% plugin_name hal_plugin_imx636_evk4\n": (1280, 720)}
    for i, (header, size) in enumerate(cases.items()):
        path = tmp_path / f"h{i}.raw"
        path.write_bytes(header.encode() + word)
        ev = read_events(path)
        assert (ev.width, ev.height) == size and ev.t.tolist() == [64 + 0]
    (tmp_path / "n.raw").write_bytes(b"% evt 2.0\n% plugin_name mystery\n" + word)
    with pytest.raises(EvreidError, match=r"n\.raw: the header gives no sensor size.*sensor_size"):
        read_events(tmp_path / "n.raw")
    assert read_events(tmp_path / "n.raw", sensor_size=(10, 10)).x.tolist() == [5]


# --- one clear error per bad file ---------------------------------------------------------
def test_bad_binary_files(tmp_path):
    ev = _events(50)
    write_events(tmp_path / "a.raw", ev)
    data = (tmp_path / "a.raw").read_bytes()
    (tmp_path / "cut.raw").write_bytes(data[:-2])
    with pytest.raises(EvreidError, match=r"cut\.raw: truncated EVT2 file: 2 trailing byte"):
        read_events(tmp_path / "cut.raw")
    (tmp_path / "noheader.raw").write_bytes(data[data.index(b"% end\n") + 6:])
    with pytest.raises(EvreidError, match=r"noheader\.raw: not a Prophesee \.raw file"):
        read_events(tmp_path / "noheader.raw")
    # an EVT 3.0 stream labelled EVT 2.0: the first foreign word is named by its byte
    (tmp_path / "mislabel.raw").write_bytes(b"% evt 2.0\n% geometry 64x64\n% end\n"
                                            + struct.pack("<I", 0x4000_0000))
    with pytest.raises(EvreidError, match=r"mislabel\.raw: byte 33: event type 0x4 is not an "
                                          r"EVT 2\.0 type"):
        read_events(tmp_path / "mislabel.raw")
    (tmp_path / "evt21.raw").write_bytes(b"% format EVT21;height=10;width=10\n% end\n")
    with pytest.raises(EvreidError, match="EVT21' is not supported"):
        read_events(tmp_path / "evt21.raw")
    (tmp_path / "empty.dat").write_bytes(b"")
    with pytest.raises(EvreidError, match=r"empty\.dat: empty file \(0 bytes\)"):
        read_events(tmp_path / "empty.dat")
    write_events(tmp_path / "a.dat", ev)
    dat = (tmp_path / "a.dat").read_bytes()
    (tmp_path / "cut.dat").write_bytes(dat[:-5])
    with pytest.raises(EvreidError, match=r"cut\.dat: truncated DAT file: 3 trailing byte"):
        read_events(tmp_path / "cut.dat")
    (tmp_path / "wrong.aedat4").write_bytes(b"#!AER-DAT2.0\r\n" + b"\0" * 32)
    with pytest.raises(EvreidError, match=r"wrong\.aedat4: not an AEDAT 4 file"):
        read_events(tmp_path / "wrong.aedat4")


def test_truncated_aedat4(tmp_path, fixtures_dir):
    data = (fixtures_dir / "event_cameras" / "dvxplorer_320x240.aedat4").read_bytes()
    (tmp_path / "cut.aedat4").write_bytes(data[: len(data) // 2])
    with pytest.raises(EvreidError, match=r"cut\.aedat4: truncated or corrupt AEDAT 4 file"):
        read_events(tmp_path / "cut.aedat4")


def test_text_format(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("# comment\n640 480\n10.5 1 2 0\n12 3 4 1\n")
    ev = read_events(path, time_unit_us=100)          # Event-ReId: 100 us ticks
    assert ev.t.tolist() == [1050, 1200] and ev.p.tolist() == [-1, 1]
    assert (ev.width, ev.height) == (640, 480)
    path.write_text("1,2,3,-1\n0,1,1,1\n")
    with pytest.raises(EvreidError, match=r"e\.txt: no 'width height' first row; pass "
                                          r"sensor_size"):
        read_events(path)
    ev = read_events(path, sensor_size=(4, 4))
    assert ev.t.tolist() == [0, 1] and ev.x.tolist() == [1, 2] and ev.p.tolist() == [1, -1]


@pytest.mark.parametrize("body, line, what", [
    ("4 4\n1 0 0 1\n2 0 0\n", 3, "expected 4 numbers"),
    ("4 4\n1 0 0 1\n2 0 zero 1\n", 3, "expected 4 numbers"),
    ("4 4\n1 0 0 1\n\n2 0 9 1\n", 4, "is not an event of the 4x4 sensor"),
    ("4 4\n1 0 0 2\n", 2, "is not an event"),
    ("4 4\n1 0.5 0 1\n", 2, "is not an event"),
])
def test_text_bad_rows_name_their_line(tmp_path, body, line, what):
    (tmp_path / "bad.txt").write_text(body)
    with pytest.raises(EvreidError, match=rf"bad\.txt: line {line}: .*{what}"):
        read_events(tmp_path / "bad.txt")


def test_empty_text_files(tmp_path):
    (tmp_path / "blank.txt").write_text("\n# only a comment\n")
    with pytest.raises(EvreidError, match=r"blank\.txt: empty event text file"):
        read_events(tmp_path / "blank.txt")
    (tmp_path / "size.txt").write_text("8 6\n")
    assert len(read_events(tmp_path / "size.txt")) == 0


def test_iter_events_refuses_time_going_back(tmp_path):
    (tmp_path / "b.txt").write_text("4 4\n10 0 0 1\n50 0 0 1\n20 0 0 1\n")
    with pytest.raises(EvreidError, match=r"b\.txt: events out of time order"):
        list(iter_events(tmp_path / "b.txt", window_us=5, max_events=2))
    assert read_events(tmp_path / "b.txt").t.tolist() == [10, 20, 50]   # sorted whole


# --- structured arrays ------------------------------------------------------------------
def test_structured_round_trip():
    ev = _events(500, 346, 260, seed=3)
    arr = ev.to_structured()
    assert arr.dtype.names == ("t", "x", "y", "p") and set(np.unique(arr["p"])) <= {0, 1}
    assert Events.from_structured(arr, 346, 260).equals(ev)
    signed = ev.to_structured("signed")
    assert signed["p"].tolist() == ev.p.tolist()
    assert Events.from_structured(signed, 346, 260).equals(ev)


def test_from_structured_foreign_layouts():
    # expelliarmus / tonic style: other field order, bool polarity, unsorted rows
    arr = np.zeros(3, dtype=[("x", "<u2"), ("y", "<u2"), ("p", "?"), ("t", "<i8")])
    arr["t"], arr["x"], arr["y"], arr["p"] = [30, 10, 20], [1, 2, 3], [0, 1, 2], [1, 0, 1]
    ev = Events.from_structured(arr, 4, 4)
    assert ev.t.tolist() == [10, 20, 30] and ev.x.tolist() == [2, 3, 1]
    assert ev.p.tolist() == [-1, 1, 1]
    secs = np.array([(0.5, 1, 1, 1)], dtype=[("t", "f8"), ("x", "i4"), ("y", "i4"), ("p", "i4")])
    assert Events.from_structured(secs, 2, 2, time_unit_us=1e6).t.tolist() == [500_000]
    with pytest.raises(EvreidError, match="need a field 'p'"):
        Events.from_structured(np.zeros(1, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2")]), 2, 2)
