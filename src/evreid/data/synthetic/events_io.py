"""The synthetic tracklets' event caches: the library's ``.npz`` format, byte-reproducible.

Files are written by :func:`evreid.events.write_events` (so the data pipeline's
``load_tracklet_events`` reads them like any simulator cache, with the stored
frame timestamps) and then have their zip member timestamps pinned: a zip
archive stamps each member with the wall-clock time of writing, which would
make two generations of the same seed differ in bytes. Members, their order,
their compression method and their content are kept; only the dates change.

The frame-0 window: the scene is rendered from ``t_{-1}``, so frame 0 has
real events in ``(t_0 - dt, t_0]``. Pass ``first_window_us`` (stored in the
file's metadata and returned by :func:`first_window_us`) to
``load_tracklet_events`` to keep them.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from evreid.events import Events, SimulatorConfig, TrackletEvents, write_events

_EPOCH = (1980, 1, 1, 0, 0, 0)
#: recorded in the dataset card's cache key: a change of the writer means regeneration
FORMAT = "evreid-npz-via-write_events+pinned-dates-v1"


def pin_zip_dates(source: Path, target: Path) -> None:
    """Copy the zip ``source`` to ``target`` with every member dated 1980-01-01 00:00."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(buffer, "w", allowZip64=True) as dst:
        for info in src.infolist():
            pinned = zipfile.ZipInfo(info.filename, date_time=_EPOCH)
            pinned.compress_type = info.compress_type
            pinned.external_attr = 0o644 << 16
            level = 1 if info.compress_type == zipfile.ZIP_DEFLATED else None
            dst.writestr(pinned, src.read(info.filename), compresslevel=level)
    # the generator writes inside a staging folder that is renamed when complete, so a
    # plain write is already all-or-nothing for readers (and keeps default permissions)
    target.write_bytes(buffer.getvalue())


def save(path: Path, events: Events, frame_timestamps_us: np.ndarray, fps: float,
         config: SimulatorConfig) -> None:
    """Write one tracklet's events with the frame timestamps that slice them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = np.asarray(frame_timestamps_us, np.int64)
    first = int(round(1e6 / fps))
    scratch = path.with_name(f".{path.name}.{os.getpid()}.unpinned.npz")
    try:
        write_events(scratch, events, frame_timestamps_us=stamps, config=config,
                     first_window_us=first, fps=float(fps), source="evreid synth")
        pin_zip_dates(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def first_window_us(fps: float) -> int:
    """Length of frame 0's event window (one frame interval) for ``load_tracklet_events``."""
    return int(round(1e6 / fps))


def load(path: Path, num_frames: int, fps: float) -> TrackletEvents:
    """Per-frame events of a cache (``evreid.events.TrackletEvents``), frame 0 included."""
    from evreid.events import load_tracklet_events

    return load_tracklet_events(str(path), num_frames, fps, first_window_us=first_window_us(fps))


def polarity_image(events: Events) -> np.ndarray:
    """uint8 RGB picture of ``events``: red = ON, blue = OFF, white = no event.

    A pixel takes the colour of its majority polarity, darker with more events.
    """
    shape = (events.height, events.width)
    on = np.zeros(shape, np.int32)
    off = np.zeros(shape, np.int32)
    np.add.at(on, (events.y[events.p > 0], events.x[events.p > 0]), 1)
    np.add.at(off, (events.y[events.p < 0], events.x[events.p < 0]), 1)
    image = np.full((*shape, 3), 255, np.uint8)
    strength = np.clip(0.55 + 0.15 * np.maximum(on, off), 0.0, 1.0)[..., None]
    red = np.array([230, 30, 30], np.float32)
    blue = np.array([30, 60, 230], np.float32)
    colour = np.where((on >= off)[..., None], red, blue)
    shaded = 255.0 + strength * (colour - 255.0)
    active = (on + off) > 0
    image[active] = np.round(shaded[active]).astype(np.uint8)
    return image
