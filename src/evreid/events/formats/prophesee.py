"""Prophesee recordings: EVT 2.0 / EVT 3.0 ``.raw`` and ``.dat``, decoded with NumPy.

Why our own decoders: the three layouts are small, documented bit formats
(Prophesee's "Event Streams Formats" pages), and decoding them here gives
exact control of what matters to a re-ID user -- time-window streaming of
files larger than memory, sensor size from the header, and errors that name
the byte at fault -- with no dependency beyond NumPy.

Header: lines ``% key value`` up to ``% end`` (or the first byte that is not
``%``). The sensor size, in order of precedence: an explicit ``sensor_size``;
a ``% geometry WxH`` line; ``height=`` / ``width=`` in a ``% format`` line;
the sensor named by ``% plugin_name`` / ``% sensor_generation`` /
``% sensor_name`` (:data:`KNOWN_SENSORS`, e.g. ``hal_plugin_gen3_fx3`` ->
Gen3, 640x480); otherwise an error asking for ``sensor_size``. A decoded
coordinate outside that size is an error naming its byte.

EVT 2.0: little-endian 32-bit words, type in bits 31-28. ``CD_OFF`` (0) /
``CD_ON`` (1): timestamp LSBs 27-22, x 21-11, y 10-0. ``EVT_TIME_HIGH`` (8):
timestamp bits 33-6 in bits 27-0. ``EXT_TRIGGER`` (0xA), ``OTHERS`` (0xE) and
``CONTINUED`` (0xF) are skipped; any other type is an error (a wrong format).

EVT 3.0: little-endian 16-bit words, type in bits 15-12. ``EVT_ADDR_Y`` (0)
sets y (bits 10-0); ``EVT_ADDR_X`` (2) is one event at x (10-0), polarity bit
11; ``VECT_BASE_X`` (3) sets the vector x and polarity; ``VECT_12`` (4) /
``VECT_8`` (5) are 12 / 8 events at x + bit index where the mask bit is set,
then x advances by 12 / 8; ``EVT_TIME_LOW`` (6) / ``EVT_TIME_HIGH`` (8) set
bits 11-0 / 23-12 of the time. ``CONTINUED_4`` (7), ``EXT_TRIGGER`` (0xA),
``OTHERS`` (0xE) and ``CONTINUED_12`` (0xF) are skipped.

Both: the time-high counter wraps (EVT 2.0 after 2^34 us, EVT 3.0 after 2^24 us);
a time-high that falls by more than half its range counts as a wrap and is
unwrapped. CD events before the first time-high word have no time and are
dropped (as Prophesee's decoders do).

DAT (``.dat``, "% Version 2"): the header, then one byte event type (0x0C CD or
0x00 2D) and one byte event size (8); then records of uint32 t (us) and uint32
data: x bits 13-0, y bits 27-14, polarity bit 28. uint32 timestamps are unwrapped.
"""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from evreid.errors import EvreidError
from evreid.events.types import Events
from evreid.utils import atomic_open

#: Sensor sizes (width, height) of Prophesee sensors, keyed by the names their
#: headers carry (plugin name or sensor generation, lower case).
KNOWN_SENSORS: dict[str, tuple[int, int]] = {
    "gen3": (640, 480), "gen31": (640, 480), "gen3.0": (640, 480), "gen3.1": (640, 480),
    "3.0": (640, 480), "3.1": (640, 480), "pps3mvcd": (640, 480),
    "gen4": (1280, 720), "gen41": (1280, 720), "gen4.0": (1280, 720), "gen4.1": (1280, 720),
    "4.0": (1280, 720), "4.1": (1280, 720), "4.2": (1280, 720), "imx636": (1280, 720),
    "imx646": (1280, 720), "imx8": (320, 320), "genx320": (320, 320), "320": (320, 320),
}
_PLUGIN = re.compile(r"(gen\d+|imx\d+|genx320)")
CHUNK_EVENTS = 1 << 22


@dataclass
class PropheseeHeader:
    lines: list[str]
    fields: dict[str, str]
    data_offset: int      # byte offset of the first event word / DAT type byte

    def sensor_size(self) -> tuple[int, int] | None:
        """(width, height) from the header, or None."""
        geometry = self.fields.get("geometry")
        if geometry:
            match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", geometry)
            if match:
                return int(match.group(1)), int(match.group(2))
        fmt = self.fields.get("format", "")
        params = dict(part.split("=", 1) for part in fmt.split(";")[1:] if "=" in part)
        if "width" in params and "height" in params:
            return int(params["width"]), int(params["height"])
        if "width" in self.fields and "height" in self.fields:
            return int(self.fields["width"]), int(self.fields["height"])
        for key in ("sensor_name", "sensor_generation", "plugin_name"):
            value = self.fields.get(key, "").strip().lower()
            if not value:
                continue
            if value in KNOWN_SENSORS:
                return KNOWN_SENSORS[value]
            match = _PLUGIN.search(value.replace("_", " "))
            if match and match.group(1) in KNOWN_SENSORS:
                return KNOWN_SENSORS[match.group(1)]
        return None


def read_header(path: Path, handle: BinaryIO) -> PropheseeHeader:
    """Parse the ``%`` header; the handle is left at the first data byte."""
    lines: list[str] = []
    fields: dict[str, str] = {}
    offset = 0
    while True:
        handle.seek(offset)
        if handle.read(1) != b"%":
            break
        handle.seek(offset)
        raw = handle.readline(4096)
        if not raw.endswith(b"\n"):
            raise EvreidError(f"{path}: truncated header line at byte {offset}")
        try:
            text = raw.decode("ascii").rstrip("\r\n")
        except UnicodeDecodeError:
            break          # a data word that happens to start with '%'
        offset += len(raw)
        lines.append(text)
        body = text[1:].strip()
        if body == "end":
            break
        key, _, value = body.partition(" ")
        if key:
            fields[key.lower()] = value.strip()
    handle.seek(offset)
    return PropheseeHeader(lines, fields, offset)


def raw_format(path: Path, header: PropheseeHeader) -> str:
    """``evt2`` or ``evt3`` from the ``% evt`` / ``% format`` lines."""
    evt = header.fields.get("evt", "").strip()
    fmt = header.fields.get("format", "").split(";")[0].strip().upper()
    if evt in ("2.0", "2") or fmt == "EVT2":
        return "evt2"
    if evt in ("3.0", "3") or fmt == "EVT3":
        return "evt3"
    if evt or fmt:
        raise EvreidError(f"{path}: event format {evt or fmt!r} is not supported (EVT 2.0 and "
                          f"EVT 3.0 are)")
    raise EvreidError(f"{path}: the header names no event format (no '% evt' or '% format' "
                      f"line); pass format='evt2' or 'evt3'")


def resolve_size(path: Path, header: PropheseeHeader,
                 sensor_size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height): explicit (height, width) argument, else from the header."""
    if sensor_size is not None:
        height, width = (int(v) for v in sensor_size)
        return width, height
    size = header.sensor_size()
    if size is None:
        raise EvreidError(f"{path}: the header gives no sensor size (no geometry / format "
                          f"size, unknown sensor); pass sensor_size=(height, width)")
    return size


def _ffill(mask: np.ndarray, values: np.ndarray, initial: int) -> np.ndarray:
    """values[i] at the last j <= i with mask[j], else ``initial`` (int64)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    np.maximum.accumulate(idx, out=idx)
    out = values.astype(np.int64)[np.maximum(idx, 0)]
    out[idx < 0] = initial
    return out


@dataclass
class _TimeHigh:
    """Unwrapping state of a wrapping time-high counter of ``bits`` bits."""

    bits: int
    last_raw: int = -1
    wraps: int = 0

    def unwrap(self, raw: np.ndarray) -> np.ndarray:
        raw = raw.astype(np.int64)
        if not len(raw):
            return raw
        prev = np.concatenate([[self.last_raw if self.last_raw >= 0 else raw[0]], raw])
        wrapped = np.cumsum(np.diff(prev) < -(1 << (self.bits - 1)))
        out = raw + ((self.wraps + wrapped) << self.bits)
        self.wraps += int(wrapped[-1])
        self.last_raw = int(raw[-1])
        return out


def _check_xy(path: Path, x: np.ndarray, y: np.ndarray, width: int, height: int,
              byte_of: np.ndarray) -> None:
    bad = (x >= width) | (y >= height)
    if bad.any():
        i = int(np.argmax(bad))
        raise EvreidError(f"{path}: event at byte {int(byte_of[i])} has x={int(x[i])}, "
                          f"y={int(y[i])}, outside the {width}x{height} sensor (pass "
                          f"sensor_size if the header is wrong)")


def _bad_type(path: Path, types: np.ndarray, valid: tuple[int, ...], base: int, size: int,
              name: str) -> None:
    bad = ~np.isin(types, valid)
    if bad.any():
        i = int(np.argmax(bad))
        raise EvreidError(f"{path}: byte {base + i * size}: event type 0x{int(types[i]):X} is "
                          f"not an {name} type (wrong format or corrupt file)")


@dataclass
class RawReader:
    """Chunked decoder of an EVT 2.0 / 3.0 ``.raw`` file."""

    path: Path
    format: str
    width: int
    height: int
    header: PropheseeHeader
    _state: dict = field(default_factory=dict)

    @property
    def word_size(self) -> int:
        return 4 if self.format == "evt2" else 2

    def chunks(self, max_events: int = CHUNK_EVENTS) -> Iterator[Events]:
        """Decoded events, a chunk of at most ~``max_events`` words at a time."""
        size = self.word_size
        total = self.path.stat().st_size - self.header.data_offset
        if total % size:
            raise EvreidError(f"{self.path}: truncated {self.format.upper()} file: "
                              f"{total % size} trailing byte(s) at byte "
                              f"{self.path.stat().st_size - total % size}")
        high = _TimeHigh(28 if self.format == "evt2" else 12)
        state = {"low": 0, "y": 0, "vx": 0, "pol": 0, "high": -1}
        with open(self.path, "rb") as handle:
            handle.seek(self.header.data_offset)
            base = self.header.data_offset
            while True:
                words = np.fromfile(handle, dtype="<u4" if size == 4 else "<u2",
                                    count=max_events)
                if not len(words):
                    return
                if self.format == "evt2":
                    yield self._evt2(words, base, high, state)
                else:
                    yield self._evt3(words, base, high, state)
                base += len(words) * size

    def _evt2(self, words: np.ndarray, base: int, high: _TimeHigh, state: dict) -> Events:
        types = (words >> 28).astype(np.int64)
        _bad_type(self.path, types, (0, 1, 8, 0xA, 0xE, 0xF), base, 4, "EVT 2.0")
        is_th = types == 8
        highs = np.zeros(len(words), np.int64)
        highs[is_th] = high.unwrap(words[is_th] & 0x0FFFFFFF)
        highs = _ffill(is_th, highs, state["high"])
        if is_th.any():
            state["high"] = int(highs[-1])
        cd = (types <= 1) & (highs >= 0)
        w = words[cd].astype(np.int64)
        t = (highs[cd] << 6) | ((w >> 22) & 0x3F)
        x = (w >> 11) & 0x7FF
        y = w & 0x7FF
        _check_xy(self.path, x, y, self.width, self.height, base + 4 * np.flatnonzero(cd))
        p = np.where(types[cd] == 1, 1, -1).astype(np.int8)
        return Events.from_unsorted(t, x, y, p, self.width, self.height)

    def _evt3(self, words: np.ndarray, base: int, high: _TimeHigh, state: dict) -> Events:
        n = len(words)
        w = words.astype(np.int64)
        types = w >> 12
        _bad_type(self.path, types, (0, 2, 3, 4, 5, 6, 7, 8, 0xA, 0xE, 0xF), base, 2,
                  "EVT 3.0")
        low12 = w & 0xFFF
        x11 = w & 0x7FF
        bit11 = (w >> 11) & 1
        is_th, is_tl, is_y = types == 8, types == 6, types == 0
        highs = np.zeros(n, np.int64)
        highs[is_th] = high.unwrap(low12[is_th])
        highs = _ffill(is_th, highs, state["high"])
        lows = _ffill(is_tl, low12, state["low"])
        ys = _ffill(is_y, x11, state["y"])
        is_base = types == 3
        step = np.where(types == 4, 12, np.where(types == 5, 8, 0))
        cum_incl = np.cumsum(step)
        cum_excl = cum_incl - step
        vx = _ffill(is_base, x11, state["vx"]) + cum_excl - _ffill(is_base, cum_excl, 0)
        vpol = _ffill(is_base, bit11, state["pol"])
        times = (highs << 12) | lows
        timed = highs >= 0
        # single events
        single = (types == 2) & timed
        rows = [np.flatnonzero(single)]
        cols = [np.zeros(len(rows[0]), np.int64)]
        xs = [x11[single]]
        ps = [bit11[single]]
        for kind, bits in ((4, 12), (5, 8)):
            vec = np.flatnonzero((types == kind) & timed)
            if len(vec):
                mask = (low12[vec, None] >> np.arange(bits)) & 1
                r, c = np.nonzero(mask)
                rows.append(vec[r])
                cols.append(c)
                xs.append(vx[vec[r]] + c)
                ps.append(vpol[vec[r]])
        row = np.concatenate(rows)
        order = np.argsort(row * 16 + np.concatenate(cols), kind="stable")
        row = row[order]
        x = np.concatenate(xs)[order]
        y = ys[row]
        _check_xy(self.path, x, y, self.width, self.height, base + 2 * row)
        p = np.where(np.concatenate(ps)[order] > 0, 1, -1).astype(np.int8)
        if n:
            state["high"] = int(highs[-1])
            state["low"] = int(lows[-1])
            state["y"] = int(ys[-1])
            state["vx"] = int(vx[-1] + step[-1])
            state["pol"] = int(vpol[-1])
        return Events.from_unsorted(times[row], x, y, p, self.width, self.height)


def open_raw(path: Path, fmt: str | None = None,
             sensor_size: tuple[int, int] | None = None) -> RawReader:
    with open(path, "rb") as handle:
        header = read_header(path, handle)
    if not header.lines:
        raise EvreidError(f"{path}: not a Prophesee .raw file (no '%' header)")
    fmt = fmt or raw_format(path, header)
    width, height = resolve_size(path, header, sensor_size)
    return RawReader(path, fmt, width, height, header)


# ---------------------------------------------------------------------------------------
# DAT
# ---------------------------------------------------------------------------------------
DAT_TYPES = (0x00, 0x0C)


@dataclass
class DatReader:
    path: Path
    width: int
    height: int
    header: PropheseeHeader
    format: str = "dat"

    def chunks(self, max_events: int = CHUNK_EVENTS) -> Iterator[Events]:
        start = self.header.data_offset + 2
        total = self.path.stat().st_size - start
        if total % 8:
            raise EvreidError(f"{self.path}: truncated DAT file: {total % 8} trailing byte(s) "
                              f"at byte {start + total - total % 8}")
        wraps, last = 0, -1
        with open(self.path, "rb") as handle:
            handle.seek(start)
            base = start
            while True:
                rec = np.fromfile(handle, dtype="<u4", count=2 * max_events).reshape(-1, 2)
                if not len(rec):
                    return
                t = rec[:, 0].astype(np.int64)
                prev = np.concatenate([[last if last >= 0 else t[0]], t])
                wrapped = wraps + np.cumsum(np.diff(prev) < -(1 << 31))
                wraps, last = int(wrapped[-1]), int(t[-1])
                t = t + (wrapped << 32)
                data = rec[:, 1].astype(np.int64)
                x, y = data & 0x3FFF, (data >> 14) & 0x3FFF
                _check_xy(self.path, x, y, self.width, self.height,
                          base + 8 * np.arange(len(rec)))
                p = np.where((data >> 28) & 1, 1, -1).astype(np.int8)
                base += 8 * len(rec)
                yield Events.from_unsorted(t, x, y, p, self.width, self.height)


def open_dat(path: Path, sensor_size: tuple[int, int] | None = None) -> DatReader:
    with open(path, "rb") as handle:
        header = read_header(path, handle)
        type_size = handle.read(2)
    if not header.lines:
        raise EvreidError(f"{path}: not a Prophesee .dat file (no '%' header)")
    version = header.fields.get("version", "2").strip()
    if version not in ("2", "2.0"):
        raise EvreidError(f"{path}: DAT version {version} is not supported (2 is)")
    if len(type_size) < 2:
        raise EvreidError(f"{path}: truncated DAT file (ends after the header at byte "
                          f"{header.data_offset})")
    ev_type, ev_size = type_size[0], type_size[1]
    if ev_type not in DAT_TYPES or ev_size != 8:
        raise EvreidError(f"{path}: byte {header.data_offset}: DAT event type 0x{ev_type:02X} "
                          f"size {ev_size} is not a CD event (type 0x0C, size 8)")
    width, height = resolve_size(path, header, sensor_size)
    return DatReader(path, width, height, header)


# ---------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------
def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _high_words(high: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Time-high values to emit before each event (counts, flat values).

    A value is emitted before the first event and wherever the high part
    changes; a jump of more than a quarter of the counter range is bridged by
    intermediate values, so the reader's unwrapping recovers every wrap.
    """
    step = 1 << (bits - 2)
    prev = np.concatenate([[high[0] - 1], high[:-1]]) if len(high) else high
    jump = high - prev
    counts = np.where(jump > 0, -(-jump // step), 0)
    counts[:1] = 1 if len(high) else 0
    flat_owner = np.repeat(np.arange(len(high)), counts)
    # within a run of k values for event i: high_i - (k - 1 - j) * step, j = 0..k-1
    first = np.cumsum(counts) - counts
    j = np.arange(len(flat_owner)) - first[flat_owner]
    values = high[flat_owner] - (counts[flat_owner] - 1 - j) * step
    return counts, values & ((1 << bits) - 1)


def _interleave(prefix_counts: list[np.ndarray], prefix_words: list[np.ndarray],
                event_words: np.ndarray) -> np.ndarray:
    """Per event: its prefix words (in list order), then the event word."""
    n = len(event_words)
    per_event = sum(prefix_counts) + 1 if prefix_counts else np.ones(n, np.int64)
    out = np.empty(int(per_event.sum()), dtype=event_words.dtype)
    start = np.cumsum(per_event) - per_event
    offset = start.copy()
    for counts, words in zip(prefix_counts, prefix_words, strict=True):
        owner = np.repeat(np.arange(n), counts)
        first = np.cumsum(counts) - counts
        pos = offset[owner] + np.arange(len(owner)) - first[owner]
        out[pos] = words
        offset = offset + counts
    out[offset] = event_words
    return out


def _header_text(fmt_line: list[str], ev: Events) -> bytes:
    lines = [f"% date {_stamp()}", *fmt_line, f"% geometry {ev.width}x{ev.height}",
             "% integrator_name evreid", "% end"]
    return ("\n".join(lines) + "\n").encode("ascii")


def _check_writable(path: Path, ev: Events, max_side: int, max_t: int, name: str) -> None:
    if ev.width > max_side or ev.height > max_side:
        raise EvreidError(f"{path}: {name} holds coordinates below {max_side}; these events "
                          f"are {ev.width}x{ev.height}")
    if len(ev) and (ev.t[0] < 0 or ev.t[-1] >= max_t):
        raise EvreidError(f"{path}: {name} timestamps must lie in [0, {max_t}) us; these span "
                          f"[{ev.t[0]}, {ev.t[-1]}] (rebase them: evreid events convert "
                          f"--rebase-time)")


def _check_start(path: Path, ev: Events, bits: int, name: str) -> None:
    """A wrapping counter holds any span, but the reader starts unwrapping at 0."""
    if ev.width > 2048 or ev.height > 2048:
        raise EvreidError(f"{path}: {name} holds coordinates below 2048; these events are "
                          f"{ev.width}x{ev.height}")
    if len(ev) and (ev.t[0] < 0 or ev.t[0] >= 1 << bits):
        raise EvreidError(f"{path}: an {name} stream starts below 2^{bits} us; these events "
                          f"start at {ev.t[0]} us (rebase them: evreid events convert "
                          f"--rebase-time)")


def write_evt2(path: Path, ev: Events) -> None:
    _check_start(path, ev, 34, "EVT 2.0")
    t = ev.t.astype(np.int64)
    counts, highs = _high_words(t >> 6, 28)
    cd = (((ev.p > 0).astype(np.int64) << 28) | ((t & 0x3F) << 22)
          | (ev.x.astype(np.int64) << 11) | ev.y.astype(np.int64)).astype("<u4")
    words = _interleave([counts], [((8 << 28) | highs).astype("<u4")], cd)
    header = _header_text(["% evt 2.0", f"% format EVT2;height={ev.height};width={ev.width}"],
                          ev)
    with atomic_open(path, "wb") as handle:
        handle.write(header)
        handle.write(words.tobytes())


def write_evt3(path: Path, ev: Events) -> None:
    """EVT 3.0 with one ``EVT_ADDR_X`` per event (no vectors): valid and exact."""
    _check_start(path, ev, 24, "EVT 3.0")
    t = ev.t.astype(np.int64)
    n = len(ev)
    h_counts, highs = _high_words(t >> 12, 12)
    low = t & 0xFFF
    new_low = np.ones(n, np.int64)
    new_low[1:] = (low[1:] != low[:-1]) | (h_counts[1:] > 0)
    y = ev.y.astype(np.int64)
    new_y = np.ones(n, np.int64)
    new_y[1:] = y[1:] != y[:-1]
    addr_x = ((2 << 12) | ((ev.p > 0).astype(np.int64) << 11) | ev.x.astype(np.int64))
    words = _interleave(
        [h_counts, new_low, new_y],
        [(8 << 12) | highs, ((6 << 12) | low)[new_low > 0], y[new_y > 0]],
        addr_x.astype("<u2"))
    header = _header_text(["% evt 3.0", f"% format EVT3;height={ev.height};width={ev.width}"],
                          ev)
    with atomic_open(path, "wb") as handle:
        handle.write(header)
        handle.write(words.astype("<u2").tobytes())


def write_dat(path: Path, ev: Events) -> None:
    _check_writable(path, ev, 1 << 14, 1 << 32, "DAT")
    rec = np.empty((len(ev), 2), dtype="<u4")
    rec[:, 0] = ev.t
    rec[:, 1] = ((ev.p > 0).astype(np.int64) << 28) | (ev.y.astype(np.int64) << 14) \
        | ev.x.astype(np.int64)
    lines = ["% Data file containing CD events.", "% Version 2", f"% Date {_stamp()}",
             f"% Height {ev.height}", f"% Width {ev.width}", "% end"]
    buf = io.BytesIO()
    buf.write(("\n".join(lines) + "\n").encode("ascii"))
    buf.write(bytes([0x0C, 8]))
    buf.write(rec.tobytes())
    with atomic_open(path, "wb") as handle:
        handle.write(buf.getvalue())
