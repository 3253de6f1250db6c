"""Frames -> events: the simulator that runs the DVS pixel model over a video.

Why a simulator at all: no public event version of the video re-ID benchmarks
comes with the settings that produced it, so users must be able to make their
own, reproducibly (same frames + config + seed -> the same events, bit for bit).

The model, its parameters and presets, and how fast it runs and why, are in
docs/SIMULATOR.md. This module turns frames into samples (luma, log intensity,
optional optical-flow sub-frames), owns the random streams and the shot-noise
process, and hands each sample interval to one of the two implementations of
the pixel model: the NumPy reference (:class:`evreid.events.pixel_model.PixelModel`)
or the compiled kernel (:mod:`evreid.events._kernel`, numba). Both perform the
same float64 operations in the same order on the same state, so they give the
same events, bit for bit; tests hold them to it.

Determinism: every random draw comes from NumPy generators spawned from
``seed``: one stream for the threshold mismatch, one for leak rates and phase,
one for shot noise, so turning noise on does not change the mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from evreid.errors import EvreidError
from evreid.events import _kernel, _noise
from evreid.events.config import SIMULATOR_VERSION, SimulatorConfig
from evreid.events.flow import flow_subframes
from evreid.events.pixel_model import PixelModel, frame_luma, log_intensity, seed_streams
from evreid.events.types import MAX_SENSOR_SIDE, Events

__all__ = ["SIMULATOR_VERSION", "EventSimulator", "SimulatorConfig", "flow_subframes",
           "frame_luma", "frame_timestamps_us", "log_intensity", "simulate"]

#: What ``device`` may be: the implementation to run (``None`` and ``"cpu"``: the
#: compiled kernel, or NumPy where the kernel does not go).
DEVICES = ("numpy", "numba", "cpu")


def frame_timestamps_us(num_frames: int, fps: float, start_us: int = 0) -> np.ndarray:
    """Frame k at ``start_us + round(k * 1e6 / fps)`` microseconds (int64)."""
    if not fps > 0:
        raise EvreidError(f"fps must be > 0, got {fps!r}")
    return start_us + np.rint(np.arange(num_frames) * (1e6 / fps)).astype(np.int64)


def check_device(device: str | None, what: str = "simulator device") -> None:
    """One clear line for a ``device`` the simulator does not take (``what`` names the
    argument in it)."""
    if device is None or device in DEVICES:
        return
    if isinstance(device, str) and (device == "auto" or device.startswith("cuda")):
        raise EvreidError(f"{what} {device!r}: the simulator runs on the CPU (choose numpy, "
                          f"numba or cpu); its torch path was removed, docs/SIMULATOR.md "
                          f"says why")
    raise EvreidError(f"unknown {what} {device!r}; choose numpy, numba or cpu")


def _use_compiled(device: str | None, cfg: SimulatorConfig) -> bool:
    """Whether the compiled kernel runs: by default (``None``, ``"cpu"``) and with
    ``"numba"``, without the low-pass filter (its ``exp`` may round differently from
    NumPy's); ``"numpy"`` runs the reference."""
    check_device(device)
    if device == "numba" and cfg.cutoff_hz > 0:
        raise EvreidError("device 'numba' does not run the photoreceptor low-pass "
                          "(cutoff_hz > 0); use device=None or 'numpy'")
    return device != "numpy" and cfg.cutoff_hz == 0


class EventSimulator:
    """Stateful simulator: feed frames one at a time with :meth:`add_frame`.

    :func:`simulate` wraps it; use it directly for videos too long to hold in
    memory. Events come back per call, already sorted, and the state (reference
    levels, filter, refractory clocks, random streams) carries across calls.
    ``device``: as :func:`simulate`'s.
    """

    def __init__(self, height: int, width: int, config: SimulatorConfig | None = None,
                 seed: int = 0, device: str | None = None) -> None:
        self.cfg = cfg = config or SimulatorConfig()
        if int(seed) < 0:
            raise EvreidError(f"seed must be >= 0, got {seed}")
        self.height, self.width = int(height), int(width)
        if not (0 < self.width <= MAX_SENSOR_SIDE and 0 < self.height <= MAX_SENSOR_SIDE):
            raise EvreidError(f"frames of {self.height}x{self.width} (HxW): each side must "
                              f"be 1..{MAX_SENSOR_SIDE} pixels (event coordinates are int16)")
        self.npix = P = self.height * self.width
        self.compiled = _use_compiled(device, cfg)
        thr_ss, leak_ss, noise_ss = seed_streams(seed)
        self.pixels = PixelModel(cfg, P, thr_ss, leak_ss)
        self._noise_seed = noise_ss
        self._noise: _noise.ShotNoise | None = None       # started with the first frame
        self.t_prev: int | None = None
        self.luma_prev: np.ndarray | None = None
        self.L_prev: np.ndarray | None = None
        self._xy: tuple[np.ndarray, np.ndarray] | None = None
        self._log_table: np.ndarray | None = None
        self._buffers = _kernel.Buffers(4 * P, P, self.width) if self.compiled else None
        self._no_leak = np.zeros(0)
        self._refractory_us = int(cfg.refractory_us)
        self._last_count = 0            # events of the last frame: sizes the next output

    # -- public ------------------------------------------------------------------
    def add_frame(self, frame: np.ndarray, t_us: int) -> Events:
        """Advance to a frame at ``t_us``; returns the events in (t_prev, t_us]."""
        if not self.compiled:
            return self._advance(frame, t_us, None)
        sink = _kernel.EventSink(self._last_count + self._last_count // 4 + 1024)
        self._advance(frame, t_us, sink)
        return Events._trusted(*sink.arrays(), self.width, self.height)

    def _advance(self, frame: np.ndarray, t_us: int, sink: _kernel.EventSink | None
                 ) -> Events | None:
        """:meth:`add_frame`'s work; the compiled path writes into ``sink`` (returns None)."""
        arr = np.asarray(frame)
        if self.compiled and arr.dtype == np.uint8 and arr.ndim == 2 \
                and self.cfg.upsample != "flow":
            luma = arr      # grey DN: its log comes from a table, no float luma needed
        else:
            luma = frame_luma(frame)
        if luma.shape != (self.height, self.width):
            raise EvreidError(f"frame of shape {luma.shape[:2]} does not match the sensor "
                              f"{self.height}x{self.width} (HxW)")
        t_us = int(t_us)
        if self.t_prev is None:
            self._start(luma, t_us, self._frame_log(frame, luma))
            return None if sink is not None else Events.empty(self.width, self.height)
        if t_us <= self.t_prev:
            raise EvreidError(f"timestamps must increase strictly: {t_us} after {self.t_prev}")
        # samples (time, luma, flat log intensity): flow sub-frames, then the frame
        samples: list[tuple[int, np.ndarray, np.ndarray]] = []
        if self.cfg.upsample == "flow":
            samples.extend((t_b, luma_b, log_intensity(luma_b, self.cfg).ravel()) for t_b, luma_b
                           in flow_subframes(self.luma_prev, luma, self.t_prev, t_us, self.cfg))
        samples.append((t_us, luma, self._frame_log(frame, luma)))
        if sink is not None:
            self._compiled_intervals(samples, sink)
            return None
        parts = [self._interval(t_b, luma_b, L_b) for t_b, luma_b, L_b in samples]
        if len(parts) == 1:
            return self._to_events(*parts[0])
        return self._to_events(*(np.concatenate([q[i] for q in parts]) for i in range(3)))

    # -- internals ---------------------------------------------------------------
    def _frame_log(self, frame: np.ndarray, luma: np.ndarray) -> np.ndarray:
        """Log intensity of an input frame, flat.

        A grey uint8 frame's luma is its DN, one of 256 values, so a table of
        ``log_intensity`` over 0..255 gives the same floats with one gather.
        """
        arr = np.asarray(frame)
        if arr.dtype == np.uint8 and arr.ndim == 2:
            if self._log_table is None:
                self._log_table = log_intensity(np.arange(256, dtype=np.float64), self.cfg)
            if self.compiled:
                return self._buffers.log_of(self._log_table, arr)
            return self._log_table[arr.ravel()]
        return log_intensity(luma, self.cfg).ravel()

    def _start(self, luma: np.ndarray, t_us: int, L: np.ndarray) -> None:
        self.pixels.start(L)
        self.L_prev = L
        self.t_prev, self.luma_prev = t_us, luma
        if self.cfg.shot_noise_rate_hz > 0:
            self._noise = _noise.ShotNoise(self._noise_seed, self.cfg.shot_noise_rate_hz,
                                           self.npix, t_us)

    def _interval(self, t_b: int, luma_b: np.ndarray, L_b: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Events of one sample interval (t_prev, t_b] through the NumPy reference;
        advances the state. ``L_b`` is the flat log intensity of ``luma_b``."""
        noise = None if self._noise is None else self._noise.take(t_b)
        out = self.pixels.interval(self.t_prev, t_b, self.L_prev, L_b, self.luma_prev, noise)
        self.L_prev = L_b
        self.t_prev, self.luma_prev = t_b, luma_b
        return out

    def _compiled_intervals(self, samples: list[tuple[int, np.ndarray, np.ndarray]],
                            sink: _kernel.EventSink) -> None:
        """The sample intervals of one frame through the compiled kernel, into ``sink``."""
        start = sink.size
        px = self.pixels
        leak = self._no_leak if px.leak_per_us is None else px.leak_per_us
        for t_b, luma_b, Lb in samples:
            t_a = self.t_prev
            if t_b - t_a > _kernel.MAX_SPAN:
                # over 35 minutes between two samples: NumPy's turn (same state, same events)
                t, pixel, p = self._interval(t_b, luma_b, Lb)
                sink.append(t, pixel, p, self.width)
                continue
            noise = None if self._noise is None else self._noise.take(t_b)
            _kernel.run_interval(self.L_prev, Lb, px.ref, px.cp, px.cm, leak, px.last_t,
                                 t_a, t_b, self._refractory_us, noise, self._buffers, sink)
            self.L_prev = Lb
            self.t_prev, self.luma_prev = t_b, luma_b
        self._last_count = sink.size - start

    def _takes_whole(self, frames: Any, ts: np.ndarray) -> bool:
        """Whether the rest of a video (its first frame given) can go through the compiled
        kernel in one call: grey uint8 frames in one array, no flow sub-frames, no
        interval longer than the kernel takes."""
        return (self.compiled and isinstance(frames, np.ndarray) and frames.ndim == 3
                and frames.dtype == np.uint8 and self.cfg.upsample != "flow"
                and len(ts) > 1 and int(np.diff(ts).max()) <= _kernel.MAX_SPAN)

    def _compiled_video(self, frames: np.ndarray, ts: np.ndarray,
                        sink: _kernel.EventSink) -> None:
        """Frames 1.. of a video (frame 0 started the simulator) through the compiled
        kernel in one call, into ``sink``; the same events and state as frame by frame
        (the shot-noise process does not depend on how time is cut)."""
        px = self.pixels
        leak = self._no_leak if px.leak_per_us is None else px.leak_per_us
        noise = None if self._noise is None else self._noise.take(int(ts[-1]))
        start = sink.size
        self.L_prev = _kernel.run_video(
            self._log_table, np.ascontiguousarray(frames), ts, self.L_prev, px.ref, px.cp,
            px.cm, leak, px.last_t, self._refractory_us, noise, self._buffers, sink)
        self.t_prev, self.luma_prev = int(ts[-1]), frames[-1]
        self._last_count = (sink.size - start) // (len(ts) - 1)

    def _to_events(self, t: np.ndarray, pix: np.ndarray, p: np.ndarray) -> Events:
        # coordinate look-up tables: two int16 gathers are cheaper than an int64 divmod
        if self._xy is None:
            y, x = np.divmod(np.arange(self.npix), self.width)
            self._xy = (x.astype(np.int16), y.astype(np.int16))
        x, y = self._xy
        return Events._trusted(t, x[pix], y[pix], p, self.width, self.height)


def _frames_iter(frames: Any) -> tuple[int, Iterator[np.ndarray]]:
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise EvreidError(f"frames must be [N, H, W] or [N, H, W, 3], got shape "
                              f"{frames.shape}")
        return frames.shape[0], iter(frames)
    if isinstance(frames, Sequence):
        return len(frames), iter(frames)
    raise EvreidError(f"frames must be an array or a sequence of frames, got {type(frames)}")


def simulate(frames: np.ndarray | Sequence[np.ndarray], timestamps_us: Sequence[int] | np.ndarray,
             config: SimulatorConfig | None = None, seed: int = 0, *,
             device: str | None = None) -> Events:
    """Events of a video: frames [N,H,W] or [N,H,W,3] (uint8 DN or float 0..1).

    ``timestamps_us`` (N, strictly increasing integers, microseconds) are the
    sample times; pass true high-rate sub-frames with their own timestamps.
    ``device`` picks the implementation, all on the CPU and all giving the same
    events: ``None`` or ``"cpu"`` (the compiled kernel; NumPy when the low-pass
    filter is on), ``"numba"`` or ``"numpy"``. Deterministic in ``seed``.
    """
    check_device(device)
    n, it = _frames_iter(frames)
    ts = np.asarray(timestamps_us)
    if ts.ndim != 1 or len(ts) != n:
        raise EvreidError(f"timestamps_us must have one entry per frame ({n}), got shape "
                          f"{ts.shape}")
    if ts.dtype.kind == "f":
        if not np.all(np.isfinite(ts)) or np.any(ts != np.round(ts)):
            raise EvreidError("timestamps_us must be whole microseconds")
    elif ts.dtype.kind not in "iu":
        raise EvreidError(f"timestamps_us must be integers, got dtype {ts.dtype}")
    ts = ts.astype(np.int64)
    if n > 1 and np.any(np.diff(ts) <= 0):
        bad = int(np.flatnonzero(np.diff(ts) <= 0)[0])
        raise EvreidError(f"timestamps_us must increase strictly: entry {bad + 1} "
                          f"({ts[bad + 1]}) after {ts[bad]}")
    if n == 0:
        raise EvreidError("simulate needs at least one frame")
    first = next(it)
    first = np.asarray(first)
    # the sensor's size; other frames than grey uint8 are checked by ``frame_luma``
    height, width = (first if first.dtype == np.uint8 and first.ndim == 2
                     else frame_luma(first)).shape
    sim = EventSimulator(height, width, config, seed, device)
    if sim.compiled:
        # one output for the whole video, sized after its first interval
        whole = sim._takes_whole(frames, ts)
        sink = _kernel.EventSink(0 if whole else 4 * sim.npix)
        sim._advance(first, int(ts[0]), sink)
        if whole:
            sim._compiled_video(frames, ts, sink)
            return Events._trusted(*sink.arrays(), sim.width, sim.height)
        for k, (frame, t) in enumerate(zip(it, ts[1:], strict=True)):
            sim._advance(frame, int(t), sink)
            if k == 0:
                sink.reserve(sim._last_count * (n - 2) * 5 // 4)
        return Events._trusted(*sink.arrays(), sim.width, sim.height)
    sim.add_frame(first, int(ts[0]))
    parts = [sim.add_frame(frame, int(t)) for frame, t in zip(it, ts[1:], strict=True)]
    if not parts:
        return Events.empty(sim.width, sim.height)
    t = np.concatenate([e.t for e in parts])
    x = np.concatenate([e.x for e in parts])
    y = np.concatenate([e.y for e in parts])
    p = np.concatenate([e.p for e in parts])
    return Events._trusted(t, x, y, p, sim.width, sim.height)
