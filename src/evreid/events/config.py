"""The simulator's settings: :class:`SimulatorConfig`, its presets and its cache key.

What each setting means in the pixel model, and what the presets stand for, is in
docs/SIMULATOR.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from evreid.errors import EvreidError

#: Bumped when the algorithm changes in a way that changes output for the same
#: config, so that caches made by an older version are detected as stale.
#: 5: per-pixel normals from NumPy's ``Generator.standard_normal`` (was a ziggurat).
SIMULATOR_VERSION = 5

UPSAMPLE = ("linear", "flow", "none")


@dataclass(frozen=True)
class SimulatorConfig:
    """Every knob of the DVS pixel model (docs/SIMULATOR.md).

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
        if self.upsample not in UPSAMPLE:
            raise bad("upsample", f"is not one of {', '.join(UPSAMPLE)}")
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


def parse_settings(items: list[str], syntax: str = "KEY VALUE") -> dict[str, Any]:
    """Simulator settings typed by the field they set, from the command line:
    ``["cutoff_hz", "200", ...]`` (``KEY VALUE``, as config overrides are written) or
    ``["cutoff_hz=200", ...]`` (``KEY=VALUE``, the deprecated ``--set``, whose error
    messages stay as they were)."""
    types = {f.name: f.type for f in dataclasses.fields(SimulatorConfig)}
    names = ", ".join(sorted(types))
    if syntax == "KEY=VALUE":
        pairs = []
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or key.strip() not in types:
                raise EvreidError(f"--set {item!r}: expected KEY=VALUE with KEY one of {names}")
            pairs.append((key.strip(), text, f"--set {item!r}: {key.strip()} needs a number"))
    else:
        if len(items) % 2:
            raise EvreidError(f"simulator settings must be KEY VALUE pairs; {items[-1]!r} "
                              f"has no value")
        pairs = []
        for key, text in zip(items[0::2], items[1::2], strict=True):
            if key not in types:
                raise EvreidError(f"unknown simulator setting {key!r}; one of {names}")
            pairs.append((key, text, f"simulator setting {key} needs a number; got {text!r}"))
    values: dict[str, Any] = {}
    for key, text, not_a_number in pairs:
        kind = types[key]
        try:
            values[key] = int(text) if kind == "int" else float(text) if kind == "float" \
                else text
        except ValueError:
            raise EvreidError(not_a_number) from None
    return values
