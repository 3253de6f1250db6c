"""Plain-text events: one event per row ``t x y p`` (Event-ReId, RPG / e2vid style).

Rows are separated by whitespace or commas; ``#`` lines are comments. An
optional first row of two integers is the sensor ``width height`` (the
convention of Event-ReId's ``events.txt`` and of e2vid); without it the size
must be passed. Timestamps may be integers or decimals in any unit:
``time_unit_us`` converts them (1 = microseconds, 1e6 = seconds, 100 =
Event-ReId's 100 us ticks) and they are rounded to int64 microseconds.
Polarity 0 / -1 is OFF, 1 is ON; anything else is an error naming the line.

evreid writes ``width height`` then integer ``t x y p`` rows with p in {0, 1},
so its files read back exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evreid.errors import EvreidError
from evreid.events.types import Events
from evreid.utils import atomic_open

CHUNK_ROWS = 1 << 20


def _data_lines(path: Path, handle) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(handle, start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def _parse_row(path: Path, number: int, line: str, sep: str | None) -> list[float]:
    parts = line.split(sep)
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise EvreidError(f"{path}: line {number}: expected 4 numbers 't x y p', got "
                          f"{line[:60]!r}")
    return values


@dataclass
class TextReader:
    path: Path
    width: int
    height: int
    time_unit_us: float
    sep: str | None
    format: str = "txt"

    def chunks(self, max_events: int = CHUNK_ROWS) -> Iterator[Events]:
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            lines = _data_lines(self.path, handle)
            first = next(lines, None)
            if first is not None and len(first[1].split(self.sep)) != 2:
                lines = itertools.chain([first], lines)
            while True:
                block = list(itertools.islice(lines, max_events))
                if not block:
                    return
                yield self._decode(block)

    def _decode(self, block: list[tuple[int, str]]) -> Events:
        try:
            rows = np.loadtxt([line for _, line in block], dtype=np.float64,
                              delimiter=self.sep, ndmin=2)
            if rows.shape[1] != 4 or not np.isfinite(rows).all():
                raise ValueError
        except ValueError:
            rows = np.array([_parse_row(self.path, n, line, self.sep) for n, line in block])
        t = np.rint(rows[:, 0] * self.time_unit_us).astype(np.int64)
        x, y, p = rows[:, 1], rows[:, 2], rows[:, 3]
        bad = ((x != np.round(x)) | (y != np.round(y)) | (x < 0) | (y < 0) | (x >= self.width)
               | (y >= self.height) | ~np.isin(p, (-1.0, 0.0, 1.0)))
        if bad.any():
            i = int(np.argmax(bad))
            number, line = block[i]
            raise EvreidError(f"{self.path}: line {number}: {line[:60]!r} is not an event of "
                              f"the {self.width}x{self.height} sensor (x, y integers inside "
                              f"it; p in {{0, 1}} or {{-1, 1}})")
        return Events.from_unsorted(t, x.astype(np.int64), y.astype(np.int64),
                                    np.where(p > 0, 1, -1).astype(np.int8), self.width,
                                    self.height)


def open_text(path: Path, sensor_size: tuple[int, int] | None = None,
              time_unit_us: float = 1.0) -> TextReader:
    """Read the size row (if any) and the separator; ``sensor_size`` is (height, width)."""
    if time_unit_us <= 0:
        raise EvreidError(f"{path}: time_unit_us must be > 0, got {time_unit_us}")
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next(_data_lines(path, handle), None)
    if first is None:
        raise EvreidError(f"{path}: empty event text file (no 't x y p' rows)")
    number, line = first
    sep = "," if "," in line else None
    parts = line.split(sep)
    size: tuple[int, int] | None = None
    if len(parts) == 2:
        try:
            size = (int(parts[0]), int(parts[1]))
        except ValueError:
            raise EvreidError(f"{path}: line {number}: a two-value first row must be the "
                              f"sensor 'width height', got {line[:60]!r}") from None
    elif len(parts) != 4:
        raise EvreidError(f"{path}: line {number}: expected 4 numbers 't x y p' (or a first "
                          f"row 'width height'), got {line[:60]!r}")
    if sensor_size is not None:
        height, width = (int(v) for v in sensor_size)
    elif size is not None:
        width, height = size
    else:
        raise EvreidError(f"{path}: no 'width height' first row; pass sensor_size=(height, "
                          f"width) (CLI: --sensor-size HxW)")
    if width < 1 or height < 1:
        raise EvreidError(f"{path}: sensor size {width}x{height} is not positive")
    return TextReader(path, width, height, float(time_unit_us), sep)


def write_text(path: Path, ev: Events) -> None:
    rows = np.empty((len(ev), 4), dtype=np.int64)
    rows[:, 0] = ev.t
    rows[:, 1] = ev.x
    rows[:, 2] = ev.y
    rows[:, 3] = ev.p > 0
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{ev.width} {ev.height}\n")
        np.savetxt(handle, rows, fmt="%d", delimiter=" ")
