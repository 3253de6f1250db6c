"""Event-ReId (Ahmad et al., WACV-W 2022 / ICCV 2023): re-ID from real event cameras.

Statistics (authors): 33 identities walking through 4 indoor Prophesee cameras
(640x480), about 16 K boxes, 3-4 s per stream; identity split train 22 ids
(001 003 004 006 007 009 010 012 013 015 016 018 019 021 022 024 025 027 028
030 031 033) / test 11 ids (002 005 008 ... 032). The public sample partition
(``event_reid_sample``): 10 ids, 30 train, 13 query and 20 gallery chunks.

Two layouts (``layout="auto"`` tells them apart):

* partitioned -- the authors' tool output::

      train/<ID>_c<cam>_<chunk>.txt    t x y p rows (p 0/1), one 33.3 ms window
      test/...
      train_list.txt, query_list.txt, gallery_list.txt    '<split>/<file> <ID>' lines

* raw -- the release::

      <ID>/camNN/events.txt            first row 'width height', then t x y p
      <ID>/camNN/labels/*.json         [[x1, y1, x2, y2], f_num] per 33.3 ms window

  evreid partitions it with the authors' rules: chunk k of a stream holds the
  events of ``(t0 - 1 + k D, t0 - 1 + (k + 1) D]`` (D = ``chunk_us``, 33.3 ms)
  or, with ``chunk_events`` N, events kN .. (k+1)N - 1; train ids keep every
  chunk, test ids every 5th (k % 5 == 0); the query is one chunk per identity
  and camera drawn with ``seed``, the gallery the other test chunks. A chunk
  whose window has a label box is cropped to it (``f_num`` = the window index
  k, 0-based); otherwise, as in the authors' loader, to its events' extent.

Timestamps are in 100 us ticks in both layouts (a chunk spans ~333 ticks =
33.3 ms); ``time_unit_us`` converts them to microseconds.

A tracklet is one chunk seen as ``num_windows`` equal time windows: the
windows play the role of frames, so the clip samplers pick windows, each
window is binned into ``EVENTS.BINS`` like a frame interval, and the
``events_only`` / SNN path runs unchanged. Tracklets have no frame images
(``Tracklet.frames`` is empty); frame-using models refuse them. Events are
shifted by the crop's (x, y) origin and the crop is the event sensor, which
the transforms resize to the model input. Each chunk is decoded once into an
evreid ``.npz`` (cropped events + window times) under ``cache_dir`` (default
``$XDG_CACHE_HOME/evreid/eventreid/...``), reused while newer than its source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from evreid.data.datasets.base import (
    DatasetError,
    Tracklet,
    VideoDataset,
    natural_key,
    relabel,
    require_paths,
)
from evreid.errors import EvreidError
from evreid.events.types import Events

TRAIN_IDS = (1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27, 28, 30, 31,
             33)
TEST_IDS = (2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32)
SENSOR = (480, 640)          # (height, width) of the Prophesee cameras
TIME_UNIT_US = 100.0         # the text files count 100 us ticks
CHUNK_US = 33_300            # one annotated window (30 fps)
GALLERY_STEP = 5
LIST_FILES = ("train_list.txt", "query_list.txt", "gallery_list.txt")
LAYOUT = """
partitioned: {train,test}/<ID>_c<cam>_<chunk>.txt and train_list.txt, query_list.txt,
gallery_list.txt ('<split>/<file> <ID>' per line);
raw: <ID>/camNN/events.txt (+ <ID>/camNN/labels/*.json)
"""
_CHUNK = re.compile(r"^(?P<pid>\d+)_c(?P<cam>\d+)_(?P<chunk>\d+)\.txt$")
_CAM = re.compile(r"^cam(?P<cam>\d+)$")


def _default_cache(root: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return base / "evreid" / "eventreid" / digest


def _window_ends(start: int, end: int, num_windows: int) -> np.ndarray:
    """Ends of ``num_windows`` equal windows of (start, end] (integer us, increasing)."""
    span = max(end - start, num_windows)
    k = np.arange(1, num_windows + 1, dtype=np.int64)
    return start + -(-k * span // num_windows)


def crop(ev: Events, box: tuple[int, int, int, int] | None = None) -> tuple[Events, tuple]:
    """Events shifted into their crop: the label box (x1, y1, x2, y2), clipped to
    the sensor, or the events' extent (the authors' ``x - min(x)``, ``y - min(y)``)."""
    if box is not None:
        x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
        x2, y2 = min(ev.width - 1, int(box[2])), min(ev.height - 1, int(box[3]))
        if x2 < x1 or y2 < y1:
            box = None
        else:
            keep = (ev.x >= x1) & (ev.x <= x2) & (ev.y >= y1) & (ev.y <= y2)
            ev = ev[keep]
    if box is None:
        if not len(ev):
            return ev, (0, 0, ev.width - 1, ev.height - 1)
        x1, y1 = int(ev.x.min()), int(ev.y.min())
        x2, y2 = int(ev.x.max()), int(ev.y.max())
    out = Events(ev.t, ev.x.astype(np.int64) - x1, ev.y.astype(np.int64) - y1, ev.p,
                 x2 - x1 + 1, y2 - y1 + 1)
    return out, (x1, y1, x2, y2)


def _write_chunk(out: Path, ev: Events, start: int, end: int, num_windows: int,
                 **extra) -> None:
    from evreid.events.io import write_events

    ends = _window_ends(start, end, num_windows)
    write_events(out, ev, frame_timestamps_us=ends,
                 first_window_us=int(ends[0] - start), **extra)


def _fresh(out: Path, source: Path) -> bool:
    return out.is_file() and out.stat().st_mtime >= source.stat().st_mtime


def _tracklet(out: Path, pid: int, cam: int, key: str, num_windows: int) -> Tracklet:
    return Tracklet(frames=(), pid=pid, camid=cam - 1, events=str(out), key=key,
                    fps=30.0, length=num_windows)


# ---------------------------------------------------------------------------------------
# partitioned layout
# ---------------------------------------------------------------------------------------
def _read_list(root: Path, name: str) -> list[tuple[Path, int, re.Match]]:
    path = root / name
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise DatasetError(f"eventreid: {path} line {number}: expected '<split>/<file> "
                               f"<ID>', got {line.strip()!r}")
        chunk = root / parts[0]
        match = _CHUNK.match(chunk.name)
        if match is None:
            raise DatasetError(f"eventreid: {path} line {number}: {parts[0]!r} is not named "
                               f"<ID>_c<cam>_<chunk>.txt")
        if int(match["pid"]) != int(parts[1]):
            raise DatasetError(f"eventreid: {path} line {number}: file {chunk.name} belongs "
                               f"to ID {match['pid']}, the line says {parts[1]}")
        if not chunk.is_file():
            raise DatasetError(f"eventreid: {path} line {number}: missing chunk file {chunk}")
        entries.append((chunk, int(parts[1]), match))
    return entries


def _load_partitioned(root: Path, cache: Path, num_windows: int,
                      time_unit_us: float) -> dict[str, list[Tracklet]]:
    from evreid.events.io import read_events

    splits: dict[str, list[Tracklet]] = {}
    for split, name in zip(("train", "query", "gallery"), LIST_FILES, strict=True):
        out_list = []
        for chunk, pid, match in _read_list(root, name):
            rel = chunk.relative_to(root).with_suffix("")
            out = cache / (str(rel) + ".npz")
            if not _fresh(out, chunk):
                try:
                    ev = read_events(chunk, "txt", sensor_size=SENSOR, time_unit_us=time_unit_us)
                except EvreidError as exc:
                    raise DatasetError(f"eventreid: {exc}") from None
                if not len(ev):
                    raise DatasetError(f"eventreid: chunk {chunk} holds no events")
                cropped, box = crop(ev)
                _write_chunk(out, cropped, int(ev.t[0]) - 1, int(ev.t[-1]), num_windows,
                             source=str(chunk), crop_xyxy=list(box))
            out_list.append(_tracklet(out, pid, int(match["cam"]), str(rel), num_windows))
        splits[split] = out_list
    return splits


# ---------------------------------------------------------------------------------------
# raw layout
# ---------------------------------------------------------------------------------------
def _read_labels(folder: Path) -> dict[int, tuple[int, int, int, int]]:
    boxes: dict[int, tuple[int, int, int, int]] = {}
    if not folder.is_dir():
        return boxes
    for path in sorted(folder.glob("*.json"), key=natural_key):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"eventreid: cannot read label file {path}: {exc}") from None
        items = data if data and isinstance(data[0], list) and isinstance(data[0][0], list) \
            else [data]
        for item in items:
            try:
                (x1, y1, x2, y2), f_num = item
                boxes[int(f_num)] = (int(x1), int(y1), int(x2), int(y2))
            except (TypeError, ValueError):
                raise DatasetError(f"eventreid: {path}: expected [[x1, y1, x2, y2], f_num], "
                                   f"got {str(item)[:60]}") from None
    return boxes


def partition(ev: Events, chunk_us: int = CHUNK_US, chunk_events: int = 0
              ) -> list[tuple[int, int, int, Events]]:
    """(index k, window start, window end, events) of every non-empty chunk.

    Fixed duration: chunk k = (t0 - 1 + k D, t0 - 1 + (k + 1) D]. Fixed count
    (``chunk_events`` N > 0): events kN .. (k + 1)N - 1, window (t_first - 1, t_last].
    """
    if not len(ev):
        return []
    out = []
    if chunk_events > 0:
        for k, lo in enumerate(range(0, len(ev), chunk_events)):
            part = ev[lo:lo + chunk_events]
            out.append((k, int(part.t[0]) - 1, int(part.t[-1]), part))
        return out
    if chunk_us < 1:
        raise EvreidError(f"chunk_us must be >= 1, got {chunk_us}")
    t0 = int(ev.t[0]) - 1
    index = (ev.t - t0 - 1) // chunk_us
    bounds = np.flatnonzero(np.diff(index)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(ev)]])
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        k = int(index[lo])
        out.append((k, t0 + k * chunk_us, t0 + (k + 1) * chunk_us, ev[lo:hi]))
    return out


def _load_raw(root: Path, cache: Path, num_windows: int, time_unit_us: float, chunk_us: int,
              chunk_events: int, seed: int) -> dict[str, list[Tracklet]]:
    from evreid.events.io import read_events

    streams = sorted(root.glob("*/cam*/events.txt"), key=lambda p: (p.parts[-3], p.parts[-2]))
    if not streams:
        raise DatasetError(f"eventreid: no <ID>/camNN/events.txt under {root}; expected "
                           f"layout: {' '.join(LAYOUT.split())}")
    train, test = [], []
    for stream in streams:
        id_dir, cam_dir = stream.parent.parent.name, stream.parent.name
        cam_match = _CAM.match(cam_dir)
        if not id_dir.isdigit() or cam_match is None:
            raise DatasetError(f"eventreid: {stream} is not at <ID>/camNN/events.txt")
        pid, cam = int(id_dir), int(cam_match["cam"])
        if pid not in TRAIN_IDS and pid not in TEST_IDS:
            raise DatasetError(f"eventreid: {stream}: ID {id_dir} is not one of the 33 "
                               f"Event-ReId identities (001-033)")
        is_train = pid in TRAIN_IDS
        boxes = _read_labels(stream.parent / "labels")
        stamp = f"{id_dir}_c{cam}"
        marker = cache / "raw" / f"{stamp}.done"
        if not _fresh(marker, stream):
            try:
                ev = read_events(stream, "txt", time_unit_us=time_unit_us)
            except EvreidError as exc:
                raise DatasetError(f"eventreid: {exc}") from None
            written = []
            for k, start, end, part in partition(ev, chunk_us, chunk_events):
                if not is_train and k % GALLERY_STEP:
                    continue
                cropped, box = crop(part, boxes.get(k))
                if not len(cropped):
                    continue
                name = f"{stamp}_{k:03d}"
                _write_chunk(cache / "raw" / f"{name}.npz", cropped, start, end, num_windows,
                             source=str(stream), chunk=k, crop_xyxy=list(box))
                written.append(name)
            marker.parent.mkdir(parents=True, exist_ok=True)
            from evreid.utils import atomic_write_json

            atomic_write_json(marker, {"chunks": written})
        names = json.loads(marker.read_text(encoding="utf-8"))["chunks"]
        for name in names:
            track = _tracklet(cache / "raw" / f"{name}.npz", pid, cam,
                              f"{'train' if is_train else 'test'}/{name}", num_windows)
            (train if is_train else test).append(track)
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(test):
        groups.setdefault((t.pid, t.camid), []).append(i)
    query_rows = {int(rows[rng.integers(len(rows))]) for _, rows in sorted(groups.items())}
    return {"train": train, "query": [t for i, t in enumerate(test) if i in query_rows],
            "gallery": [t for i, t in enumerate(test) if i not in query_rows]}


def load_eventreid(root: str | Path, layout: str = "auto", num_windows: int = 8,
                   time_unit_us: float = TIME_UNIT_US, chunk_us: int = CHUNK_US,
                   chunk_events: int = 0, seed: int = 0,
                   cache_dir: str | Path | None = None) -> VideoDataset:
    """Event-ReId train / query / gallery (see the module docstring)."""
    root = Path(root)
    if layout not in ("auto", "partitioned", "raw"):
        raise DatasetError(f"eventreid: unknown layout {layout!r}; choose auto, partitioned "
                           f"or raw")
    if num_windows < 1:
        raise DatasetError(f"eventreid: num_windows must be >= 1, got {num_windows}")
    if layout == "auto":
        layout = "partitioned" if (root / LIST_FILES[0]).is_file() else "raw"
    if layout == "partitioned":
        require_paths("eventreid", root, [root / name for name in LIST_FILES], LAYOUT)
    else:
        require_paths("eventreid", root, [], LAYOUT)
    options = (f"{layout}-w{num_windows}-u{time_unit_us:g}-d{chunk_us}-n{chunk_events}"
               f"-s{seed}")
    cache = Path(cache_dir) if cache_dir else _default_cache(root)
    cache = cache / options
    if layout == "partitioned":
        splits = _load_partitioned(root, cache, num_windows, time_unit_us)
    else:
        splits = _load_raw(root, cache, num_windows, time_unit_us, chunk_us, chunk_events,
                           seed)
    return VideoDataset(name="eventreid", root=str(root), train=relabel(splits["train"]),
                        query=splits["query"], gallery=splits["gallery"],
                        extra={"layout": layout, "cache_dir": str(cache),
                               "num_windows": num_windows, "frames": False})
