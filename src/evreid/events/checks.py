"""Checks of a tracklet's event source against the tracklet itself.

Real recordings attached to video tracklets go wrong quietly: a recording whose
clock starts at 135.7 s put none of its 70,304 events into the frame windows
(which start at 0), and the events of a 128x128 sensor were binned onto
256x128 frames as if they belonged there. Both now stop with one line naming
the source and the way out, and either can be fixed explicitly:

* sensor size vs frame size: refused, or, with ``scale=True``
  (``EVENTS.SCALE_TO_FRAMES``), event coordinates scaled to the frame grid;
* time base: events that miss every frame window are refused, or, with
  ``align=True`` (``EVENTS.ALIGN_TIME``), shifted so the recording's first
  event opens the first frame window;
* a tracklet whose windows receive no event at all (an empty or silent
  recording) gets a warning naming it.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from evreid.errors import EvreidError
from evreid.events.representation import TrackletEvents, tracklet_from_times
from evreid.events.types import Events


class NoEventsWarning(UserWarning):
    """A tracklet's frame windows received no events at all."""


@functools.lru_cache(maxsize=4096)
def frame_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise EvreidError(f"cannot read frame {path} (missing, truncated or not an image)")
    return int(image.shape[0]), int(image.shape[1])


def match_sensor(events: Events, frame_hw: tuple[int, int], source: str,
                 scale: bool = False) -> Events:
    """``events`` when its sensor is the frames' size; scaled to it when ``scale``."""
    height, width = frame_hw
    if (events.height, events.width) == (height, width):
        return events
    if not scale:
        raise EvreidError(
            f"{source}: events are from a {events.width}x{events.height} sensor but the "
            f"tracklet's frames are {width}x{height}; set EVENTS.SCALE_TO_FRAMES True to "
            f"scale the event coordinates to the frames")
    x = (events.x.astype(np.int64) * width) // events.width
    y = (events.y.astype(np.int64) * height) // events.height
    return Events(events.t, x, y, events.p, width, height)


def align_time_base(events: Events, frame_times_us: np.ndarray, first_window_us: int,
                    source: str, align: bool = False,
                    how: str = "set EVENTS.ALIGN_TIME True") -> Events:
    """``events`` when some fall inside the frame windows; shifted when ``align``."""
    if len(events) == 0 or len(frame_times_us) == 0:
        return events
    start = int(frame_times_us[0]) - int(first_window_us)
    end = int(frame_times_us[-1])
    first, last = int(events.t[0]), int(events.t[-1])
    if last > start and first <= end:
        return events          # overlaps the frame windows (t_-1, t_N]
    if not align:
        raise EvreidError(
            f"{source}: its events span {first / 1e6:.6g}-{last / 1e6:.6g} s but the "
            f"tracklet's frame windows span {start / 1e6:.6g}-{end / 1e6:.6g} s, so no frame "
            f"gets an event (a recording clock offset?); {how} to shift the events so the "
            f"first one opens the first frame window")
    shift = first - (start + 1)       # windows are (start, end]: land just inside
    return Events(events.t - shift, events.x, events.y, events.p, events.width,
                  events.height)


def warn_if_silent(whole: TrackletEvents, name: str) -> None:
    if whole.num_frames and int(whole.offsets[-1] - whole.offsets[0]) == 0:
        warnings.warn(f"tracklet {name}: none of its {whole.num_frames} frame windows "
                      f"received an event from {whole.source}", NoEventsWarning, stacklevel=3)


def check_tracklet_events(whole: TrackletEvents, tracklet: Any, options: Any = None
                          ) -> TrackletEvents:
    """``whole`` (the events of ``tracklet`` split per frame) checked against the
    tracklet's frames; rebuilt when ``options`` asks to scale or align
    (``scale_to_frames`` / ``align_time`` attributes, default off)."""
    scale = bool(getattr(options, "scale_to_frames", False))
    align = bool(getattr(options, "align_time", False))
    name = getattr(tracklet, "key", "") or str(tracklet.frames[0])
    events = whole.events
    if getattr(tracklet, "frames", None):
        events = match_sensor(events, frame_size(str(tracklet.frames[0])), whole.source, scale)
    times = whole.windows[:, 1]
    first_window = int(whole.windows[0, 1] - whole.windows[0, 0]) if whole.num_frames else 0
    events = align_time_base(events, times, first_window, whole.source, align)
    if events is not whole.events:
        if events.t is whole.events.t:       # only the coordinates changed
            whole = TrackletEvents(events, whole.offsets, whole.windows, whole.source)
        else:
            whole = tracklet_from_times(events, times, first_window, whole.source)
    warn_if_silent(whole, name)
    return whole
