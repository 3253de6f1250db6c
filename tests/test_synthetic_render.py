"""Synthetic renderer, sensors and protocols: what the pictures and events must obey."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from evreid.data.synthetic.gait import Gait, walking_pose
from evreid.data.synthetic.identities import sample_identity
from evreid.data.synthetic.protocols import PRESETS, effects_for
from evreid.data.synthetic.renderer import Placement, clip_polygon, draw_person
from evreid.data.synthetic.sensors import linear_to_srgb, video_frame
from evreid.data.synthetic.tracklet import identity_of, plan_tracklet, render_tracklet
from evreid.errors import EvreidError

TINY = PRESETS["tiny"]
GAIT = Gait(cadence_hz=1.9, step_length=0.42, arm_swing=0.3, bounce=0.01, knee_flex=1.0,
            lean=0.05)


def test_gait_keeps_a_foot_on_the_ground_and_repeats():
    for phase in np.linspace(0, 2 * math.pi, 13):
        pose = walking_pose(GAIT, float(phase))
        lowest = min(float(leg[2:, 1].min()) for leg in pose.legs.values())
        assert 0.0 <= lowest <= 0.05
        assert 0.4 < pose.pelvis[1] < 0.6 and pose.head[1] > 0.85
    a, b = walking_pose(GAIT, 0.7), walking_pose(GAIT, 0.7 + 2 * math.pi)
    assert np.allclose(a.legs["near"], b.legs["near"]) and np.allclose(a.arms["far"], b.arms["far"])


def test_feet_spread_about_one_step():
    spreads = []
    for phase in np.linspace(0, 2 * math.pi, 64):
        pose = walking_pose(GAIT, float(phase))
        spreads.append(abs(pose.legs["near"][2, 0] - pose.legs["far"][2, 0]))
    assert 0.6 * GAIT.step_length < max(spreads) < 1.4 * GAIT.step_length


def test_legs_swing_in_anti_phase_and_arms_oppose_legs():
    pose = walking_pose(GAIT, math.pi / 2)  # near thigh fully forward
    assert pose.legs["near"][1, 0] > pose.pelvis[0] > pose.legs["far"][1, 0]
    assert pose.arms["near"][1, 0] < pose.arms["far"][1, 0]


def test_facing_left_mirrors_the_figure():
    ident = sample_identity(1, np.random.default_rng(11))
    # a shoulder bag is drawn in front or behind by design; compare without one
    ident = dataclasses.replace(ident, clothing=dataclasses.replace(ident.clothing, bag="none"))
    pose = walking_pose(ident.gait, 1.0)
    right = np.zeros((128, 64, 3), np.uint8)
    left = np.zeros((128, 64, 3), np.uint8)
    draw_person(right, ident, pose, Placement(32.0, 120.0, 100.0, +1))
    draw_person(left, ident, pose, Placement(32.0, 120.0, 100.0, -1))
    mask_r, mask_l = right.any(axis=2), left.any(axis=2)
    assert mask_r.sum() > 600
    # same silhouette mirrored about x = 32 (pixel c <-> 64 - c), up to anti-aliased edges
    mirrored = mask_l[:, ::-1][:, :-1]
    iou = (mask_r[:, 1:] & mirrored).sum() / (mask_r[:, 1:] | mirrored).sum()
    assert iou > 0.9
    assert not np.array_equal(mask_r, mask_l)


def test_clip_polygon_to_box():
    square = np.array([(0, 0), (2, 0), (2, 2), (0, 2)], float)
    clipped = clip_polygon(square, (0.5, -1.0), (1.0, 5.0))
    assert np.isclose(np.ptp(clipped[:, 0]), 0.5) and np.isclose(np.ptp(clipped[:, 1]), 2.0)
    assert len(clip_polygon(square, (3.0, 3.0), (4.0, 4.0))) == 0


def test_palette_is_shared_between_identities():
    people = [identity_of(0, pid) for pid in range(1, 65)]
    pairs = {(p.clothing.top_name, p.clothing.bottom_name) for p in people}
    assert len(pairs) < 40           # many identities share their colour pair
    assert len({p.clothing for p in people}) == 64   # but no two are dressed identically


def test_video_frame_noise_and_gamma():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 0.2, np.float32)
    clean = video_frame(flat, 0.25, 6000.0, 1.0, 0.002, rng)
    assert abs(clean.mean() - linear_to_srgb(np.float32(0.2)) * 255) < 1.0
    assert 0.5 < clean.std() < 4.0
    dark = video_frame(flat * 0.08, 0.5, 6000.0, 1.6, 0.006, rng)
    assert dark.mean() < clean.mean() / 2
    assert dark.std() / dark.mean() > clean.std() / clean.mean()


def render(protocol: str, pid: int = 2, cam: int = 0, events: bool = True):
    return render_tracklet(plan_tracklet(7, TINY, pid, cam, protocol), with_events=events)


def test_protocols_share_people_trajectories_and_crops():
    plans = {p: plan_tracklet(7, TINY, 3, 1, p) for p in ("clean", "blur", "lowlight",
                                                          "occlusion", "mixed")}
    ref = plans["clean"]
    for plan in plans.values():
        assert (plan.identity, plan.camera, plan.length, plan.crops, plan.phase0) == (
            ref.identity, ref.camera, ref.length, ref.crops, ref.phase0)
    assert plans["occlusion"].occluders or plans["occlusion"].bystanders
    assert not ref.occluders and not ref.bystanders


def test_blur_changes_frames_not_events():
    clean, blur = render("clean"), render("blur")
    assert clean.events.equals(blur.events)
    assert not np.array_equal(clean.frames, blur.frames)

    def sharpness(frames):
        return float(np.abs(np.diff(frames.astype(np.float32), axis=2)).mean())

    assert sharpness(blur.frames) < sharpness(clean.frames)


def test_lowlight_darkens_both_sensors_and_occluders_reach_both():
    clean, dark = render("clean"), render("lowlight")
    assert dark.frames.mean() < 0.5 * clean.frames.mean()
    assert dark.event_config.shot_noise_rate_hz > 0 and clean.event_config.shot_noise_rate_hz == 0
    occluded = render("occlusion")
    assert not clean.events.equals(occluded.events)
    assert not np.array_equal(clean.frames, occluded.frames)


def test_events_only_where_the_walker_is():
    """A static camera: with noise-free events, every event lies within the walker's reach."""
    out = render("clean", pid=5, cam=1)
    plan = out.plan
    dt = int(round(1e6 / TINY.fps))
    reach = 0.55 * plan.stature_px + 3
    for k in range(plan.length):
        window = out.events.window(int(out.timestamps_us[k]) - dt, int(out.timestamps_us[k]))
        if not len(window):
            continue
        strip_x = window.x.astype(float) + plan.crops[k]
        t = window.t * 1e-6
        walker_x = plan.x_start + plan.velocity * t
        assert np.all(np.abs(strip_x - walker_x) <= reach)


def test_mixed_needs_draws_and_unknown_names_fail():
    with pytest.raises(EvreidError, match="mixed"):
        effects_for("mixed")
    assert effects_for("mixed", [0.1, 0.9, 0.2]).names() == ["blur", "occlusion"]
    with pytest.raises(EvreidError, match="protocol"):
        effects_for("foggy")
