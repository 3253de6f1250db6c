"""Walking kinematics: the 2-D joint positions of a side-view walker at a gait phase.

Why an articulated model rather than a translating sprite: event cameras see
motion, so the events of a walker carry gait (cadence, stride, arm swing,
bounce) only if the limbs really swing. The model is the textbook sagittal
gait cycle reduced to a few sinusoids:

* thigh angle ``A_t sin(phase)``, with ``A_t`` set so that one step covers the
  identity's step length (``step = 2 * leg * sin(A_t)``);
* knee flexion is small in stance and peaks (~60 degrees) early in swing, when
  the thigh moves forward (``cos(phase) > 0``);
* arms swing in anti-phase with the leg on the same side, elbows flex a little;
* the pelvis is lowered until the lowest foot touches the ground, which gives
  the natural double-support dip, plus the identity's extra vertical bounce.

Units are body heights (stature = 1), x points in the walking direction and y
up from the ground under the pelvis. Segment proportions follow the usual
anthropometric fractions of stature (hip 0.53, knee 0.285, shoulder 0.82).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# fractions of stature (Drillis-Contini / Winter)
THIGH = 0.245
SHANK = 0.246
FOOT = 0.13
UPPER_ARM = 0.186
FOREARM = 0.146 + 0.05  # forearm plus the closed hand
TORSO = 0.29            # hip joint to shoulder joint
NECK = 0.05
SOLE = 0.012            # ankle height above the sole's bottom, beyond the shank


@dataclass(frozen=True)
class Gait:
    """How one identity walks (all angles in radians, lengths in body heights)."""

    cadence_hz: float      # steps per second (two steps = one gait cycle)
    step_length: float     # distance covered by one step
    arm_swing: float       # amplitude of the upper-arm angle
    bounce: float          # extra vertical pelvis oscillation (two per cycle)
    knee_flex: float       # peak knee flexion in swing
    lean: float            # forward trunk lean

    @property
    def speed(self) -> float:
        """Walking speed in body heights per second."""
        return self.step_length * self.cadence_hz

    @property
    def cycle_hz(self) -> float:
        return self.cadence_hz / 2.0


@dataclass(frozen=True)
class Pose:
    """Joint positions (x, y) in body heights; ``near`` / ``far`` are the two body sides.

    Each limb is a polyline: legs hip -> knee -> ankle -> toe, arms shoulder ->
    elbow -> hand. ``pelvis`` and ``neck`` bound the trunk, ``head`` is the
    head centre.
    """

    pelvis: np.ndarray
    neck: np.ndarray
    head: np.ndarray
    legs: dict[str, np.ndarray]
    arms: dict[str, np.ndarray]


def _segment(start: np.ndarray, length: float, angle: float) -> np.ndarray:
    """End point of a segment hanging from ``start`` rotated ``angle`` forward of straight down."""
    return start + length * np.array([math.sin(angle), -math.cos(angle)])


def walking_pose(gait: Gait, phase: float) -> Pose:
    """The pose at gait ``phase`` (radians; the near leg is vertical and swinging at 0)."""
    thigh_amp = math.asin(min(0.95, gait.step_length / (2.0 * (THIGH + SHANK))))
    legs: dict[str, np.ndarray] = {}
    arms: dict[str, np.ndarray] = {}
    hip_h = THIGH + SHANK + SOLE
    pelvis = np.array([0.0, hip_h])
    for side, offset in (("near", 0.0), ("far", math.pi)):
        ph = phase + offset
        thigh = thigh_amp * math.sin(ph)
        # knee flexes during swing (thigh moving forward), peaking early in swing
        flex = 0.08 + gait.knee_flex * max(0.0, math.cos(ph + 0.35)) ** 1.5
        knee = _segment(pelvis, THIGH, thigh)
        ankle = _segment(knee, SHANK, thigh - flex)
        # the foot stays roughly level in stance and points down at toe-off
        foot_angle = 0.6 * max(0.0, -(thigh - flex) - 0.1) * (1.0 if math.cos(ph) > 0 else 0.4)
        toe = ankle + FOOT * np.array([math.cos(foot_angle), -math.sin(foot_angle)])
        legs[side] = np.stack([pelvis, knee, ankle, toe])
    # drop the body until the lowest foot point is on the ground
    lowest = min(float(leg[2:, 1].min()) for leg in legs.values()) - SOLE
    drop = np.array([0.0, lowest - gait.bounce * math.cos(2.0 * phase)])
    pelvis = pelvis - drop
    legs = {side: leg - drop for side, leg in legs.items()}

    lean = np.array([math.sin(gait.lean), math.cos(gait.lean)])
    shoulder = pelvis + TORSO * lean
    neck = shoulder + NECK * lean
    head = neck + np.array([0.02, 0.065])
    for side, offset in (("near", math.pi), ("far", 0.0)):
        ph = phase + offset  # each arm swings with the opposite leg
        upper = gait.arm_swing * math.sin(ph) - 0.05
        elbow = _segment(shoulder, UPPER_ARM, upper)
        lower = upper + 0.25 + 0.5 * gait.arm_swing * max(0.0, math.sin(ph))
        hand = _segment(elbow, FOREARM, lower)
        arms[side] = np.stack([shoulder, elbow, hand])
    return Pose(pelvis=pelvis, neck=neck, head=head, legs=legs, arms=arms)


def standing_pose(lean: float = 0.02) -> Pose:
    """A still pose (both legs straight, arms down): used for standing bystanders."""
    still = Gait(cadence_hz=1.0, step_length=0.05, arm_swing=0.02, bounce=0.0,
                 knee_flex=0.0, lean=lean)
    return walking_pose(still, math.pi / 2)
