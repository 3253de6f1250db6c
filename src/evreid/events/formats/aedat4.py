"""AEDAT 4 (iniVation DV: DAVIS, DVXplorer), through the ``aedat`` package.

AEDAT 4 packets are FlatBuffers, usually LZ4- or Zstd-compressed; decoding
them needs those codecs, so this reader uses ``aedat`` (MIT licence, compiled
wheels for CPython 3.9+ on Linux / macOS / Windows, NumPy its only dependency),
a default dependency of evreid. The sensor size comes from the file's event
stream description; timestamps are the file's microseconds (often absolute,
since the epoch); polarity ``on`` -> +1. Packets are decoded one at a time, so
large files stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evreid.errors import EvreidError
from evreid.events.types import Events

MAGIC = b"#!AER-DAT4.0"


def _aedat():
    try:
        import aedat
    except ImportError:   # a default dependency; only a broken install lacks it
        raise EvreidError("reading AEDAT 4 needs the 'aedat' package (a dependency of evreid: "
                          "pip install aedat)") from None
    return aedat


@dataclass
class Aedat4Reader:
    path: Path
    width: int
    height: int
    stream_id: int
    format: str = "aedat4"

    def chunks(self, max_events: int = 0) -> Iterator[Events]:
        """One chunk per event packet (``max_events`` is ignored: packets are small)."""
        aedat = _aedat()
        try:
            decoder = aedat.Decoder(str(self.path))
            for packet in decoder:
                if packet.get("stream_id") != self.stream_id or "events" not in packet:
                    continue
                arr = packet["events"]
                t = arr["t"].astype(np.int64)
                x = arr["x"].astype(np.int64)
                y = arr["y"].astype(np.int64)
                p = np.where(arr["on"], 1, -1).astype(np.int8)
                try:
                    yield Events.from_unsorted(t, x, y, p, self.width, self.height)
                except EvreidError as exc:
                    raise EvreidError(f"{self.path}: {exc}") from None
        except EvreidError:
            raise
        except Exception as exc:   # the decoder raises plain exceptions on bad packets
            raise EvreidError(f"{self.path}: truncated or corrupt AEDAT 4 file ({exc})") \
                from None


def open_aedat4(path: Path, sensor_size: tuple[int, int] | None = None) -> Aedat4Reader:
    with open(path, "rb") as handle:
        magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise EvreidError(f"{path}: not an AEDAT 4 file (first bytes {magic[:12]!r}, expected "
                          f"{MAGIC!r})")
    aedat = _aedat()
    try:
        streams = aedat.Decoder(str(path)).id_to_stream()
    except Exception as exc:
        raise EvreidError(f"{path}: truncated or corrupt AEDAT 4 header ({exc})") from None
    events = [(sid, s) for sid, s in sorted(streams.items()) if s.get("type") == "events"]
    if not events:
        raise EvreidError(f"{path}: the AEDAT 4 file has no event stream (streams: "
                          f"{sorted(s.get('type') for s in streams.values())})")
    sid, stream = events[0]
    if sensor_size is not None:
        height, width = (int(v) for v in sensor_size)
    elif stream.get("width") and stream.get("height"):
        width, height = int(stream["width"]), int(stream["height"])
    else:
        raise EvreidError(f"{path}: the event stream names no size; pass sensor_size")
    return Aedat4Reader(path, width, height, sid)
