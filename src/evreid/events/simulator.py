"""Frames -> events: a DVS pixel model, vectorised over pixels.

Why a simulator at all: no public event version of the video re-ID benchmarks
comes with the settings that produced it, so users must be able to make their
own, reproducibly (same frames + config + seed -> the same events, bit for bit).

The pixel model (DESIGN.md section 3)
-------------------------------------
Per pixel, log intensity ``L`` is computed from luma ``I`` in DN (0..255) with a
lin-log curve: ``L = log(I)`` above ``lin_log_threshold`` (20 DN) and, below
it, the tangent line ``log(T) + (I - T) / T``, so the curve and its slope are
continuous at ``T`` (a C1 join) and black pixels do not explode into noise.
With ``lin_log_threshold = 0`` the curve is ``log(I + eps)``.

Each pixel keeps a reference level ``L_ref`` set at the first frame, and
per-pixel thresholds ``C+``, ``C-`` drawn once from N(C, sigma_C), clamped to
``min_threshold`` (fixed-pattern mismatch). Between two samples (t0, L0) and
(t1, L1) every crossing ``L_ref + k*C`` emits one event at

    t = t0 + (L_cross - L0) / (L1 - L0) * (t1 - t0)      (rounded to 1 us)

and ``L_ref`` moves by the emitted count times C, keeping the remainder. With
the log intensity linear between samples these crossing times are exact, so no
sub-steps are needed for them: the number of events per pixel per segment
varies, and is expanded with a repeat / cumsum trick instead of a Python loop.

Effects that depend on time:

* **refractory period** (``refractory_us``): an event closer than this to the
  previous kept event of its pixel is dropped. ``L_ref`` still moves by every
  crossing: a real pixel is held in reset during its refractory period, so
  its reference follows the input, which is what this reproduces.
* **leak events** (``leak_rate_hz``, per pixel ``rate * max(0, 1 + leak_jitter *
  N(0,1))``): the reference drifts down by ``rate * C+`` per second, which is
  linear in time, so it folds exactly into the linear crossing computation
  (static pixels fire ON events at about ``rate`` Hz). With leak enabled the
  starting reference gets a random phase in [0, C+) so that pixels do not leak
  in lock step.
* **shot noise** (``shot_noise_rate_hz``, per pixel, both polarities): one
  Poisson process over the sensor, each event at a uniformly random pixel
  (:mod:`evreid.events._noise`); the events of a stretch of time do not depend
  on how it is cut into frames. A noise event resets its pixel like a real one
  (``L_ref`` moves by +C+ or -C-).
* **photoreceptor low-pass** (``cutoff_hz``; 0 disables): a first-order filter
  on log intensity whose cutoff scales with intensity,
  ``f_c = cutoff_hz * max(I / 255, 0.05)`` (dark pixels are slower), integrated
  exactly for a linear input over each sub-step.

Shot-noise resets need no sub-steps either: a pixel with a noise event is cut
at that instant (exactly), which is cheap because noise is sparse. With the
low-pass filter on, its sub-steps (below) take the resets at the end of the
sub-step that contains them.

Sub-steps: only the low-pass filter needs them. With
``upsample="linear"`` each pixel is split into its own number of sub-steps so
that its input changes by at most ``max_log_step`` thresholds per sub-step
(capped at ``max_substeps``); pixels that barely change take one step, so the
cost follows the moving pixels, not the frame count times the worst pixel.
``upsample="none"`` takes one step per input interval (fastest, coarser
filter). ``upsample="flow"`` inserts optical-flow-interpolated sub-frames
(OpenCV Farneback, both neighbours warped to the intermediate time) so that
motion between samples is at most ``flow_pixel_step`` pixels, then proceeds as
``linear``. True high-rate sub-frames (the synthetic benchmark) need no option:
pass them with their own timestamps.

Determinism: all random draws come from NumPy generators spawned from
``seed``: one stream for the threshold mismatch, one for leak rates and phase,
one for shot noise, so turning noise on does not change the mismatch. The
per-pixel normals (thresholds, leak rates) are a ziggurat over the generator's
raw words (:mod:`evreid.events._ziggurat`, the same numbers with or without
numba), about twice as fast as ``Generator.standard_normal``.

Event order: by time, ties by pixel (row-major), then in order of generation
(time order) within the pixel -- the same in every path.

Paths (``device``): ``None`` (default) runs a compiled kernel
(:mod:`evreid.events._kernel`, numba: two loops over pixels and a radix sort
by microsecond, several times faster) when numba is installed and the
low-pass filter is off (``simulate`` hands it a grey uint8 video in one call,
``add_frame`` a frame at a time: the same events), else the vectorised NumPy
path; ``"numpy"`` and
``"numba"`` force one of the two; ``"cpu"``, ``"cuda"`` or ``"auto"`` run the
torch path. All draw with the same NumPy generators and perform the same
float64 operations in the same order, so they give the same events, bit for
bit (on CUDA the low-pass filter's ``exp`` may differ by an ulp); tests hold
them to it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from evreid.errors import EvreidError
from evreid.events import _kernel, _noise, _ziggurat
from evreid.events._backend import NumpyOps, TorchOps, get_ops
from evreid.events.types import MAX_SENSOR_SIDE, Events

#: Bumped when the algorithm changes in a way that changes output for the same
#: config, so that caches made by an older version are detected as stale.
SIMULATOR_VERSION = 4

_UPSAMPLE = ("linear", "flow", "none")
#: Crossings within this fraction of a threshold count (absorbs float rounding).
_CROSS_TOL = _kernel.CROSS_TOL     # one constant for both paths: they must agree
#: Luma weights (ITU-R BT.601, as OpenCV's RGB2GRAY).
_LUMA = np.array([0.299, 0.587, 0.114])
#: Lowest relative photoreceptor bandwidth (at black).
_MIN_CUTOFF_FRACTION = 0.05


@dataclass(frozen=True)
class SimulatorConfig:
    """Every knob of the DVS pixel model; see the module docstring for the model.

    Defaults (= preset ``"default"``): C+ = C- = 0.2, sigma_C = 0.03,
    refractory 500 us, no leak, no shot noise, no low-pass.

    Presets (``SimulatorConfig.preset(name)``):

    * ``clean``: defaults with ``refractory_us = 0`` -- fixed-pattern threshold
      mismatch stays (sigma 0.03) but no noise and no refractory period; the
      closest to "ideal" events a real sensor could give.
    * ``realistic``: defaults plus leak events 0.1 Hz (per-pixel jitter 10 %),
      shot noise 0.5 Hz per pixel and refractory 500 us -- a DVS in daylight.
      The photoreceptor low-pass stays off: at daylight intensities its cutoff
      (hundreds of Hz and more) is far above any video frame rate. Set
      ``cutoff_hz`` (e.g. 200) for low light; it costs sub-steps.
    """

    pos_threshold: float = 0.2
    neg_threshold: float = 0.2
    threshold_sigma: float = 0.03
    min_threshold: float = 0.01
    refractory_us: int = 500
    leak_rate_hz: float = 0.0
    leak_jitter: float = 0.1
    shot_noise_rate_hz: float = 0.0
    cutoff_hz: float = 0.0
    lin_log_threshold: float = 20.0
    eps: float = 1.0
    upsample: str = "linear"
    max_log_step: float = 0.5
    max_substeps: int = 64
    flow_pixel_step: float = 1.0
    flow_max_substeps: int = 8

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "clean": {"refractory_us": 0, "leak_rate_hz": 0.0, "shot_noise_rate_hz": 0.0,
                  "cutoff_hz": 0.0},
        "realistic": {"refractory_us": 500, "leak_rate_hz": 0.1, "leak_jitter": 0.1,
                      "shot_noise_rate_hz": 0.5, "cutoff_hz": 0.0},
    }

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> EvreidError:
            return EvreidError(f"simulator config: {key}={getattr(self, key)!r} {why}")

        for key in ("pos_threshold", "neg_threshold", "min_threshold"):
            if not getattr(self, key) > 0:
                raise bad(key, "must be > 0")
        for key in ("threshold_sigma", "leak_rate_hz", "leak_jitter", "shot_noise_rate_hz",
                    "cutoff_hz", "lin_log_threshold", "refractory_us"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise bad(key, "must be a finite number >= 0")
        if self.lin_log_threshold == 0 and not self.eps > 0:
            raise bad("eps", "must be > 0 when lin_log_threshold is 0")
        if self.upsample not in _UPSAMPLE:
            raise bad("upsample", f"is not one of {', '.join(_UPSAMPLE)}")
        if not self.max_log_step > 0:
            raise bad("max_log_step", "must be > 0")
        if not self.flow_pixel_step > 0:
            raise bad("flow_pixel_step", "must be > 0")
        for key in ("max_substeps", "flow_max_substeps"):
            if int(getattr(self, key)) < 1:
                raise bad(key, "must be >= 1")
        if int(self.refractory_us) != self.refractory_us:
            raise bad("refractory_us", "must be a whole number of microseconds")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SimulatorConfig:
        """A named preset (``default``, ``clean``, ``realistic``), optionally overridden."""
        if name not in cls.PRESETS:
            raise EvreidError(f"unknown simulator preset {name!r}; choose from "
                              f"{', '.join(cls.PRESETS)}")
        return cls.from_dict({**cls.PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulatorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EvreidError(f"simulator config: unknown key(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        return cls(**values)

    def replace(self, **changes: Any) -> SimulatorConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict of every field (stable: floats as floats, ints as ints)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("float",):
                value = float(value)
            elif f.type in ("int",):
                value = int(value)
            out[f.name] = value
        return out

    def hash(self) -> str:
        """16 hex digits identifying this config and the simulator version (cache key)."""
        payload = json.dumps({"version": SIMULATOR_VERSION, "config": self.to_dict()},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def needs_substeps(self) -> bool:
        return self.upsample != "none" and self.cutoff_hz > 0


# ---------------------------------------------------------------------------------------
# frames -> luma -> log intensity
# ---------------------------------------------------------------------------------------
def frame_luma(frame: np.ndarray) -> np.ndarray:
    """One frame as float64 luma in DN (0..255 scale).

    uint8 frames are DN already; float frames are read on a 0..1 scale (1.0 =
    255 DN). RGB(A) frames are reduced with BT.601 weights.
    """
    arr = np.asarray(frame)
    if arr.dtype == np.uint8:
        scale = 1.0
    elif arr.dtype.kind == "f":
        scale = 255.0
    else:
        raise EvreidError(f"frames must be uint8 or float, got dtype {arr.dtype}")
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            raise EvreidError(f"colour frames must be [H, W, 3], got {arr.shape}")
        luma = arr[..., :3].astype(np.float64) @ _LUMA
    elif arr.ndim == 2:
        luma = arr.astype(np.float64)
    else:
        raise EvreidError(f"a frame must be [H, W] or [H, W, 3], got shape {arr.shape}")
    if scale != 1.0:
        luma *= scale
    # uint8 luma is finite and non-negative by construction: check floats only
    if arr.dtype != np.uint8 and (not np.all(np.isfinite(luma)) or luma.min() < 0):
        raise EvreidError("frames must be finite and non-negative")
    return luma


def log_intensity(luma: np.ndarray, config: SimulatorConfig | None = None) -> np.ndarray:
    """Lin-log photoreceptor curve of luma in DN (see the module docstring)."""
    cfg = config or SimulatorConfig()
    luma = np.asarray(luma, dtype=np.float64)
    T = float(cfg.lin_log_threshold)
    if T > 0:
        return np.log(np.maximum(luma, T)) + (np.minimum(luma, T) - T) / T
    return np.log(luma + cfg.eps)


def frame_timestamps_us(num_frames: int, fps: float, start_us: int = 0) -> np.ndarray:
    """Frame k at ``start_us + round(k * 1e6 / fps)`` microseconds (int64)."""
    if not fps > 0:
        raise EvreidError(f"fps must be > 0, got {fps!r}")
    return start_us + np.rint(np.arange(num_frames) * (1e6 / fps)).astype(np.int64)


# ---------------------------------------------------------------------------------------
# optical-flow sub-frames
# ---------------------------------------------------------------------------------------
def flow_subframes(luma0: np.ndarray, luma1: np.ndarray, t0: int, t1: int,
                   config: SimulatorConfig) -> list[tuple[int, np.ndarray]]:
    """Intermediate (timestamp, luma) frames between two frames by optical flow.

    Farneback flow both ways; the frame at fraction a is the blend
    ``(1-a) * I0(x - a F01(x)) + a * I1(x - (1-a) F10(x))``, enough sub-frames
    that the largest motion per sub-frame is ``flow_pixel_step`` pixels.
    """
    import cv2

    g0 = np.clip(luma0, 0, 255).astype(np.uint8)
    g1 = np.clip(luma1, 0, 255).astype(np.uint8)
    args = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
    f01 = cv2.calcOpticalFlowFarneback(g0, g1, *args)
    f10 = cv2.calcOpticalFlowFarneback(g1, g0, *args)
    motion = max(float(np.abs(f01).max(initial=0)), float(np.abs(f10).max(initial=0)))
    m = int(min(math.ceil(motion / config.flow_pixel_step), config.flow_max_substeps, t1 - t0))
    if m <= 1:
        return []
    h, w = g0.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    src0, src1 = luma0.astype(np.float32), luma1.astype(np.float32)
    out = []
    for j in range(1, m):
        a = j / m
        w0 = cv2.remap(src0, gx - a * f01[..., 0], gy - a * f01[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        w1 = cv2.remap(src1, gx - (1 - a) * f10[..., 0], gy - (1 - a) * f10[..., 1],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = (1 - a) * w0.astype(np.float64) + a * w1.astype(np.float64)
        out.append((t0 + int(round(a * (t1 - t0))), np.maximum(frame, 0.0)))
    return out


# ---------------------------------------------------------------------------------------
# the streaming simulator
# ---------------------------------------------------------------------------------------
class EventSimulator:
    """Stateful simulator: feed frames one at a time with :meth:`add_frame`.

    :func:`simulate` wraps it; use it directly for videos too long to hold in
    memory. Events come back per call, already sorted, and the state (reference
    levels, filter, refractory clocks, random streams) carries across calls.
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
        self.xp: NumpyOps | TorchOps = get_ops(None if device in ("numpy", "numba") else device)
        xp = self.xp
        thr_ss, leak_ss, noise_ss = np.random.SeedSequence(int(seed)).spawn(3)
        rng = np.random.default_rng(thr_ss)
        # per-pixel parameters computed in place (no temporaries: this is most of the
        # set-up of a short video), the same operations as the formulas in the comments
        thresholds = _ziggurat.standard_normal(rng, 2 * P).reshape(2, P)
        thresholds *= cfg.threshold_sigma
        thresholds[0] += cfg.pos_threshold           # C+ = max(C + sigma * z, C_min)
        thresholds[1] += cfg.neg_threshold
        np.maximum(thresholds, cfg.min_threshold, out=thresholds)
        cp, cm = thresholds
        self._cp_np, self._cm_np = cp, cm
        self.cp, self.cm = xp.float64(cp), xp.float64(cm)
        leak_rng = np.random.default_rng(leak_ss)
        if cfg.leak_rate_hz > 0:
            # rate * max(0, 1 + jitter * z) * C+ * 1e-6: log units per microsecond
            leak = _ziggurat.standard_normal(leak_rng, P)
            leak *= cfg.leak_jitter
            leak += 1.0
            np.maximum(leak, 0.0, out=leak)
            leak *= cfg.leak_rate_hz
            leak *= cp
            leak *= 1e-6
            self.leak_per_us = xp.float64(leak)
            self._phase = leak_rng.random(P)
            self._phase *= cp
        else:
            self.leak_per_us = None
            self._phase = None
        self._noise_seed = noise_ss
        self._noise: _noise.ShotNoise | None = None       # started with the first frame
        self.ref: Any = None
        self.filt: Any = None
        self.last_t = xp.full(P, np.iinfo(np.int64).min // 4, "int64")
        self.t_prev: int | None = None
        self.luma_prev: np.ndarray | None = None
        self.L_prev: Any = None
        self._xy: tuple[np.ndarray, np.ndarray] | None = None
        self._log_table: np.ndarray | None = None
        self._buffers = _kernel.Buffers(4 * P, P, self.width) if self.compiled else None
        self._no_leak = np.zeros(0)
        self._refractory_us = int(cfg.refractory_us)
        self._last_count = 0            # events of the last frame: sizes the next output

    @functools.cached_property
    def neg_cm(self) -> Any:
        """-C- per pixel (d / -C- is exact); the NumPy path's."""
        return -self.cm

    @functools.cached_property
    def cmin(self) -> Any:
        """min(C+, C-) per pixel; the NumPy path's sub-steps'."""
        return self.xp.float64(np.minimum(self._cp_np, self._cm_np))

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
        return self._to_events(*(self.xp.cat([q[i] for q in parts]) for i in range(3)))

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
        xp = self.xp
        # a copy: the reference is updated in place and must not alias ``L_prev``
        ref = L - self._phase if self._phase is not None else L.copy()
        self.ref = xp.float64(ref)
        self.L_prev = xp.float64(L)
        if self.cfg.cutoff_hz > 0:
            self.filt = xp.copy(self.L_prev)
        self.t_prev, self.luma_prev = t_us, luma
        if self.cfg.shot_noise_rate_hz > 0:
            self._noise = _noise.ShotNoise(self._noise_seed, self.cfg.shot_noise_rate_hz,
                                           self.npix, t_us)

    def _compiled_intervals(self, samples: list[tuple[int, np.ndarray, np.ndarray]],
                            sink: _kernel.EventSink) -> None:
        """The sample intervals of one frame through the compiled kernel, into ``sink``."""
        start = sink.size
        leak = self._no_leak if self.leak_per_us is None else self.leak_per_us
        for t_b, luma_b, Lb in samples:
            t_a = self.t_prev
            if t_b - t_a > _kernel.MAX_SPAN:
                # over 35 minutes between two samples: NumPy's turn (same state, same events)
                t, pixel, p = self._interval(t_b, luma_b, Lb)
                sink.append(t, pixel, p, self.width)
                continue
            noise = None if self._noise is None else self._noise.take(t_b)
            _kernel.run_interval(self.L_prev, Lb, self.ref, self.cp, self.cm, leak, self.last_t,
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
        leak = self._no_leak if self.leak_per_us is None else self.leak_per_us
        noise = None if self._noise is None else self._noise.take(int(ts[-1]))
        start = sink.size
        self.L_prev = _kernel.run_video(
            self._log_table, np.ascontiguousarray(frames), ts, self.L_prev, self.ref, self.cp,
            self.cm, leak, self.last_t, self._refractory_us, noise, self._buffers, sink)
        self.t_prev, self.luma_prev = int(ts[-1]), frames[-1]
        self._last_count = (sink.size - start) // (len(ts) - 1)

    def _to_events(self, t: Any, pix: Any, p: Any) -> Events:
        pix = self.xp.numpy(pix)
        # coordinate look-up tables: two int16 gathers are cheaper than an int64 divmod
        if self._xy is None:
            y, x = np.divmod(np.arange(self.npix), self.width)
            self._xy = (x.astype(np.int16), y.astype(np.int16))
        x, y = self._xy
        return Events._trusted(self.xp.numpy(t), x[pix], y[pix], self.xp.numpy(p),
                               self.width, self.height)

    def _interval(self, t_b: int, luma_b: np.ndarray, L_b: np.ndarray) -> tuple[Any, Any, Any]:
        """Events of one sample interval (t_prev, t_b]; advances the state.

        ``L_b`` is the flat log intensity of ``luma_b``.
        """
        xp, cfg = self.xp, self.cfg
        t_a = self.t_prev
        dt = float(t_b - t_a)
        La = self.L_prev
        Lb = xp.float64(L_b)
        tau = None
        if cfg.cutoff_hz > 0:
            rel = np.maximum(self.luma_prev.ravel() / 255.0, _MIN_CUTOFF_FRACTION)
            tau = xp.float64(1e6 / (2 * math.pi * cfg.cutoff_hz * rel))   # microseconds
        noise = self._shot_noise(t_a, t_b)

        if cfg.needs_substeps:
            change = xp.abs(Lb - La)
            if self.filt is not None:
                change = xp.maximum(change, xp.abs(self.filt - La))
            m = xp.clip(xp.ceil(change / (cfg.max_log_step * self.cmin)), 1, cfg.max_substeps)
            M = int(xp.max(m))
        else:
            m, M = None, 1
        if M == 1 and noise is None:
            parts = [self._step(slice(None), t_a, float(t_a), dt, La, Lb, tau, t_b)]
        elif M == 1:
            parts = list(self._split_at_noise(t_a, t_b, La, Lb, tau, noise))
        else:
            parts = list(self._substeps(t_a, t_b, La, Lb, tau, noise, m, M))
        self.L_prev = Lb
        self.t_prev, self.luma_prev = t_b, luma_b
        parts = [q for q in parts if q is not None and len(q[0])]
        if not parts:
            empty = xp.zeros(0, "int64")
            return empty, empty, xp.zeros(0, "int8")
        if len(parts) == 1:
            t, pix, p = parts[0]           # pixel-major already
        else:
            t, pix, p = (xp.cat([q[i] for q in parts]) for i in range(3))
            # parts are step-major: make them pixel-major (stable, so each pixel's
            # events stay in the order they were generated, which is time order)
            order = xp.argsort(pix, bound=self.npix)
            t, pix, p = t[order], pix[order], p[order]
        # time order, ties by pixel then generation order: the canonical order, the
        # same in every backend (all times lie in (t_a, t_b]: clipped crossings and
        # noise alike)
        order = xp.argsort(t - t_a, bound=t_b - t_a + 1)
        return t[order], pix[order], p[order]

    def _substeps(self, t_a: int, t_b: int, La: Any, Lb: Any, tau: Any,
                  noise: tuple[Any, Any, Any] | None, m: Any,
                  M: int) -> Iterator[tuple[Any, Any, Any] | None]:
        """Per-pixel uniform sub-steps: pixel i takes m[i] steps of (t_b - t_a) / m[i]."""
        xp = self.xp
        dt = float(t_b - t_a)
        m_int = xp.int64(m)
        noise_step = None
        if noise is not None:
            frac = (xp.float64(noise[0]) - t_a) / dt
            noise_step = xp.int64(xp.ceil(frac * xp.float64(m_int[noise[1]]))) - 1
        dL = Lb - La
        for j in range(M):
            sel = slice(None) if j == 0 else xp.nonzero(m_int > j)
            mj = m[sel]
            s0 = j / mj
            dLs = dL[sel]
            La_s = La[sel]
            u0 = La_s + dLs * s0
            u1 = xp.where(m_int[sel] == j + 1, Lb[sel], La_s + dLs * ((j + 1) / mj))
            yield self._step(sel, t_a, t_a + s0 * dt, dt / mj, u0, u1,
                             None if tau is None else tau[sel], t_b)
            if noise_step is not None:
                hit = xp.nonzero(noise_step == j)
                if len(hit):
                    yield self._noise_events(noise[0][hit], noise[1][hit], noise[2][hit])

    def _split_at_noise(self, t_a: int, t_b: int, La: Any, Lb: Any, tau: Any,
                        noise: tuple[Any, Any, Any]) -> Iterator[tuple[Any, Any, Any] | None]:
        """One-step interval where pixels with shot noise are split at each noise event.

        A noise event resets its pixel exactly at its time: the pixel's segment is cut
        there, the reference moves by +C+ / -C-, and the rest follows. Passes go over
        the noise rank within a pixel (noise is sparse), then one pass over all pixels.
        """
        xp = self.xp
        nt, npix, npol = noise
        # noise comes in time order: a stable sort by pixel gives (pixel, time) order
        order = xp.argsort(npix, bound=self.npix)
        nt, npix, npol = nt[order], npix[order], npol[order]
        n = len(nt)
        first = xp.zeros(n, "bool")
        first[0] = True
        first[1:] = npix[1:] != npix[:-1]
        rank = xp.arange(n) - xp.cummax(xp.where(first, xp.arange(n), 0))
        dt = float(t_b - t_a)
        dL = Lb - La
        ts0 = xp.full(self.npix, float(t_a), "float64")
        u0 = xp.copy(La)
        for r in range(int(xp.max(rank)) + 1):
            idx = xp.nonzero(rank == r)
            pp, tn_i = npix[idx], nt[idx]
            tn = xp.float64(tn_i)
            u_end = La[pp] + dL[pp] * ((tn - t_a) / dt)
            start = ts0[pp]
            yield self._step(pp, t_a, start, tn - start, u0[pp], u_end,
                             None if tau is None else tau[pp], t_b)
            yield self._noise_events(tn_i, pp, npol[idx])
            ts0[pp] = tn
            u0[pp] = u_end
        yield self._step(slice(None), t_a, ts0, t_b - ts0, u0, Lb, tau, t_b)

    def _step(self, sel: Any, t_a: int, ts0: Any, h: Any, u0: Any, u1: Any, tau: Any,
              t_b: int) -> tuple[Any, Any, Any] | None:
        """One linear segment for the pixels ``sel``: crossings -> events, state update.

        ``ts0`` / ``h`` are the segment start time and length in microseconds (scalars
        or per-pixel arrays); ``u0`` / ``u1`` the log intensity at its ends. Events come
        back pixel-major, in time order within a pixel, refractory filter applied.
        """
        xp = self.xp
        if tau is not None:
            y0 = self.filt[sel]
            btau = (u1 - u0) / (h if isinstance(h, float) else xp.maximum(h, 1e-9)) * tau
            y1 = u1 - btau + (y0 - u0 + btau) * xp.exp(-h / tau)
            self.filt[sel] = y1
            v0, v1 = y0, y1
        else:
            v0, v1 = u0, u1
        ref = self.ref[sel]
        d1 = v1 - ref
        if self.leak_per_us is not None:
            drift = self.leak_per_us[sel] * h
            d1 += drift
        active, on, counts_f, c = self._crossings(sel, d1)
        # Gather what the event times need before the reference moves (``ref`` may be
        # a view of ``self.ref``).
        d0_a = v0[active] - ref[active]
        d1_a = d1[active]
        if self.leak_per_us is not None:
            self.ref[sel] = ref - drift
        src = active if isinstance(sel, slice) else sel[active]
        if len(active) == 0:
            return None
        sgn = xp.where(on, 1.0, -1.0)
        # The reference moves by the emitted count times C (ref + n_on*C+ - n_off*C- of
        # the model, written for the one polarity that fired: the same float result).
        self.ref[src] = self.ref[src] + sgn * (counts_f * c)
        counts = xp.int64(counts_f)
        # Per active pixel, in the orientation of its polarity (s = +1 ON, -1 OFF):
        # e0 = s*D0, e1 = s*D1, crossings at k*C (k = 1..n) reached at
        # t_k = t0 + (k*C - e0) / (e1 - e0) * h  =  A + k*B, and at t0 for the levels
        # the input had already passed then (k*C <= e0: after a reset's jump).
        e1 = sgn * d1_a
        e0 = sgn * d0_a
        span = e1 - e0
        pos = span > 0
        h_a = h if isinstance(h, float) else h[active]
        t0_a = ts0 if isinstance(ts0, float) else ts0[active]
        inv = xp.where(pos, h_a / xp.where(pos, span, 1.0), 0.0)
        A = t0_a - e0 * inv
        B = c * inv
        ends = xp.cumsum(counts)
        k = self._ranks(counts, ends)
        t = xp.rint(xp.repeat(A, counts) + xp.float64(k) * xp.repeat(B, counts))
        # rint(max(x, t0)) = max(rint(x), rint(t0)); a start at t_a is the clip's
        if not isinstance(ts0, float):
            t = xp.maximum(t, xp.repeat(xp.rint(t0_a), counts))
        elif ts0 > t_a:
            t = xp.maximum(t, float(np.rint(ts0)))
        t = xp.clip(xp.int64(t), t_a + 1, t_b)
        pix = xp.repeat(src, counts)
        p = xp.repeat(xp.int8(sgn), counts)
        if self.cfg.refractory_us > 0:
            keep = self._refractory(t, pix, k, ends - counts, ends - 1, src)
            if keep is not None:
                kept = xp.nonzero(keep)     # one mask scan, then three cheap gathers
                t, pix, p = t[kept], pix[kept], p[kept]
        return t, pix, p

    def _crossings(self, sel: Any, d1: Any) -> tuple[Any, Any, Any, Any]:
        """Pixels of ``sel`` that cross a level, with polarity, count and threshold.

        The count is ``floor(D1 / C + tol)`` for the polarity whose level is crossed
        (``D1`` = input minus reference at the segment end); a pixel fires when that
        reaches 1, so the mask needs no floor and the floor runs on fired pixels only.
        """
        xp = self.xp
        cp, cm = self.cp[sel], self.cm[sel]
        y_on = d1 / cp
        y_on += _CROSS_TOL
        y_off = d1 / self.neg_cm[sel]
        y_off += _CROSS_TOL
        active = xp.nonzero((y_on >= 1.0) | (y_off >= 1.0))
        y_on_a = y_on[active]
        on = y_on_a >= 1.0
        counts_f = xp.floor(xp.where(on, y_on_a, y_off[active]))
        c = xp.where(on, cp[active], cm[active])
        return active, on, counts_f, c

    def _ranks(self, counts: Any, ends: Any) -> Any:
        """1, 2, ..., n per pixel for the repeated events: a cumsum of ones that drops
        back to 1 at each pixel's first event (cheaper than arange minus repeat)."""
        xp = self.xp
        steps = xp.full(int(ends[-1]), 1, "int64")
        steps[ends[:-1]] = 1 - counts[:-1]
        return xp.cumsum(steps)

    def _shot_noise(self, t_a: int, t_b: int) -> tuple[Any, Any, Any] | None:
        """Shot-noise events (t, pixel, polarity) of the interval (t_a, t_b] in time
        order, or None when there are none (:class:`evreid.events._noise.ShotNoise`)."""
        if self._noise is None:
            return None
        t, pix, p = self._noise.take(t_b)
        if len(t) == 0:
            return None
        xp = self.xp
        return xp.int64(t), xp.int64(pix), xp.int8(p)

    def _noise_events(self, t: Any, pix: Any, p: Any) -> tuple[Any, Any, Any]:
        """Noise events (at most one per pixel): reset their pixels, refractory filter."""
        xp = self.xp
        on = xp.float64(p) > 0
        delta = xp.where(on, self.cp[pix], -self.cm[pix])
        xp.index_add(self.ref, pix, delta)
        R = int(self.cfg.refractory_us)
        if R > 0:
            last = self.last_t[pix]
            kept = (t - last) >= R
            self.last_t[pix] = xp.where(kept, t, last)
            if not xp.all(kept):
                return t[kept], pix[kept], p[kept]
        return t, pix, p

    def _refractory(self, t: Any, pix: Any, k: Any, first_idx: Any, last_idx: Any,
                    src: Any) -> Any:
        """Keep-mask (None = keep all) of one step's events under the refractory period.

        Events arrive pixel-major and in time order within a pixel (``k`` = 1, 2, ...
        is the rank within the pixel, ``first_idx`` / ``last_idx`` the index of each
        pixel's first / last event, ``src`` the pixels), so the check needs no sort.
        Exact sequential semantics: an event is kept if it is at least
        ``refractory_us`` after the previous *kept* event of its pixel.

        An event at least ``refractory_us`` after the event before it (for a pixel's
        first event: after its last kept event) is kept whatever happened before. The
        others form runs behind such an event; only they need sequential passes, one
        per position in a run, and runs are short.
        """
        xp = self.xp
        R = int(self.cfg.refractory_us)
        sure = xp.full(len(t), True, "bool")
        sure[1:] = (t[1:] - t[:-1]) >= R
        sure[first_idx] = (t[first_idx] - self.last_t[src]) >= R
        if xp.all(sure):
            self.last_t[src] = t[last_idx]
            return None
        keep = sure                            # the undecided ones are filled in below
        u = xp.nonzero(~sure)                  # undecided events, in order
        first_u = k[u] == 1
        # a run starts at an undecided event whose predecessor is kept for sure (or
        # that is its pixel's first); the last kept time before it is its anchor
        starts = first_u | sure[xp.maximum(u - 1, 0)]
        anchor_pos = xp.nonzero(starts)
        us = u[anchor_pos]
        anchor = xp.where(first_u[anchor_pos], self.last_t[pix[us]], t[xp.maximum(us - 1, 0)])
        run = xp.cumsum(xp.int64(starts)) - 1
        n_u = len(u)
        pos = xp.arange(n_u) - xp.cummax(xp.where(starts, xp.arange(n_u), 0))
        for j in range(int(xp.max(pos)) + 1):
            sel = xp.nonzero(pos == j)
            ev, rid = u[sel], run[sel]
            kept = (t[ev] - anchor[rid]) >= R
            keep[ev] = kept
            anchor[rid] = xp.where(kept, t[ev], anchor[rid])
        # last kept time per pixel: its last event if kept, else the anchor of the run
        # that event ends (the run's last kept time)
        self.last_t[src] = t[last_idx]
        open_end = xp.nonzero(~keep[last_idx])
        if len(open_end):
            run_of = xp.zeros(len(t), "int64")
            run_of[u] = run
            self.last_t[src[open_end]] = anchor[run_of[last_idx[open_end]]]
        return keep


def _use_compiled(device: str | None, cfg: SimulatorConfig) -> bool:
    """Whether the compiled kernel runs: CPU paths (``None``, ``"numba"``) without the
    low-pass filter (its ``exp`` may round differently from NumPy's)."""
    if device == "numba":
        if not _kernel.available():
            raise EvreidError("device 'numba' needs the numba package: pip install numba")
        if cfg.cutoff_hz > 0:
            raise EvreidError("device 'numba' does not run the photoreceptor low-pass "
                              "(cutoff_hz > 0); use device=None or 'numpy'")
        return True
    return device is None and _kernel.available() and cfg.cutoff_hz == 0


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
    ``device``: ``None`` (compiled kernel when numba is there and the low-pass
    filter is off, else NumPy), ``"numpy"``, ``"numba"``, or a torch device
    (``"cpu"``, ``"cuda"``, ``"auto"``); every path gives the same events.
    Deterministic in ``seed``.
    """
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
