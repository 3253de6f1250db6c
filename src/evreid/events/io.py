"""Event files: read and write every format a re-ID user is likely to hold.

* ``.evs`` -- the clip-indexed event store, the simulator's default cache
  (:mod:`evreid.events.store`, docs/EVENT_STORE.md): one chunk per frame window.
* ``.npz`` -- the simulator's older cache (compressed). Besides the columns it stores
  the sensor size, the frame timestamps used for simulation (so per-frame
  slicing is exact) and the simulator config with its hash (so stale caches
  are detected: :func:`cache_is_fresh`).
* ``.h5`` / ``.hdf5`` -- v2e's layout: one dataset ``events`` of shape (N, 4)
  with rows ``t, x, y, p`` (t in microseconds, p in {0, 1}); written as uint32
  (int64 when a timestamp does not fit); sensor size in attributes
  ``width`` / ``height`` (read back when present, else max + 1). Needs h5py
  (optional dependency).
* a folder of per-frame ``.mat`` files -- the SDCL reference release: one file
  per frame, keys ``section_event_timestamp``, ``section_event_polarity``
  (> 0 = ON), ``section_event_x``, ``section_event_y`` (1-based), plus
  ``start_timestamp`` / ``end_timestamp`` (the frame window) when present.
  Files are ordered numerically by name.
* ``.aedat`` -- AEDAT 2.0 (jAER), DVS128 addresses: header lines starting with
  ``#`` then big-endian (uint32 address, uint32 timestamp in us) pairs. jAER's
  DVS128 convention: polarity ON when address bit 0 is **0**
  (``type = 1 - (addr & 1)``), raw x in bits 1-7 and raw y in bits 8-14; jAER
  mirrors x (``x = 127 - raw_x``) and draws y = 0 at the bottom. evreid
  returns image coordinates (row 0 at the top): ``x = 127 - raw_x``,
  ``y = 127 - raw_y``; the writer applies the inverse, so round trips are
  exact. Addresses with bit 15 set (external / special events) are skipped.
  32-bit timestamp wrap-around is unwrapped on reading.
* ``.aedat4`` -- AEDAT 4 (iniVation DV), read-only, through the ``aedat``
  package (a default dependency): :mod:`evreid.events.formats.aedat4`.
* ``.raw`` -- Prophesee EVT 2.0 / EVT 3.0 (the version from the header), and
  ``.dat`` -- Prophesee DAT: :mod:`evreid.events.formats.prophesee`.
* ``.txt`` / ``.csv`` -- ``t x y p`` rows, optional ``width height`` first row
  (Event-ReId): :mod:`evreid.events.formats.text`.

Sensor size: from the file when it holds one; otherwise pass ``sensor_size``
(height, width), or reading stops with an error saying so. Recorded formats
stream: :func:`iter_events` yields fixed time windows of a file larger than
memory, :func:`describe_events` counts a file without holding it.

Every writer goes through a temp file and a rename; every reader turns a
truncated or malformed file into one :class:`EvreidError` naming the file
(and the byte or line where that helps).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evreid.errors import EvreidError
from evreid.events.types import Events
from evreid.utils import atomic_open, npy_bytes, npz_problem

NPZ_FORMAT_VERSION = 2
MAT_KEYS = ("section_event_timestamp", "section_event_polarity", "section_event_x",
            "section_event_y")
#: MARS crop size (height, width): the sensor of the SDCL ``.mat`` release.
MARS_SENSOR = (256, 128)

_SUFFIX_FORMAT = {".evs": "store", ".npz": "npz", ".h5": "h5", ".hdf5": "h5",
                  ".aedat": "aedat2",
                  ".aedat4": "aedat4", ".mat": "mat", ".raw": "raw", ".dat": "dat",
                  ".txt": "txt", ".csv": "txt"}
#: every format name ``format=`` takes (``raw`` = EVT 2.0 or 3.0 from the header)
FORMATS = ("store", "npz", "h5", "aedat2", "aedat4", "mat", "raw", "evt2", "evt3", "dat", "txt")
#: formats :func:`write_events` writes (``mat`` is a per-frame folder)
WRITABLE = ("store", "npz", "h5", "aedat2", "mat", "evt2", "evt3", "dat", "txt")
#: formats decoded chunk by chunk (files larger than memory stream)
STREAMED = ("aedat4", "raw", "evt2", "evt3", "dat", "txt")
_DVS128 = 128


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise EvreidError(f"unknown event file format {fmt!r}; choose one of "
                              f"{', '.join(FORMATS)}")
        return fmt
    if path.is_dir() or path.suffix == "":
        return "mat"
    try:
        return _SUFFIX_FORMAT[path.suffix.lower()]
    except KeyError:
        raise EvreidError(f"{path}: unknown event file type {path.suffix!r}; supported: "
                          f".npz, .h5, .hdf5, .aedat (2.0), .aedat4, .raw (EVT 2.0 / 3.0), "
                          f".dat, .txt / .csv, or a folder of .mat files") from None


# ---------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------
def read_events(path: str | os.PathLike, format: str | None = None,  # noqa: A002
                sensor_size: tuple[int, int] | None = None,
                time_unit_us: float = 1.0) -> Events:
    """Read events from a file (or a per-frame ``.mat`` folder), format by suffix.

    ``sensor_size`` (height, width) overrides or supplies the size (needed for a
    text file without a ``width height`` row); ``time_unit_us`` is the unit of a
    text file's timestamps in microseconds.
    """
    return read_events_with_meta(path, format, sensor_size, time_unit_us)[0]


def read_events_with_meta(path: str | os.PathLike, format: str | None = None,  # noqa: A002
                          sensor_size: tuple[int, int] | None = None,
                          time_unit_us: float = 1.0) -> tuple[Events, dict[str, Any]]:
    """Events plus whatever metadata the file carries (frame timestamps, config, ...)."""
    path = Path(path)
    fmt = _format_of(path, format)
    if not path.exists():
        raise EvreidError(f"event file {path} does not exist")
    if fmt in STREAMED:
        reader = open_events(path, fmt, sensor_size, time_unit_us)
        parts = list(reader.chunks())
        ev = (Events.concatenate(parts) if parts
              else Events.empty(reader.width, reader.height))
        return ev, {"format": reader.format}
    if fmt == "store":    # the clip-indexed store: evreid.events.store
        from evreid.events.store import read_store

        ev, meta = read_store(path)
    elif fmt == "npz":
        ev, meta = _read_npz(path)
    elif fmt == "h5":
        ev, meta = _read_h5(path), {}
    elif fmt == "aedat2":
        if path.read_bytes()[:10] == b"#!AER-DAT4":
            return read_events_with_meta(path, "aedat4", sensor_size)
        ev, meta = _read_aedat2(path), {}
    else:
        folder = read_mat_folder(path, sensor_size=sensor_size)
        ev, meta = folder.events, {"frame_windows_us": folder.windows}
    if sensor_size is not None and (ev.height, ev.width) != tuple(sensor_size):
        try:
            ev = Events(ev.t, ev.x, ev.y, ev.p, int(sensor_size[1]), int(sensor_size[0]))
        except EvreidError as exc:
            raise EvreidError(f"{path}: {exc}") from None
    return ev, meta


class _Whole:
    """A reader over a format read whole (npz, h5, AEDAT 2.0, .mat folders)."""

    def __init__(self, path: Path, fmt: str, events: Events) -> None:
        self.path, self.format, self.events = path, fmt, events
        self.width, self.height = events.width, events.height

    def chunks(self, max_events: int = 1 << 22) -> Iterator[Events]:
        for start in range(0, len(self.events), max_events):
            yield self.events[start:start + max_events]


def open_events(path: str | os.PathLike, format: str | None = None,  # noqa: A002
                sensor_size: tuple[int, int] | None = None, time_unit_us: float = 1.0):
    """A reader with ``format``, ``width``, ``height`` and ``chunks(max_events)``.

    Recorded formats (AEDAT 4, EVT 2.0 / 3.0, DAT, text) decode chunk by chunk;
    the others are read whole and sliced.
    """
    from evreid.events.formats import aedat4, prophesee, text

    path = Path(path)
    fmt = _format_of(path, format)
    if not path.exists():
        raise EvreidError(f"event file {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise EvreidError(f"{path}: empty file (0 bytes)")
    if fmt == "aedat4":
        return aedat4.open_aedat4(path, sensor_size)
    if fmt in ("raw", "evt2", "evt3"):
        return prophesee.open_raw(path, None if fmt == "raw" else fmt, sensor_size)
    if fmt == "dat":
        return prophesee.open_dat(path, sensor_size)
    if fmt == "txt":
        return text.open_text(path, sensor_size, time_unit_us)
    ev = read_events(path, fmt, sensor_size)
    return _Whole(path, fmt, ev)


@dataclass(frozen=True)
class EventWindow:
    """The events of one time window ``(start_us, end_us]`` of a file."""

    start_us: int
    end_us: int
    events: Events


def iter_events(path: str | os.PathLike, window_us: int, format: str | None = None,  # noqa: A002
                sensor_size: tuple[int, int] | None = None, time_unit_us: float = 1.0,
                max_events: int = 1 << 22) -> Iterator[EventWindow]:
    """Consecutive windows ``(t0 - 1 + k w, t0 - 1 + (k + 1) w]`` of a file, k = 0, 1, ...

    t0 is the first timestamp. Memory holds one decoded chunk (``max_events``)
    plus one window, so files larger than memory stream. Empty windows inside
    the recording are yielded too (a gap is visible as such). Events must come
    in time order across chunks (recordings do); an event older than a window
    already yielded is an error naming the file.
    """
    if int(window_us) < 1:
        raise EvreidError(f"window_us must be >= 1, got {window_us}")
    w = int(window_us)
    reader = open_events(path, format, sensor_size, time_unit_us)
    pending: list[Events] = []
    start: int | None = None
    for chunk in reader.chunks(max_events):
        if not len(chunk):
            continue
        if start is None:
            start = int(chunk.t[0]) - 1
        elif chunk.t[0] <= start:
            raise EvreidError(f"{path}: events out of time order (t={int(chunk.t[0])} us "
                              f"after the window ending at {start} us was yielded); "
                              f"read_events sorts a whole file")
        pending.append(chunk)
        buffered = Events.concatenate(pending)
        last = int(buffered.t[-1])
        while start + w < last:   # windows wholly before the newest event are complete
            lo, hi = buffered.window_bounds(start, start + w)
            yield EventWindow(start, start + w, buffered[lo:hi])
            start += w
        lo = buffered.window_bounds(start, last)[0]
        pending = [buffered[lo:]]
    if start is not None and pending:
        rest = Events.concatenate(pending)
        while len(rest):
            lo, hi = rest.window_bounds(start, start + w)
            yield EventWindow(start, start + w, rest[lo:hi])
            rest = rest[hi:]
            start += w


@dataclass(frozen=True)
class EventFileInfo:
    """What ``evreid events info`` prints."""

    path: str
    format: str
    width: int
    height: int
    events: int
    on_events: int
    t_first_us: int | None
    t_last_us: int | None

    @property
    def duration_us(self) -> int:
        return 0 if self.t_first_us is None else int(self.t_last_us - self.t_first_us)

    @property
    def rate_per_s(self) -> float:
        return self.events / (self.duration_us / 1e6) if self.duration_us else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out.update(duration_us=self.duration_us, rate_per_s=self.rate_per_s)
        return out


def describe_events(path: str | os.PathLike, format: str | None = None,  # noqa: A002
                    sensor_size: tuple[int, int] | None = None,
                    time_unit_us: float = 1.0) -> EventFileInfo:
    """Format, sensor size, count, time span of a file, decoded chunk by chunk."""
    reader = open_events(path, format, sensor_size, time_unit_us)
    count = on = 0
    first = last = None
    for chunk in reader.chunks():
        if not len(chunk):
            continue
        count += len(chunk)
        on += int(np.count_nonzero(chunk.p > 0))
        first = int(chunk.t[0]) if first is None else min(first, int(chunk.t[0]))
        last = int(chunk.t[-1]) if last is None else max(last, int(chunk.t[-1]))
    return EventFileInfo(str(path), reader.format, reader.width, reader.height, count, on,
                         first, last)


def write_events(path: str | os.PathLike, ev: Events, format: str | None = None,  # noqa: A002
                 **meta: Any) -> None:
    """Write events; the format follows the suffix (a suffix-less path = ``.mat`` folder).

    ``.raw`` is written as EVT 2.0 (``format="evt3"`` for EVT 3.0). ``meta``
    keys understood: ``frame_timestamps_us`` (npz: stored; mat folder:
    required, one file per frame), ``first_window_us`` (mat folder), ``config``
    (a SimulatorConfig or its dict; npz stores it with its hash), and any
    JSON-serialisable extras (npz only).
    """
    from evreid.events.formats import prophesee, text

    path = Path(path)
    fmt = _format_of(path, format)
    if fmt == "store":
        from evreid.events.store import write_store

        times = meta.pop("frame_timestamps_us", None)
        write_store(path, ev, times, int(meta.pop("first_window_us", 0)), **meta)
    elif fmt == "npz":
        _write_npz(path, ev, **meta)
    elif fmt == "h5":
        _write_h5(path, ev)
    elif fmt == "aedat2":
        _write_aedat2(path, ev)
    elif fmt in ("raw", "evt2"):
        prophesee.write_evt2(path, ev)
    elif fmt == "evt3":
        prophesee.write_evt3(path, ev)
    elif fmt == "dat":
        prophesee.write_dat(path, ev)
    elif fmt == "txt":
        text.write_text(path, ev)
    elif fmt == "aedat4":
        raise EvreidError(f"{path}: writing AEDAT 4 is not supported (write one of "
                          f"{', '.join(WRITABLE)})")
    else:
        times = meta.get("frame_timestamps_us")
        if times is None:
            raise EvreidError(f"{path}: writing a per-frame .mat folder needs "
                              f"frame_timestamps_us")
        write_mat_folder(path, ev, times, int(meta.get("first_window_us", 0)))


def convert_events(src: str | os.PathLike, dst: str | os.PathLike,
                   format: str | None = None,  # noqa: A002
                   sensor_size: tuple[int, int] | None = None, time_unit_us: float = 1.0,
                   to: str | None = None, rebase_time: bool = False) -> dict[str, Any]:
    """Rewrite an event file in another format (``to``, else by ``dst``'s suffix),
    exactly; ``rebase_time`` starts the clock at the first event. A file with frame
    timestamps (an old ``.npz`` cache) written as a store keeps them and its simulator
    config. Returns {out, events, width, height, frame_windows (stores, else None)}."""
    to_store = to == "store" or (to is None and str(dst).endswith(".evs"))
    if to_store and format is None and sensor_size is None and not rebase_time:
        from evreid.events.store import convert_to_store, read_index

        out = convert_to_store(src, dst)
        index = read_index(out)
        return {"out": str(out), "events": index.count, "width": index.width,
                "height": index.height, "frame_windows": index.num_frames}
    ev = read_events(src, format, sensor_size, time_unit_us)
    if rebase_time and len(ev):
        ev = Events(ev.t - ev.t[0], ev.x, ev.y, ev.p, ev.width, ev.height)
    write_events(dst, ev, format=to)
    return {"out": str(dst), "events": len(ev), "width": ev.width, "height": ev.height,
            "frame_windows": None}


def cache_is_fresh(path: str | os.PathLike, config: Any, num_frames: int | None = None) -> bool:
    """True when ``path`` is a readable ``.npz`` cache made with exactly ``config``.

    Reads only the stored hash and frame timestamps (cheap), so a resumable run can
    skip finished tracklets; with ``num_frames`` the cache must also cover that many
    frames. Anything unreadable counts as stale.
    """
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix == ".evs":
        from evreid.events.store import store_is_fresh

        return store_is_fresh(path, config.hash(), num_frames)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "config_hash" not in data.files:
                return False
            if str(data["config_hash"]) != config.hash():
                return False
            if num_frames is not None:
                if "frame_timestamps_us" not in data.files:
                    return False
                return len(data["frame_timestamps_us"]) == num_frames
            return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------
# .npz
# ---------------------------------------------------------------------------------------
def _smallest_uint(values: np.ndarray) -> np.ndarray:
    top = int(values.max(initial=0))
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _write_npz(path: Path, ev: Events, frame_timestamps_us: Any = None, config: Any = None,
               **extra: Any) -> None:
    """Packed columns in a standard .npz (``np.load`` reads it).

    Timestamps as a start plus non-negative deltas in the smallest unsigned type
    (deflated: they compress ~5x); pixel index ``y * width + x`` stored raw (it
    is close to incompressible, and deflating it would triple the write time);
    polarity as packed bits.
    """
    t = ev.t
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(NPZ_FORMAT_VERSION, np.int64),
        "width": np.array(ev.width, np.int64), "height": np.array(ev.height, np.int64),
        "count": np.array(len(ev), np.int64),
        "t_start": np.array(t[0] if len(t) else 0, np.int64),
        "t_delta": _smallest_uint(np.diff(t, prepend=t[:1]) if len(t) else t),
        "pix": _smallest_uint(ev.y.astype(np.int64) * ev.width + ev.x),
        "p_bits": np.packbits(ev.p > 0),
    }
    if frame_timestamps_us is not None:
        arrays["frame_timestamps_us"] = np.asarray(frame_timestamps_us, dtype=np.int64)
    if config is not None:
        cfg_dict = config if isinstance(config, dict) else config.to_dict()
        cfg_hash = config.hash() if hasattr(config, "hash") else ""
        arrays["config_json"] = np.array(json.dumps(cfg_dict, sort_keys=True))
        arrays["config_hash"] = np.array(cfg_hash)
    if extra:
        try:
            arrays["meta_json"] = np.array(json.dumps(extra, sort_keys=True))
        except TypeError as exc:
            raise EvreidError(f"{path}: metadata is not JSON-serialisable ({exc})") from None
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w", allowZip64=True) as zf:
        for name, arr in arrays.items():
            raw = name in ("pix", "p_bits")
            # a fixed member date makes the cache byte-identical for identical events
            member = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            member.compress_type = zipfile.ZIP_STORED if raw else zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            zf.writestr(member, npy_bytes(arr), compresslevel=None if raw else 1)


def _decode_npz(data: Any, path: Path) -> Events:
    files = set(data.files)
    width, height = int(data["width"]), int(data["height"])
    if {"t_delta", "pix", "p_bits", "count", "t_start"} <= files:
        count = int(data["count"])
        delta = data["t_delta"].astype(np.int64)
        pix = data["pix"].astype(np.int64)
        bits = data["p_bits"]
        if len(delta) != count or len(pix) != count or len(bits) * 8 < count:
            raise EvreidError(f"{path}: column lengths do not match the event count {count}")
        t = int(data["t_start"]) + np.cumsum(delta) if count else delta
        if count and pix.max() >= width * height:
            raise EvreidError(f"{path}: pixel index {pix.max()} outside the {width}x{height} "
                              f"sensor")
        y, x = np.divmod(pix, width)
        p = np.where(np.unpackbits(bits, count=count) > 0, 1, -1).astype(np.int8)
        return Events(t, x, y, p, width, height)
    missing = [k for k in ("t", "x", "y", "p") if k not in files]
    if missing:
        raise EvreidError(f"{path}: not an evreid event file (missing key(s) "
                          f"{', '.join(missing)}; found {', '.join(sorted(files)) or 'none'})")
    return Events(data["t"], data["x"], data["y"], data["p"], width, height)


def _read_npz(path: Path) -> tuple[Events, dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("width", "height") if k not in data.files]
            if missing:
                raise EvreidError(f"{path}: not an evreid event file (missing key(s) "
                                  f"{', '.join(missing)}; found "
                                  f"{', '.join(sorted(data.files)) or 'none'})")
            ev = _decode_npz(data, path)
            meta: dict[str, Any] = {}
            if "frame_timestamps_us" in data.files:
                meta["frame_timestamps_us"] = data["frame_timestamps_us"]
            if "config_json" in data.files:
                meta["config"] = json.loads(str(data["config_json"]))
                meta["config_hash"] = str(data["config_hash"])
            if "meta_json" in data.files:
                meta.update(json.loads(str(data["meta_json"])))
            return ev, meta
    except EvreidError as exc:
        if str(path) in str(exc):
            raise
        raise EvreidError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as exc:
        raise EvreidError(f"{path}: truncated or corrupt .npz event file "
                          f"({npz_problem(exc)})") from None


# ---------------------------------------------------------------------------------------
# HDF5 (v2e layout)
# ---------------------------------------------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError:
        raise EvreidError("reading/writing .h5 event files needs h5py: pip install h5py") \
            from None
    return h5py


def _write_h5(path: Path, ev: Events) -> None:
    h5py = _h5py()
    fits = len(ev) == 0 or (ev.t.min() >= 0 and ev.t.max() < 2**32)
    dtype = np.uint32 if fits else np.int64
    rows = np.empty((len(ev), 4), dtype=dtype)
    rows[:, 0] = ev.t
    rows[:, 1] = ev.x
    rows[:, 2] = ev.y
    rows[:, 3] = ev.p > 0
    with atomic_open(path, "w+b") as handle, h5py.File(handle, "w") as f:
        f.create_dataset("events", data=rows, compression="gzip", chunks=True if len(ev) else None)
        f.attrs["width"] = ev.width
        f.attrs["height"] = ev.height
        f.attrs["columns"] = "t_us,x,y,p01"


def _read_h5(path: Path) -> Events:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            if "events" not in f:
                raise EvreidError(f"{path}: no dataset 'events' (expected v2e layout: "
                                  f"events (N, 4) rows t, x, y, p); found {', '.join(f.keys())}")
            dset = f["events"]
            if dset.ndim != 2 or dset.shape[1] != 4:
                raise EvreidError(f"{path}: dataset 'events' has shape {dset.shape}, "
                                  f"expected (N, 4) rows t, x, y, p")
            rows = dset[()]
            width = f.attrs.get("width")
            height = f.attrs.get("height")
    except EvreidError:
        raise
    except Exception as exc:
        raise EvreidError(f"{path}: truncated or corrupt HDF5 event file ({exc})") from None
    if rows.dtype.kind == "f":   # float timestamps are seconds
        t = np.rint(rows[:, 0] * 1e6).astype(np.int64)
    else:
        t = rows[:, 0].astype(np.int64)
    x = rows[:, 1].astype(np.int64)
    y = rows[:, 2].astype(np.int64)
    p = np.where(rows[:, 3] > 0, 1, -1).astype(np.int8)
    width = int(width) if width is not None else int(x.max(initial=-1)) + 1 or 1
    height = int(height) if height is not None else int(y.max(initial=-1)) + 1 or 1
    try:
        return Events.from_unsorted(t, x, y, p, width, height)
    except EvreidError as exc:
        raise EvreidError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------
# AEDAT 2.0 (jAER, DVS128)
# ---------------------------------------------------------------------------------------
def _split_header(path: Path, data: bytes) -> tuple[list[str], int]:
    lines, pos = [], 0
    while pos < len(data) and data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise EvreidError(f"{path}: truncated AEDAT header")
        lines.append(data[pos:end].decode("latin-1").rstrip("\r"))
        pos = end + 1
    return lines, pos


def _read_aedat2(path: Path) -> Events:
    data = path.read_bytes()
    header, pos = _split_header(path, data)
    if not header or not header[0].startswith("#!AER-DAT"):
        raise EvreidError(f"{path}: not an AEDAT file (first line should be '#!AER-DAT2.0')")
    version = header[0][len("#!AER-DAT"):].strip()
    if version != "2.0":
        raise EvreidError(f"{path}: AEDAT version {version} is not supported (2.0 and 4.0 are)")
    width = height = _DVS128
    for line in header:
        if line.startswith("# evreid-sensor-size:"):
            width, height = (int(v) for v in line.split(":", 1)[1].split())
    body = data[pos:]
    if len(body) % 8:
        raise EvreidError(f"{path}: truncated AEDAT 2.0 file ({len(body)} bytes of events is "
                          f"not a multiple of 8)")
    raw = np.frombuffer(body, dtype=">u4").reshape(-1, 2)
    addr = raw[:, 0].astype(np.int64)
    ts = raw[:, 1].astype(np.int64)
    keep = (addr & ~np.int64(0x7FFF)) == 0       # drop special / external events
    addr, ts = addr[keep], ts[keep]
    if len(ts) > 1:                              # unwrap 32-bit timestamp overflow
        wraps = np.concatenate([[0], np.cumsum(np.diff(ts) < -(2**31))])
        ts = ts + wraps * 2**32
    x = (_DVS128 - 1) - ((addr >> 1) & 0x7F)
    y = (_DVS128 - 1) - ((addr >> 8) & 0x7F)
    p = np.where((addr & 1) == 0, 1, -1).astype(np.int8)
    try:
        return Events.from_unsorted(ts, x, y, p, width, height)
    except EvreidError as exc:
        raise EvreidError(f"{path}: {exc}") from None


def _write_aedat2(path: Path, ev: Events) -> None:
    if ev.width > _DVS128 or ev.height > _DVS128:
        raise EvreidError(f"{path}: AEDAT 2.0 DVS128 addresses hold a 128x128 sensor; these "
                          f"events are {ev.width}x{ev.height} (use .npz or .h5)")
    if len(ev) and (ev.t[0] < 0 or ev.t[-1] >= 2**32):
        raise EvreidError(f"{path}: AEDAT 2.0 timestamps are uint32 microseconds; events span "
                          f"[{ev.t[0]}, {ev.t[-1]}]")
    raw_x = (_DVS128 - 1) - ev.x.astype(np.int64)
    raw_y = (_DVS128 - 1) - ev.y.astype(np.int64)
    addr = (raw_y << 8) | (raw_x << 1) | (ev.p < 0).astype(np.int64)
    body = np.empty((len(ev), 2), dtype=">u4")
    body[:, 0] = addr
    body[:, 1] = ev.t
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    header = ("#!AER-DAT2.0\r\n"
              "# This is a raw AE data file created by evreid (DVS128 address layout)\r\n"
              "# Data format is int32 address, int32 timestamp (8 bytes total), "
              "repeated for each event\r\n"
              "# Timestamps tick is 1 us\r\n"
              f"# created {stamp}\r\n"
              f"# evreid-sensor-size: {ev.width} {ev.height}\r\n")
    with atomic_open(path, "wb") as handle:
        handle.write(header.encode("latin-1"))
        handle.write(body.tobytes())


# ---------------------------------------------------------------------------------------
# SDCL per-frame .mat folders
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatFolder:
    """A per-frame ``.mat`` folder: all events, the per-frame parts and their windows."""

    events: Events
    parts: list[Events]
    windows: np.ndarray   # int64 [num_frames, 2], window (start, end] of each frame


def _mat_files(folder: Path) -> list[Path]:
    from evreid.data.datasets.base import natural_key

    if not folder.is_dir():
        raise EvreidError(f"per-frame event folder {folder} does not exist")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".mat"), key=natural_key)
    if not files:
        raise EvreidError(f"{folder}: no .mat event files in the folder")
    return files


def _as_int(path: Path, key: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values).ravel()
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise EvreidError(f"{path}: {key} holds non-finite values")
        return np.rint(values).astype(np.int64)
    if values.dtype.kind not in "iub":
        raise EvreidError(f"{path}: {key} has unsupported type {values.dtype}")
    return values.astype(np.int64)


def _stored_sensor_size(path: Path) -> tuple[int, int] | None:
    """The (height, width) evreid's writer records in key ``sensor_size``, if any."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=["sensor_size"])
    except Exception:
        return None
    if "sensor_size" not in mat or np.asarray(mat["sensor_size"]).size != 2:
        return None
    h, w = (int(v) for v in np.asarray(mat["sensor_size"]).ravel())
    return h, w


def mat_folder_files(folder: str | os.PathLike, sensor_size: tuple[int, int] | None = None
                     ) -> tuple[list[Path], tuple[int, int]]:
    """The ``.mat`` files of a per-frame folder in numeric order (file k = frame k) and
    its sensor (height, width): ``sensor_size``, else the ``sensor_size`` key evreid's
    writer adds, else MARS' 256 x 128."""
    files = _mat_files(Path(folder))
    return files, sensor_size or _stored_sensor_size(files[0]) or MARS_SENSOR


@dataclass(frozen=True)
class MatFrame:
    """One per-frame ``.mat`` file: its events (time-sorted) and the window keys it
    holds (``start_timestamp`` / ``end_timestamp``, None when absent)."""

    events: Events
    start: int | None
    end: int | None


def read_mat_frame(path: Path, sensor_size: tuple[int, int]) -> MatFrame:
    """Read one file of the SDCL per-frame layout (1-based x / y, polarity > 0 = ON)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:
        raise EvreidError(f"{path}: truncated or corrupt .mat file ({exc})") from None
    missing = [k for k in MAT_KEYS if k not in mat]
    if missing:
        raise EvreidError(f"{path}: missing key(s) {', '.join(missing)} (expected the "
                          f"SDCL layout {', '.join(MAT_KEYS)})")
    height, width = sensor_size
    t = _as_int(path, "section_event_timestamp", mat["section_event_timestamp"])
    x = _as_int(path, "section_event_x", mat["section_event_x"]) - 1
    y = _as_int(path, "section_event_y", mat["section_event_y"]) - 1
    pol = np.asarray(mat["section_event_polarity"]).ravel()
    if not (len(t) == len(x) == len(y) == len(pol)):
        raise EvreidError(f"{path}: event columns differ in length")
    if len(t) and (x.min() < 0 or y.min() < 0 or x.max() >= width or y.max() >= height):
        raise EvreidError(f"{path}: event coordinates x in [{x.min() + 1}, {x.max() + 1}], "
                          f"y in [{y.min() + 1}, {y.max() + 1}] (1-based) do not fit the "
                          f"sensor {width}x{height} (WxH); pass sensor_size")
    events = Events.from_unsorted(t, x, y, np.where(pol > 0, 1, -1).astype(np.int8), width,
                                  height)
    window = {key: int(_as_int(path, key, mat[key])[0]) if key in mat else None
              for key in ("start_timestamp", "end_timestamp")}
    return MatFrame(events, window["start_timestamp"], window["end_timestamp"])


def read_mat_folder(folder: str | os.PathLike,
                    sensor_size: tuple[int, int] | None = None) -> MatFolder:
    """Read an SDCL per-frame ``.mat`` folder (1-based x/y) into events + frame windows.

    ``sensor_size`` (height, width) as :func:`mat_folder_files`. A file without
    window keys ends at its last event and starts where the previous one ended.
    """
    files, (height, width) = mat_folder_files(folder, sensor_size)
    parts: list[Events] = []
    windows = []
    prev_end: int | None = None
    for path in files:
        frame = read_mat_frame(path, (height, width))
        t = frame.events.t
        end = (frame.end if frame.end is not None
               else (int(t[-1]) if len(t) else prev_end or 0))
        if frame.start is not None:
            start = frame.start
        elif prev_end is not None:
            start = prev_end
        else:
            start = int(t[0]) - 1 if len(t) else end
        windows.append((start, max(start, end)))
        prev_end = end
        parts.append(frame.events)
    all_t = np.concatenate([e.t for e in parts])
    if len(all_t) > 1 and np.any(np.diff(all_t) < 0):
        raise EvreidError(f"{folder}: per-frame .mat files overlap in time (files must be "
                          f"consecutive sections)")
    events = Events(all_t, np.concatenate([e.x for e in parts]),
                    np.concatenate([e.y for e in parts]), np.concatenate([e.p for e in parts]),
                    width, height)
    return MatFolder(events, parts, np.array(windows, dtype=np.int64).reshape(-1, 2))


def write_mat_folder(folder: str | os.PathLike, ev: Events, frame_timestamps_us: Any,
                     first_window_us: int = 0) -> None:
    """One ``NNNNNN.mat`` per frame (window (t_{k-1}, t_k]) in the SDCL layout, 1-based x/y.

    The folder is built beside the target and swapped in, so it is never half-written.
    """
    import scipy.io

    from evreid.events.representation import frame_windows

    folder = Path(folder)
    windows = frame_windows(np.asarray(frame_timestamps_us, dtype=np.int64), first_window_us)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for k, (start, end) in enumerate(windows):
            part = ev.window(int(start), int(end))
            content = {
                "section_event_timestamp": part.t.astype(np.int64)[None, :],
                "section_event_polarity": part.p.astype(np.int8)[None, :],
                "section_event_x": (part.x.astype(np.int64) + 1)[None, :],
                "section_event_y": (part.y.astype(np.int64) + 1)[None, :],
                "start_timestamp": np.array([[start]], dtype=np.int64),
                "end_timestamp": np.array([[end]], dtype=np.int64),
                "sensor_size": np.array([[ev.height, ev.width]], dtype=np.int64),
            }
            with atomic_open(tmp / f"{k + 1:06d}.mat", "wb") as handle:
                scipy.io.savemat(handle, content)
        backup = None
        if folder.exists():
            backup = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, backup)
        os.replace(tmp, folder)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
