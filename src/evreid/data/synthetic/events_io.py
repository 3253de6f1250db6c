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
            archive.writestr(info, member.getvalue())
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
