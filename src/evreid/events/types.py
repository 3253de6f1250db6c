"""The columnar event container every other event module speaks.

Why columnar: a tracklet holds 10^5-10^7 events; four parallel NumPy arrays
(t, x, y, p) make windowing (``searchsorted``), histogramming (``bincount``)
and file I/O vectorised, where a list of tuples or a structured array would
not. The arrays are sorted by time so that a time window is two binary
searches, and the dtypes are fixed (t int64 microseconds, x/y int16, p int8 in
{-1, +1}) so that nothing wraps silently: values are range-checked before any
narrowing cast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evreid.errors import EvreidError

_INT16_MAX = np.iinfo(np.int16).max
#: The widest / tallest sensor whose x / y fit the int16 columns.
MAX_SENSOR_SIDE = int(_INT16_MAX) + 1


def _checked_cast(name: str, values: np.ndarray, dtype: type, low: int, high: int) -> np.ndarray:
    """Cast to ``dtype`` after checking every value lies in [low, high] (no silent wrap)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EvreidError(f"events: column {name!r} must be 1-D, got shape {arr.shape}")
    if arr.dtype == dtype:
        if arr.size and (arr.min() < low or arr.max() > high):
            raise EvreidError(f"events: column {name!r} has values outside [{low}, {high}]")
        return arr
    if arr.size:
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise EvreidError(f"events: column {name!r} holds non-integer values")
        elif arr.dtype.kind not in "iub":
            raise EvreidError(f"events: column {name!r} has unsupported dtype {arr.dtype}")
        lo, hi = arr.min(), arr.max()
        if lo < low or hi > high:
            raise EvreidError(f"events: column {name!r} has values in [{lo}, {hi}], "
                              f"outside [{low}, {high}]")
    return arr.astype(dtype)


@dataclass(frozen=True, eq=False)
class Events:
    """Events of one sensor, sorted by time.

    ``t`` int64 microseconds, ``x`` (column) and ``y`` (row) int16 with
    ``0 <= x < width`` and ``0 <= y < height``, ``p`` int8 in {-1, +1}.
    The constructor validates dtypes, ranges and ordering; use
    :meth:`from_unsorted` for data that may be out of order (real recordings).
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        width, height = int(self.width), int(self.height)
        if not (0 < width <= MAX_SENSOR_SIDE and 0 < height <= MAX_SENSOR_SIDE):
            raise EvreidError(f"events: sensor size {width}x{height} (WxH) is not in "
                              f"1..{MAX_SENSOR_SIDE}")
        t = _checked_cast("t", self.t, np.int64, np.iinfo(np.int64).min, np.iinfo(np.int64).max)
        x = _checked_cast("x", self.x, np.int16, 0, width - 1)
        y = _checked_cast("y", self.y, np.int16, 0, height - 1)
        p = np.asarray(self.p)
        if p.size and not np.all((p == 1) | (p == -1)):
            raise EvreidError("events: column 'p' must hold only -1 and +1")
        p = _checked_cast("p", p, np.int8, -1, 1)
        n = len(t)
        if not (len(x) == len(y) == len(p) == n):
            raise EvreidError(f"events: columns differ in length (t {n}, x {len(x)}, "
                              f"y {len(y)}, p {len(p)})")
        if n > 1 and np.any(t[1:] < t[:-1]):
            raise EvreidError("events: timestamps are not sorted (use Events.from_unsorted)")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def empty(cls, width: int, height: int) -> Events:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int16),
                   np.zeros(0, np.int8), width, height)

    @classmethod
    def _trusted(cls, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                 width: int, height: int) -> Events:
        """Internal: wrap columns already known to be valid (dtypes, ranges, order)."""
        obj = object.__new__(cls)
        for name, value in (("t", t), ("x", x), ("y", y), ("p", p), ("width", int(width)),
                            ("height", int(height))):
            object.__setattr__(obj, name, value)
        return obj

    @classmethod
    def from_unsorted(cls, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                      width: int, height: int) -> Events:
        """Build Events from columns in any order (stable sort by time)."""
        t = np.asarray(t)
        order = np.argsort(t, kind="stable")
        if np.all(order == np.arange(len(order))):
            return cls(t, x, y, p, width, height)
        return cls(t[order], np.asarray(x)[order], np.asarray(y)[order],
                   np.asarray(p)[order], width, height)

    @classmethod
    def concatenate(cls, parts: Sequence[Events]) -> Events:
        """Merge several Events of the same sensor into one time-sorted stream.

        Parts that follow each other in time are joined without sorting; overlapping
        parts are merged with a stable sort (earlier parts first on equal times).
        """
        if not parts:
            raise EvreidError("events: nothing to concatenate")
        width, height = parts[0].width, parts[0].height
        for part in parts[1:]:
            if (part.width, part.height) != (width, height):
                raise EvreidError(f"events: cannot concatenate sensors {width}x{height} and "
                                  f"{part.width}x{part.height}")
        t = np.concatenate([e.t for e in parts])
        x = np.concatenate([e.x for e in parts])
        y = np.concatenate([e.y for e in parts])
        p = np.concatenate([e.p for e in parts])
        return cls.from_unsorted(t, x, y, p, width, height)

    # -- structured arrays (tonic / expelliarmus convention) --------------------------
    def to_structured(self, polarity: str = "01") -> np.ndarray:
        """A NumPy structured array with fields ``t`` (int64 us), ``x``, ``y``
        (int16) and ``p``: uint8 0 / 1 (``polarity="01"``, the tonic /
        expelliarmus convention) or int8 -1 / +1 (``"signed"``)."""
        if polarity not in ("01", "signed"):
            raise EvreidError(f"polarity must be '01' or 'signed', got {polarity!r}")
        p_type = np.uint8 if polarity == "01" else np.int8
        out = np.empty(len(self), dtype=[("t", np.int64), ("x", np.int16), ("y", np.int16),
                                         ("p", p_type)])
        out["t"], out["x"], out["y"] = self.t, self.x, self.y
        out["p"] = (self.p > 0) if polarity == "01" else self.p
        return out

    @classmethod
    def from_structured(cls, array: np.ndarray, width: int, height: int,
                        time_unit_us: float = 1.0) -> Events:
        """Events from a structured array with fields t, x, y, p (any order, any
        integer types; also ``ts`` / ``timestamp`` and ``on`` / ``polarity``).

        p may be bool, 0 / 1 or -1 / +1. Integer timestamps are taken as
        ``time_unit_us`` microseconds each; float timestamps are multiplied by
        it and rounded. Rows are sorted by time (stable).
        """
        names = array.dtype.names or ()

        def field(*candidates: str) -> np.ndarray:
            for name in candidates:
                if name in names:
                    return np.asarray(array[name]).ravel()
            raise EvreidError(f"structured events need a field {candidates[0]!r} (found "
                              f"{', '.join(names) or 'no fields'})")

        t = field("t", "ts", "timestamp")
        if t.dtype.kind == "f" or time_unit_us != 1.0:
            t = t.astype(np.float64) * time_unit_us
            if not np.all(np.isfinite(t)):
                raise EvreidError("structured events: field 't' holds non-finite values")
            t = np.rint(t).astype(np.int64)
        p = field("p", "on", "polarity")
        if p.size and not np.all(np.isin(p.astype(np.int64), (-1, 0, 1))):
            raise EvreidError("structured events: field 'p' must hold 0 / 1 or -1 / +1")
        signed = np.where(p.astype(np.int64) > 0, 1, -1).astype(np.int8)
        return cls.from_unsorted(t, field("x"), field("y"), signed, width, height)

    # -- access ----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.t.shape[0])

    def __getitem__(self, index: slice | np.ndarray) -> Events:
        """Row selection by slice or boolean/integer mask (order must stay sorted)."""
        if isinstance(index, (int, np.integer)):
            raise TypeError("Events[i] selects rows; use a slice or an index array")
        return Events(self.t[index], self.x[index], self.y[index], self.p[index],
                      self.width, self.height)

    def window(self, t_start_us: int, t_end_us: int) -> Events:
        """Events with ``t_start_us < t <= t_end_us`` (the frame-interval convention)."""
        lo, hi = self.window_bounds(t_start_us, t_end_us)
        return self[lo:hi]

    def window_bounds(self, t_start_us: int, t_end_us: int) -> tuple[int, int]:
        """Index range [lo, hi) of the window (t_start_us, t_end_us]."""
        lo = int(np.searchsorted(self.t, t_start_us, side="right"))
        hi = int(np.searchsorted(self.t, t_end_us, side="right"))
        return lo, max(lo, hi)

    @property
    def sensor_size(self) -> tuple[int, int]:
        """(height, width), the order of image arrays."""
        return self.height, self.width

    @property
    def duration_us(self) -> int:
        return int(self.t[-1] - self.t[0]) if len(self) else 0

    def equals(self, other: object) -> bool:
        """Exact equality of sensor size and every column."""
        return (isinstance(other, Events) and self.width == other.width
                and self.height == other.height and len(self) == len(other)
                and bool(np.array_equal(self.t, other.t)) and bool(np.array_equal(self.x, other.x))
                and bool(np.array_equal(self.y, other.y)) and bool(np.array_equal(self.p, other.p)))

    def __repr__(self) -> str:
        span = f", t=[{self.t[0]}, {self.t[-1]}] us" if len(self) else ""
        return f"Events(n={len(self)}, sensor={self.width}x{self.height}{span})"
