"""Presets (how big a dataset is) and degradation protocols (what the sensors suffer).

Both are fixed in code and recorded in every dataset card. They were chosen
from physical plausibility and the time budget, never tuned to favour a model.

Presets
-------
``tiny`` (tests), ``small`` (the embedded demo: 64 identities, 2 cameras,
128x64, 24-48 frames) and ``full`` (300 identities, 3 cameras, 256x128, 32-96
frames): every identity walks through every camera once, PRID-2011 style.

``medium`` is the benchmark for claims (statistical power and headroom, issue
21): 300 identities (150 test), 2 cameras, 128x64, 16-32 frames, every identity
walks through every camera twice (two tracklets per identity and camera, the
second one in either direction, so a query has two true matches) and 100
gallery-only distractor identities (200 tracklets in the gallery camera that
match no query). Its query set is 300 tracklets, its gallery 500. Identities
come in look-alike groups of 4 that wear one outfit (clothes, hair, skin, bag:
a uniform and a common haircut) and differ in build and gait only; the
distractors are dealt round the same groups. Without the groups a frames-only
model scored 94.7 mAP on clean (measured): no headroom. With them, identity
rests on body shape and motion, which both sensors see.

Protocols
---------
A protocol is a set of degradation *effects*; each effect has fixed
parameters (:data:`EFFECTS`):

* ``clean``: no effect; a 25 % duty-cycle shutter (short exposure).
* ``blur``: the camera's slow-shutter ("sens-up") mode, common in
  surveillance cameras: each video frame integrates the last 4 frame periods
  (200 ms at 20 fps) of sub-frames -- strong motion blur from physics, walkers
  smeared over a good part of a stride. Events are untouched (an event pixel
  has no shutter).
* ``lowlight``: the scene light drops to 8 % for BOTH sensors (physically
  shared); the video camera opens to a 50 % duty cycle, amplifies, suffers shot
  noise (few photo-electrons) and read noise, and quantises a dark gamma-encoded
  image to 8 bits; the event sensor gets its realistic noise model (leak, shot
  noise, slower dark photoreceptor).
* ``occlusion``: static occluders (poles, bins / barriers, standing
  bystanders) stand between the camera and the walker; both sensors see them.
* ``mixed``: each tracklet draws each of blur / lowlight / occlusion
  independently with probability 0.5 (a deterministic draw per tracklet).

Protocols switch only degradations: the identities, cameras, trajectories,
gait phases and tracker crops come from seed streams that no protocol
touches, so ``clean`` and ``blur`` folders of one seed show the same people
walking the same way (and ``blur`` has the very same event files as
``clean``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evreid.errors import EvreidError


@dataclass(frozen=True)
class Preset:
    """Size and sampling of a generated dataset."""

    name: str
    num_ids: int
    num_cameras: int
    height: int
    width: int
    min_len: int
    max_len: int
    fps: float = 20.0
    render_rate: int = 8      # rendered sub-frames per video frame interval (shutter)
    event_rate: int = 4       # of which fed to the event sensor (divides render_rate)
    num_splits: int = 10
    tracklets_per_camera: int = 1   # visits of each identity to each camera
    distractors: int = 0      # extra identities seen only by the gallery cameras
    outfit_group: int = 1     # identities wearing one outfit (look-alikes; 1: everyone their own)

    def __post_init__(self) -> None:
        if self.event_rate < 1 or self.render_rate % self.event_rate:
            raise EvreidError(f"synthetic preset {self.name}: event_rate {self.event_rate} must "
                              f"divide render_rate {self.render_rate}")
        if not 1 <= self.min_len <= self.max_len or self.num_ids < 2 or self.num_cameras < 2:
            raise EvreidError(f"synthetic preset {self.name}: needs 1 <= min_len <= max_len, "
                              f">= 2 identities and >= 2 cameras")
        if self.tracklets_per_camera < 1 or self.distractors < 0 or self.outfit_group < 1:
            raise EvreidError(f"synthetic preset {self.name}: needs tracklets_per_camera >= 1, "
                              f"distractors >= 0 and outfit_group >= 1")

    @property
    def multi_visit(self) -> bool:
        """Whether tracklet folders carry a visit suffix (``person_NNNN_V``)."""
        return self.tracklets_per_camera > 1

    def to_dict(self) -> dict[str, Any]:
        # the fields added for ``medium`` are left out at their defaults, so the cards
        # (and cache keys) of the older presets stay byte-identical
        out = asdict(self)
        if self.tracklets_per_camera == 1:
            del out["tracklets_per_camera"]
        if self.distractors == 0:
            del out["distractors"]
        if self.outfit_group == 1:
            del out["outfit_group"]
        return out

    def outfit_of(self, pid: int) -> int | None:
        """The look-alike group whose outfit ``pid`` wears (None: an outfit of its own).

        Identities 1..num_ids form consecutive groups of ``outfit_group``; the
        distractors are dealt round the same groups, so the gallery holds
        look-alikes that match no query."""
        if self.outfit_group == 1:
            return None
        if pid <= self.num_ids:
            return (pid - 1) // self.outfit_group
        return (pid - self.num_ids - 1) % max(1, self.num_ids // self.outfit_group)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", num_ids=8, num_cameras=2, height=64, width=32, min_len=6, max_len=9,
                   render_rate=4, event_rate=2),
    "small": Preset("small", num_ids=64, num_cameras=2, height=128, width=64, min_len=24,
                    max_len=48),
    "small_lookalike": Preset("small_lookalike", num_ids=64, num_cameras=2, height=128,
                              width=64, min_len=24, max_len=48, outfit_group=4),
    "medium": Preset("medium", num_ids=300, num_cameras=2, height=128, width=64, min_len=16,
                     max_len=32, tracklets_per_camera=2, distractors=100, outfit_group=4),
    "full": Preset("full", num_ids=300, num_cameras=3, height=256, width=128, min_len=32,
                   max_len=96, render_rate=12, event_rate=6),
}


@dataclass(frozen=True)
class Effects:
    """The degradations applied to one tracklet."""

    blur: bool = False
    lowlight: bool = False
    occlusion: bool = False

    def names(self) -> list[str]:
        return [k for k, v in asdict(self).items() if v]


#: Fixed parameters of each effect and of the undegraded capture.
EFFECTS: dict[str, dict[str, Any]] = {
    "clean": {"exposure": 0.25,          # shutter duty cycle (fraction of the frame interval)
              "light": 1.0,              # scene light for both sensors
              "video_gain": 1.0,         # camera amplification before the gamma curve
              "full_well": 6000.0,       # photo-electrons at full scale, 25 % exposure
              "events": {"preset": "default"}},
    # exposure in frame periods; above 1 the camera integrates over several
    # periods (slow shutter), so consecutive frames' exposures overlap
    "blur": {"exposure": 4.0},
    "lowlight": {"exposure": 0.5, "light": 0.08, "video_gain": 1.6,
                 "events": {"preset": "realistic", "shot_noise_rate_hz": 1.0}},
    "occlusion": {"min_occluders": 1, "max_occluders": 2,
                  "kinds": ("pole", "box", "bystander")},
}

PROTOCOLS = ("clean", "blur", "lowlight", "occlusion", "mixed")
#: probability of each effect per tracklet under ``mixed``
MIXED_PROBABILITY = 0.5


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise EvreidError(f"unknown synthetic preset {name!r}; choose from "
                          f"{', '.join(PRESETS)}")
    return PRESETS[name]


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        raise EvreidError(f"unknown synthetic protocol {name!r}; choose from "
                          f"{', '.join(PROTOCOLS)}")
    return name


def effects_for(protocol: str, draw: list[float] | None = None) -> Effects:
    """The effects of one tracklet; ``mixed`` needs three uniform draws in [0, 1)."""
    check_protocol(protocol)
    if protocol == "mixed":
        if draw is None or len(draw) != 3:
            raise EvreidError("protocol 'mixed' needs three uniform draws per tracklet")
        return Effects(*(d < MIXED_PROBABILITY for d in draw))
    return Effects(blur=protocol == "blur", lowlight=protocol == "lowlight",
                   occlusion=protocol == "occlusion")


def capture_settings(effects: Effects) -> dict[str, Any]:
    """Exposure, light, gain, full well and event-sensor settings for these effects.

    The exposure is the longest of the effects' (a dark scene and a slow
    shutter both lengthen it); the other keys come from the effect that sets them.
    """
    out = dict(EFFECTS["clean"])
    if effects.lowlight:
        out.update({k: v for k, v in EFFECTS["lowlight"].items()})
    if effects.blur:
        out["exposure"] = max(out["exposure"], EFFECTS["blur"]["exposure"])
    return out
