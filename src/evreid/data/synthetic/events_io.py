"""Write a tracklet's events as a byte-reproducible ``.npz`` event cache.

Why not ``numpy.savez``: it stamps every zip member with the current time,
so two generations of the same seed would differ in bytes. This writer uses
the same ``.npz`` container (``numpy.load`` reads it) with a fixed member
timestamp and a fixed member order. Members are deflated at level 1: sorted
timestamps and small coordinates shrink about 3.5x for a few milliseconds per
tracklet, which matters because a walker gives thousands of events per frame.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from evreid.events.simulator import SimulatorConfig
from evreid.events.types import Events

FORMAT = "evreid-events-npz-v1"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A deflated ``.npz`` archive of ``arrays`` whose bytes depend only on the arrays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=1) as archive:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            # a ZipInfo carries its own method: set it, or the member is stored raw
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue(), compresslevel=1)
    return buffer.getvalue()


def save(path: Path, events: Events, frame_timestamps_us: np.ndarray, fps: float,
         config: SimulatorConfig) -> None:
    """Write ``events`` with the frame timestamps that slice them (frame k owns (t_{k-1}, t_k])."""
    import json

    arrays = {"t": events.t, "x": events.x, "y": events.y, "p": events.p,
              "width": np.int64(events.width), "height": np.int64(events.height),
              "frame_timestamps_us": np.asarray(frame_timestamps_us, np.int64),
              "fps": np.float64(fps),
              "simulator_config": np.array(json.dumps(config.to_dict(), sort_keys=True)),
              "format": np.array(FORMAT)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(npz_bytes(arrays))


def load(path: Path) -> tuple[Events, np.ndarray]:
    """(events, frame timestamps in microseconds) of a cache written by :func:`save`."""
    with np.load(path, allow_pickle=False) as data:
        events = Events(data["t"], data["x"], data["y"], data["p"], int(data["width"]),
                        int(data["height"]))
        return events, np.asarray(data["frame_timestamps_us"], np.int64)


def polarity_image(events: Events, t_start_us: int, t_end_us: int) -> np.ndarray:
    """uint8 RGB picture of the events in (t_start, t_end]: red = ON, blue = OFF, white = none.

    A pixel takes the colour of its majority polarity, darker with more events.
    """
    window = events.window(t_start_us, t_end_us)
    shape = (events.height, events.width)
    on = np.zeros(shape, np.int32)
    off = np.zeros(shape, np.int32)
    np.add.at(on, (window.y[window.p > 0], window.x[window.p > 0]), 1)
    np.add.at(off, (window.y[window.p < 0], window.x[window.p < 0]), 1)
    image = np.full((*shape, 3), 255, np.uint8)
    strength = np.clip(0.55 + 0.15 * np.maximum(on, off), 0.0, 1.0)[..., None]
    red = np.array([230, 30, 30], np.float32)
    blue = np.array([30, 60, 230], np.float32)
    white = np.float32(255.0)
    colour = np.where((on >= off)[..., None], red, blue)
    shaded = white + strength * (colour - white)
    active = (on + off) > 0
    image[active] = np.round(shaded[active]).astype(np.uint8)
    return image
