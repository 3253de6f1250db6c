"""One tracklet: an identity walking through one camera's view, seen by both sensors.

Geometry. The camera is static. The walker crosses its view at constant
speed (``gait.speed`` body heights per second) while a tracker cuts a W x H
crop around them at every video frame (integer offsets with a little smooth
jitter, as real detectors give). Everything is rendered on the *strip* of the
camera's panorama that the crops of this tracklet cover, so the event sensor
-- static like the camera -- sees only what really moves (the walker) and its
events are cropped with the same box as the video frame of their interval:
frames and events are pixel-aligned and time-aligned by construction.

Time. Video frame k is at ``t_k = round(k * 1e6 / fps)`` microseconds and
owns the events in ``(t_{k-1}, t_k]``; the scene is rendered from ``t_{-1}``
on, at ``render_rate`` sub-frames per frame interval. The event sensor is fed
every ``render_rate / event_rate``-th sub-frame, the video camera averages
the sub-frames inside its exposure window ``(t_k - exposure * dt, t_k]``.
Sub-frames that neither sensor needs are not rendered.

Seeds. Every random draw comes from a NumPy ``SeedSequence`` keyed by
``(seed, stream, pid, camera, sub-stream)``, so a tracklet is the same
whichever worker renders it and in whichever order, and protocols only add
draws from their own sub-streams (occluders, mixed choice), leaving the
trajectory and the noise of the others untouched. A later visit of the same
identity to the same camera (presets with ``tracklets_per_camera`` > 1) draws
from ``(seed, STREAM_VISIT, pid, camera, visit, sub-stream)``; visit 0 keeps
the keys above, so the tracklets of the one-visit presets are unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from evreid.data.synthetic.cameras import Camera, render_background, sample_camera
from evreid.data.synthetic.gait import standing_pose, walking_pose
from evreid.data.synthetic.identities import Identity, sample_clothing, sample_identity
from evreid.data.synthetic.protocols import (
    EFFECTS,
    Effects,
    Preset,
    capture_settings,
    effects_for,
)
from evreid.data.synthetic.renderer import Occluder, Placement, draw_occluder, draw_person
from evreid.data.synthetic.sensors import luminance, to_linear, video_frame
from evreid.events import Events, EventSimulator, SimulatorConfig, frame_timestamps_us

# seed streams (never reorder: they name the draws of every published dataset)
STREAM_IDENTITY, STREAM_CAMERA, STREAM_TRACKLET, STREAM_SPLITS, STREAM_VISIT = 1, 2, 3, 4, 5
STREAM_OUTFIT = 6   # the shared outfit of a look-alike group
SUB_TRAJECTORY, SUB_OCCLUDERS, SUB_VIDEO_NOISE, SUB_EVENTS, SUB_MIXED = 0, 1, 2, 3, 4
SUB_DIRECTION = 5   # later visits only

#: largest walking speed a draw can give, in body heights per second (step 0.46 x 2.2 Hz)
_MAX_SPEED = 0.46 * 2.2
#: horizontal reach of limbs, bags and hair from the pelvis, in body heights
_REACH = 0.55


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for one named draw (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def tracklet_key(pid: int, cam: int, visit: int = 0) -> tuple[int, ...]:
    """The seed-stream prefix of one tracklet (visit 0: the original, published keys)."""
    if visit == 0:
        return (STREAM_TRACKLET, pid, cam)
    return (STREAM_VISIT, pid, cam, visit)


def identity_of(seed: int, pid: int, outfit: int | None = None) -> Identity:
    """Identity ``pid``; with an ``outfit`` group it wears that group's clothing draw
    (its build and gait stay its own)."""
    ident = sample_identity(pid, rng_for(seed, STREAM_IDENTITY, pid))
    if outfit is None:
        return ident
    return dataclasses.replace(ident, clothing=sample_clothing(rng_for(seed, STREAM_OUTFIT,
                                                                       outfit)))


def camera_of(seed: int, index: int) -> Camera:
    return sample_camera(index, rng_for(seed, STREAM_CAMERA, index))


def panorama_width(preset: Preset) -> int:
    """Width of each camera's background: twice the widest strip any tracklet can need."""
    stature_px = preset.height * 0.84 * 1.06
    travel = _MAX_SPEED * stature_px * (preset.max_len + 1) / preset.fps
    return int(2 * (preset.width * 1.2 + travel + 8))


@functools.lru_cache(maxsize=8)
def _panorama(camera: Camera, height: int, width: int) -> np.ndarray:
    return render_background(camera, height, width)


@dataclass(frozen=True)
class TrackletPlan:
    """Everything needed to render one tracklet; a pure function of (seed, preset, pid, cam)."""

    seed: int
    preset: Preset
    identity: Identity
    camera: Camera
    length: int
    phase0: float                 # gait phase at t = 0
    x_start: float                # strip column of the pelvis at t = 0
    velocity: float               # pixels per second, signed by the walking direction
    stature_px: float
    ground: float
    crops: tuple[int, ...]        # strip column of each frame's crop
    strip_x0: int                 # panorama column of strip column 0
    strip_width: int
    effects: Effects
    occluders: tuple[Occluder, ...]
    bystanders: tuple[tuple[Identity, Placement], ...]
    visit: int = 0                # which pass of this identity through this camera
    direction: int = 0            # +1 / -1 walking direction; 0: the camera's

    @property
    def pid(self) -> int:
        return self.identity.pid

    @property
    def facing(self) -> int:
        return self.direction or self.camera.direction

    def rng(self, *keys: int) -> np.random.Generator:
        """The generator of one sub-stream of this tracklet."""
        return rng_for(self.seed, *tracklet_key(self.pid, self.camera.index, self.visit), *keys)


def _occlusion(plan_rng: np.random.Generator, preset: Preset, path: tuple[float, float],
               ground: float, stature_px: float, seed: int, key: tuple[int, ...]
               ) -> tuple[tuple[Occluder, ...], tuple[tuple[Identity, Placement], ...]]:
    """Static occluders standing along the walker's path, in front of it."""
    cfg = EFFECTS["occlusion"]
    n = int(plan_rng.integers(cfg["min_occluders"], cfg["max_occluders"] + 1))
    lo, hi = min(path), max(path)
    occluders, bystanders = [], []
    for i in range(n):
        kind = cfg["kinds"][int(plan_rng.integers(len(cfg["kinds"])))]
        x = float(plan_rng.uniform(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo)))
        if kind == "pole":
            half = float(plan_rng.uniform(0.025, 0.05)) * preset.height
            grey = int(plan_rng.integers(50, 150))
            occluders.append(Occluder("pole", x - half, x + half, 0.0, ground + 2.0,
                                      (grey, grey + 6, grey + 2)))
        elif kind == "box":
            half = float(plan_rng.uniform(0.1, 0.22)) * stature_px
            top = ground - float(plan_rng.uniform(0.25, 0.5)) * stature_px
            colour = ((40, 82, 52), (150, 150, 146), (208, 112, 36),
                      (70, 70, 76))[int(plan_rng.integers(4))]
            occluders.append(Occluder("box", x - half, x + half, top, ground + 3.0, colour))
        else:
            # a bystander from the occluder stream, never one of the dataset's identities
            ident = sample_identity(-1, rng_for(seed, *key, SUB_OCCLUDERS, 100 + i))
            place = Placement(x=x, ground=ground + 0.02 * preset.height,
                              height=stature_px * 1.04 * ident.build.stature,
                              direction=1 if plan_rng.random() < 0.5 else -1)
            bystanders.append((ident, place))
    return tuple(occluders), tuple(bystanders)


def plan_tracklet(seed: int, preset: Preset, pid: int, cam: int, protocol: str,
                  visit: int = 0) -> TrackletPlan:
    """Draw the trajectory, crops, effects and occluders of one tracklet.

    A later visit (``visit`` >= 1) walks either way through the view (a draw of
    its own), so the two tracklets of one camera may show the two sides of the body.
    """
    ident, camera = identity_of(seed, pid, preset.outfit_of(pid)), camera_of(seed, cam)
    key = tracklet_key(pid, cam, visit)
    rng = rng_for(seed, *key, SUB_TRAJECTORY)
    length = int(rng.integers(preset.min_len, preset.max_len + 1))
    phase0 = float(rng.uniform(0.0, 2.0 * math.pi))
    stature_px = preset.height * camera.person_scale * ident.build.stature
    direction = 0 if visit == 0 else (1 if rng_for(seed, *key, SUB_DIRECTION).random() < 0.5
                                      else -1)
    velocity = (direction or camera.direction) * ident.gait.speed * stature_px
    W = preset.width
    # tracker: centred on the walker with smooth jitter (an AR(1) walk, a few pixels)
    jitter = np.zeros(length)
    state = 0.0
    for k in range(length):
        state = 0.8 * state + float(rng.normal(0.0, 0.025 * W))
        jitter[k] = float(np.clip(state, -0.08 * W, 0.08 * W))
    times = frame_timestamps_us(length, preset.fps) * 1e-6
    rel = [int(round(velocity * t - W / 2 + j)) for t, j in zip(times, jitter, strict=True)]
    left = min(rel)
    crops = tuple(c - left for c in rel)
    strip_width = max(crops) + W
    pano = panorama_width(preset)
    strip_x0 = int(rng.integers(0, pano - strip_width + 1))
    x_start = float(-left)
    ground = preset.height * camera.foot_row

    mix = rng_for(seed, *key, SUB_MIXED).random(3)
    effects = effects_for(protocol, [float(v) for v in mix])
    occluders: tuple[Occluder, ...] = ()
    bystanders: tuple[tuple[Identity, Placement], ...] = ()
    if effects.occlusion:
        path = (x_start, x_start + velocity * float(times[-1]))
        occluders, bystanders = _occlusion(
            rng_for(seed, *key, SUB_OCCLUDERS), preset, path, ground, stature_px, seed, key)
    return TrackletPlan(seed=seed, preset=preset, identity=ident, camera=camera, length=length,
                        phase0=phase0, x_start=x_start, velocity=velocity,
                        stature_px=stature_px, ground=ground, crops=crops, strip_x0=strip_x0,
                        strip_width=strip_width, effects=effects, occluders=occluders,
                        bystanders=bystanders, visit=visit, direction=direction)


@dataclass
class RenderedTracklet:
    """Video frames (uint8 RGB [L, H, W, 3]), their timestamps and the cropped events."""

    plan: TrackletPlan
    frames: np.ndarray
    timestamps_us: np.ndarray
    events: Events | None
    event_config: SimulatorConfig


def event_config(settings: dict) -> SimulatorConfig:
    spec = dict(settings["events"])
    return SimulatorConfig.preset(spec.pop("preset"), **spec)


def light_map(camera: Camera, height: int, light: float) -> np.ndarray:
    """Per-row, per-channel illumination [H, 1, 3]: gain, colour cast, top-to-bottom shading."""
    rows = np.linspace(camera.shade_top, 1.0, height, dtype=np.float32)
    cast = np.asarray(camera.cast, np.float32)
    return (camera.gain * light * rows[:, None, None] * cast[None, None, :]).astype(np.float32)


class _Scene:
    """Renders the strip at any time: a static layer plus a window around the walker.

    Only the columns the walker can reach change between sub-frames, so each
    sub-frame redraws just that window (background, walker, then the static
    occluders again on top) and converts it to linear radiance; the rest of the
    strip is the precomputed static layer.
    """

    def __init__(self, plan: TrackletPlan, light: float) -> None:
        p = plan.preset
        pano = _panorama(plan.camera, p.height, panorama_width(p))
        self.plan = plan
        self.background = np.ascontiguousarray(
            pano[:, plan.strip_x0:plan.strip_x0 + plan.strip_width])
        self.light = light_map(plan.camera, p.height, light)
        self.standing = standing_pose()
        static = self.background.copy()
        self._draw_static(static, 0.0)
        self.static_linear = to_linear(static, self.light)
        self.static_luma = luminance(self.static_linear)
        self.reach = int(math.ceil(_REACH * plan.stature_px)) + 2

    def _draw_static(self, canvas: np.ndarray, x_offset: float) -> None:
        for ident, place in self.plan.bystanders:
            draw_person(canvas, ident, self.standing,
                        dataclasses.replace(place, x=place.x - x_offset))
        for occ in self.plan.occluders:
            draw_occluder(canvas, dataclasses.replace(occ, x0=occ.x0 - x_offset,
                                                      x1=occ.x1 - x_offset))

    def window(self, t_us: int) -> tuple[int, np.ndarray]:
        """(first column, linear radiance [H, w, 3]) of the part of the strip that moves."""
        plan = self.plan
        t = t_us * 1e-6
        x = plan.x_start + plan.velocity * t
        a = max(0, int(math.floor(x)) - self.reach)
        b = min(plan.strip_width, int(math.floor(x)) + self.reach + 1)
        if b <= a:   # the walker is outside the strip (cannot happen with tracked crops)
            return 0, self.static_linear[:, :0]
        canvas = self.background[:, a:b].copy()
        pose = walking_pose(plan.identity.gait,
                            plan.phase0 + 2.0 * math.pi * plan.identity.gait.cycle_hz * t)
        draw_person(canvas, plan.identity, pose,
                    Placement(x=x - a, ground=plan.ground, height=plan.stature_px,
                              direction=plan.facing))
        self._draw_static(canvas, float(a))
        return a, to_linear(canvas, self.light)

    def crop(self, a: int, win: np.ndarray, c0: int, width: int) -> np.ndarray:
        """Linear radiance of columns [c0, c0 + width) given the moving window."""
        out = self.static_linear[:, c0:c0 + width].copy()
        lo, hi = max(a, c0), min(a + win.shape[1], c0 + width)
        if hi > lo:
            out[:, lo - c0:hi - c0] = win[:, lo - a:hi - a]
        return out

    def luma(self, a: int, win: np.ndarray) -> np.ndarray:
        """Luminance of the whole strip (what the event sensor sees)."""
        out = self.static_luma.copy()
        out[:, a:a + win.shape[1]] = luminance(win)
        return out


def render_tracklet(plan: TrackletPlan, with_events: bool = True) -> RenderedTracklet:
    """Render the video frames and (optionally) the events of one tracklet."""
    p = plan.preset
    H, W = p.height, p.width
    settings = capture_settings(plan.effects)
    config = event_config(settings)
    scene = _Scene(plan, settings["light"])
    ts = frame_timestamps_us(plan.length, p.fps)
    dt = int(round(1e6 / p.fps))
    R = p.render_rate
    event_every = R // p.event_rate
    n_exposure = max(1, int(round(settings["exposure"] * R)))
    noise_rng = plan.rng(SUB_VIDEO_NOISE)
    sim = None
    if with_events:
        ev_seed = int(plan.rng(SUB_EVENTS).integers(2**31 - 1))
        sim = EventSimulator(H, plan.strip_width, config, seed=ev_seed)
        t_first = int(ts[0]) - dt
        sim.add_frame(scene.luma(*scene.window(t_first)), t_first)

    frames = np.empty((plan.length, H, W, 3), np.uint8)
    parts: list[Events] = []
    t_prev = int(ts[0]) - dt
    for k in range(plan.length):
        t_k = int(ts[k])
        c0 = plan.crops[k]
        acc = np.zeros((H, W, 3), np.float32)
        interval: list[Events] = []
        for i in range(1, R + 1):
            is_event = sim is not None and i % event_every == 0
            in_exposure = i > R - n_exposure
            if not (is_event or in_exposure):
                continue
            t = t_prev + int(round(i * (t_k - t_prev) / R))
            a, win = scene.window(t)
            if in_exposure:
                acc += scene.crop(a, win, c0, W)
            if is_event:
                interval.append(sim.add_frame(scene.luma(a, win), t))
        # a slow shutter (exposure above one frame period) also integrates
        # sub-frames of earlier periods: t_prev, t_prev - dt / R, ...
        for j in range(n_exposure - R):
            t = t_prev - int(round(j * dt / R))
            a, win = scene.window(t)
            acc += scene.crop(a, win, c0, W)
        frames[k] = video_frame(acc / n_exposure, settings["exposure"],
                                settings["full_well"], settings["video_gain"],
                                plan.camera.read_noise, noise_rng)
        if sim is not None:
            parts.append(_crop_events(interval, c0, W, H))
        t_prev = t_k
    events = None
    if sim is not None:
        events = Events(np.concatenate([e.t for e in parts]), np.concatenate([e.x for e in parts]),
                        np.concatenate([e.y for e in parts]), np.concatenate([e.p for e in parts]),
                        W, H)
    return RenderedTracklet(plan=plan, frames=frames, timestamps_us=ts, events=events,
                            event_config=config)


def _crop_events(interval: list[Events], x0: int, width: int, height: int) -> Events:
    """Events of one frame interval inside that frame's crop, in crop coordinates."""
    t = np.concatenate([e.t for e in interval])
    x = np.concatenate([e.x for e in interval]).astype(np.int32)
    y = np.concatenate([e.y for e in interval])
    p = np.concatenate([e.p for e in interval])
    keep = (x >= x0) & (x < x0 + width)
    return Events(t[keep], (x[keep] - x0).astype(np.int16), y[keep], p[keep], width, height)
