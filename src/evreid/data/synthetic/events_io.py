"""The synthetic tracklets' event caches, in the library's ``.evs`` event store.

Files are written by :func:`evreid.events.write_events`, so the data
pipeline's ``load_tracklet_events`` reads them like any simulator cache, with
the stored frame timestamps; the writer is byte-reproducible.

The frame-0 window: the scene is rendered from ``t_{-1}``, so frame 0 has real
events in ``(t_0 - dt, t_0]``. The file stores ``first_window_us`` = one frame
interval, which ``load_tracklet_events`` uses by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evreid.events import Events, SimulatorConfig, TrackletEvents, write_events

#: recorded in the dataset card's cache key: a change of the writer means regeneration
FORMAT = "evreid-evs-v1"
#: the cache file's suffix (the clip-indexed store, evreid.events.store)
SUFFIX = ".evs"


def save(path: Path, events: Events, frame_timestamps_us: np.ndarray, fps: float,
         config: SimulatorConfig) -> None:
    """Write one tracklet's events with the frame timestamps that slice them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_events(path, events, frame_timestamps_us=np.asarray(frame_timestamps_us, np.int64),
                 config=config, first_window_us=first_window_us(fps), fps=float(fps),
                 source="evreid synth")


def first_window_us(fps: float) -> int:
    """Length of frame 0's event window: one frame interval."""
    return int(round(1e6 / fps))


def load(path: Path, num_frames: int, fps: float) -> TrackletEvents:
    """Per-frame events of a cache (``evreid.events.TrackletEvents``), frame 0 included."""
    from evreid.events import load_tracklet_events

    return load_tracklet_events(str(path), num_frames, fps)


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
