"""Drawing: a posed identity (and static occluders) onto an sRGB albedo canvas.

Why anti-aliased polygons at sub-pixel precision (OpenCV ``LINE_AA`` with
``shift=4``, 1/16 pixel): at the high internal rate a walker moves less than a
pixel between sub-frames, and an event sensor responds to exactly those small
partial-coverage changes at edges. Integer-snapped drawing would make edges
jump a whole pixel at a time and turn smooth motion into bursts of events.

The canvas holds albedo (the colour of the material, unlit) as uint8 sRGB;
lighting and the two sensors are applied afterwards in linear intensity (see
``capture``). Far-side limbs are drawn first and darker (self-shadowing), then
the trunk, then the near-side limbs, so that limbs occlude each other as they
swing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from evreid.data.synthetic.gait import NECK, TORSO, Pose, walking_pose
from evreid.data.synthetic.identities import Identity

_SHIFT = 4
_SCALE = float(1 << _SHIFT)
FAR_SHADE = 0.7

# limb thickness (diameter) in body heights for limb_scale = 1
THIGH_W = 0.078
SHANK_W = 0.058
FOOT_W = 0.042
UPPER_ARM_W = 0.052
FOREARM_W = 0.042


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(round(c * factor)) for c in colour)  # type: ignore[return-value]


def _fill(canvas: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Fill a convex polygon given in float pixel coordinates, anti-aliased."""
    pts = np.round(np.asarray(points, np.float64) * _SCALE).astype(np.int32)
    cv2.fillConvexPoly(canvas, pts, colour, lineType=cv2.LINE_AA, shift=_SHIFT)


_CAP = np.linspace(-math.pi / 2, math.pi / 2, 7)


def capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> np.ndarray:
    """Convex outline of a limb: two half-discs (radii r0, r1) joined by tangents."""
    d = p1 - p0
    length = float(np.hypot(d[0], d[1]))
    d = np.array([1.0, 0.0]) if length < 1e-9 else d / length
    n = np.array([-d[1], d[0]])
    cos, sin = np.cos(_CAP)[:, None], np.sin(_CAP)[:, None]
    end = p1 + r1 * (cos * d + sin * n)
    start = p0 - r0 * (cos * d + sin * n)
    return np.concatenate([end, start])


def clip_polygon(poly: np.ndarray, lo: tuple[float, float],
                 hi: tuple[float, float]) -> np.ndarray:
    """Clip a convex polygon to the box lo <= (u, v) <= hi (Sutherland-Hodgman)."""
    out = [tuple(p) for p in poly]
    for axis in (0, 1):
        for bound, keep_above in ((lo[axis], True), (hi[axis], False)):
            if not out:
                return np.zeros((0, 2))
            src, out = out, []
            for i, cur in enumerate(src):
                prev = src[i - 1]
                cur_in = cur[axis] >= bound if keep_above else cur[axis] <= bound
                prev_in = prev[axis] >= bound if keep_above else prev[axis] <= bound
                if cur_in != prev_in:
                    t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                    out.append(tuple(prev[k] + t * (cur[k] - prev[k]) for k in (0, 1)))
                if cur_in:
                    out.append(cur)
    return np.array(out, np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class Placement:
    """Where a figure stands in the image: foot point, stature in pixels, facing."""

    x: float           # pixel column of the pelvis
    ground: float      # pixel row of the ground line
    height: float      # pixels per body height (stature already applied)
    direction: int     # +1 faces right, -1 faces left

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, np.float64)
        return np.stack([self.x + self.direction * pts[..., 0] * self.height,
                         self.ground - pts[..., 1] * self.height], axis=-1)


def _trunk_frame(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (up the trunk, forward across it) in body coordinates."""
    axis = pose.neck - pose.pelvis
    axis = axis / np.linalg.norm(axis)
    return axis, np.array([axis[1], -axis[0]])


Part = tuple[np.ndarray, tuple[int, int, int]]


def _trunk_parts(ident: Identity, up: np.ndarray, fwd: np.ndarray) -> list[Part]:
    """Trousers' waist, then the top and its pattern, relative to the pelvis.

    The pattern is built in trunk coordinates (u up, v forward) by clipping the
    trunk outline, so stripes and checks follow the body's lean.
    """
    b, c = ident.build, ident.clothing
    top_u = TORSO + 0.3 * NECK
    outline_uv = np.array([(-0.05, -b.hip_width / 2), (-0.05, b.hip_width / 2),
                           (0.72 * TORSO, b.shoulder_width / 2),
                           (top_u, 0.38 * b.shoulder_width),
                           (top_u, -0.42 * b.shoulder_width),
                           (0.72 * TORSO, -b.shoulder_width / 2)])

    def body(uv: np.ndarray) -> np.ndarray:
        return uv[:, :1] * up + uv[:, 1:] * fwd

    waist, wide = 0.12, 1.0
    parts: list[Part] = [
        (body(clip_polygon(outline_uv, (-1.0, -wide), (waist, wide))), c.bottom),
        (body(clip_polygon(outline_uv, (waist, -wide), (1.0, wide))), c.top)]
    half = c.pattern_scale / 2
    if c.pattern in ("stripes", "checks"):
        for u in np.arange(waist + half, top_u, 2 * half):
            band = clip_polygon(outline_uv, (u, -wide), (min(u + half, top_u), wide))
            if len(band) >= 3:
                parts.append((body(band), c.pattern_colour))
    if c.pattern == "checks":
        # a plaid: vertical bands crossing the horizontal ones
        for v in np.arange(-b.shoulder_width / 2 + half / 2, b.shoulder_width / 2, 2 * half):
            band = clip_polygon(outline_uv, (waist, v), (top_u, v + half * 0.8))
            if len(band) >= 3:
                parts.append((body(band), c.pattern_colour))
    elif c.pattern == "logo":
        centre = np.array([[0.62 * TORSO, 0.18 * b.shoulder_width]])
        angles = np.linspace(0, 2 * math.pi, 10, endpoint=False)
        disc = centre + 0.3 * b.shoulder_width * np.stack([np.cos(angles), np.sin(angles)], 1)
        parts.append((body(disc), c.pattern_colour))
    return parts


def _head_parts(ident: Identity, neck: np.ndarray, head: np.ndarray) -> list[Part]:
    """Neck, long hair behind, the head, then the cap of hair (relative to the pelvis)."""
    b, c = ident.build, ident.clothing
    r = b.head_radius
    angles = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    parts: list[Part] = [(capsule(neck, head, 0.35 * r, 0.35 * r), c.skin)]
    if c.hair_style == "long":
        parts.append((capsule(head + np.array([-0.55 * r, 0.1 * r]),
                              head + np.array([-0.75 * r, -1.9 * r]), 0.62 * r, 0.5 * r),
                      c.hair))
    parts.append((head + r * np.stack([np.cos(angles), np.sin(angles)], 1), c.skin))
    if c.hair_style != "bald":
        # the back and top of the head, cut by a slanted hairline
        arc = np.linspace(math.radians(50), math.radians(235), 12)
        parts.append((head + 1.06 * r * np.stack([np.cos(arc), np.sin(arc)], 1), c.hair))
    return parts


def _bag_parts(ident: Identity, shoulder: np.ndarray, up: np.ndarray,
               fwd: np.ndarray) -> list[Part]:
    """A backpack on the back, or a shoulder bag hanging at the hip from a strap."""
    b, c = ident.build, ident.clothing
    if c.bag == "backpack":
        base = 0.16 * up - (b.shoulder_width / 2 - 0.01) * fwd
        corners = np.array([base, base + 0.2 * up, base + 0.2 * up - 0.09 * fwd,
                            base - 0.08 * fwd + 0.02 * up])
        return [(corners, c.bag_colour)]
    centre = 0.02 * up - 0.02 * fwd
    box = np.array([centre + dx * fwd + dy * up for dx, dy in ((-0.07, -0.06), (0.06, -0.06),
                                                                (0.06, 0.05), (-0.07, 0.05))])
    return [(capsule(shoulder, centre, 0.008, 0.008), _shade(c.bag_colour, 0.8)),
            (box, c.bag_colour)]


@functools.lru_cache(maxsize=256)
def rigid_parts(ident: Identity) -> dict[str, list[Part]]:
    """Polygons that move rigidly with the pelvis, computed once per identity.

    The trunk keeps a constant lean and the head and shoulders ride on it, so
    only the pelvis translation changes between sub-frames; precomputing the
    clipped pattern polygons keeps the per-sub-frame cost to a few fills.
    """
    pose = walking_pose(ident.gait, 0.0)
    up, fwd = _trunk_frame(pose)
    rel = pose.pelvis
    return {"upper": _trunk_parts(ident, up, fwd)
            + _head_parts(ident, pose.neck - rel, pose.head - rel),
            "bag": ([] if ident.clothing.bag == "none"
                    else _bag_parts(ident, pose.arms["near"][0] - rel, up, fwd))}


class _Shapes:
    """Polygons of one figure in body coordinates, in drawing order.

    Limbs are queued as capsule specs and outlined together in one vectorised
    call; the whole figure is then mapped to pixels in one affine transform
    (a uniform scale, so discs stay discs) and filled polygon by polygon. Per
    sub-frame this keeps the NumPy call count small, which is what the cost is.
    """

    def __init__(self) -> None:
        self.items: list[tuple[np.ndarray | None, tuple[int, int, int]]] = []
        self.caps: list[tuple[int, np.ndarray, np.ndarray, float, float]] = []

    def polygon(self, poly: np.ndarray, colour: tuple[int, int, int]) -> None:
        self.items.append((poly, colour))

    def capsule(self, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float,
                colour: tuple[int, int, int]) -> None:
        self.caps.append((len(self.items), p0, p1, r0, r1))
        self.items.append((None, colour))

    def draw(self, canvas: np.ndarray, place: Placement) -> None:
        polys = [poly for poly, _ in self.items]
        if self.caps:
            idx, p0, p1, r0, r1 = zip(*self.caps, strict=True)
            outlines = capsules(np.array(p0), np.array(p1), np.array(r0), np.array(r1))
            for i, outline in zip(idx, outlines, strict=True):
                polys[i] = outline
        sizes = np.cumsum([len(poly) for poly in polys])[:-1]
        pixels = place.to_pixels(np.concatenate(polys))
        fixed = np.round(pixels * _SCALE).astype(np.int32)
        for pts, (_, colour) in zip(np.split(fixed, sizes), self.items, strict=True):
            cv2.fillConvexPoly(canvas, pts, colour, lineType=cv2.LINE_AA, shift=_SHIFT)


def capsules(p0: np.ndarray, p1: np.ndarray, r0: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """Outlines [N, 14, 2] of N capsules at once (see :func:`capsule`)."""
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])[:, None]
    d = np.where(length > 1e-9, d / np.maximum(length, 1e-12), np.array([1.0, 0.0]))
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    cos, sin = np.cos(_CAP)[None, :, None], np.sin(_CAP)[None, :, None]
    rim = cos * d[:, None, :] + sin * n[:, None, :]
    end = p1[:, None, :] + r1[:, None, None] * rim
    start = p0[:, None, :] - r0[:, None, None] * rim
    return np.concatenate([end, start], axis=1)


@functools.lru_cache(maxsize=256)
def _colours(ident: Identity) -> dict[str, tuple[int, int, int]]:
    """Every colour of the figure, plain and far-side shaded (``far_*``)."""
    c = ident.clothing
    base = {"top": c.top, "bottom": c.bottom, "skin": c.skin, "shoes": c.shoes,
            "sleeve": c.top if c.long_sleeves else c.skin, "bag": c.bag_colour,
            "strap": _shade(c.bag_colour, 0.8)}
    return {**base, **{f"far_{k}": _shade(v, FAR_SHADE) for k, v in base.items()}}


def _leg(shapes: _Shapes, ident: Identity, leg: np.ndarray, far: bool) -> None:
    c, s = ident.clothing, ident.build.limb_scale
    col = _colours(ident)
    pre = "far_" if far else ""
    hip, knee, ankle, toe = leg
    thigh_r, shank_r, foot_r = THIGH_W * s / 2, SHANK_W * s / 2, FOOT_W / 2
    bare_shank = c.bottom_type in ("shorts", "skirt")
    shapes.capsule(knee, ankle, shank_r, 0.8 * shank_r,
                   col[pre + ("skin" if bare_shank else "bottom")])
    shapes.capsule(ankle, toe, foot_r, 0.8 * foot_r, col[pre + "shoes"])
    if c.bottom_type == "shorts":
        knee_cover = hip + 0.75 * (knee - hip)
        shapes.capsule(knee_cover, knee, shank_r, shank_r, col[pre + "skin"])
        shapes.capsule(hip, knee_cover, thigh_r, thigh_r * 0.95, col[pre + "bottom"])
    elif c.bottom_type == "skirt":
        shapes.capsule(hip, knee, thigh_r * 0.95, shank_r, col[pre + "skin"])
    else:
        shapes.capsule(hip, knee, thigh_r, shank_r * 1.05, col[pre + "bottom"])


def _arm(shapes: _Shapes, ident: Identity, arm: np.ndarray, far: bool) -> None:
    s = ident.build.limb_scale
    col = _colours(ident)
    pre = "far_" if far else ""
    shoulder, elbow, hand = arm
    upper_r, fore_r = UPPER_ARM_W * s / 2, FOREARM_W * s / 2
    shapes.capsule(elbow, hand, fore_r, 0.85 * fore_r, col[pre + "sleeve"])
    shapes.capsule(hand - 0.15 * (hand - elbow), hand, 0.9 * fore_r, 0.9 * fore_r,
                   col[pre + "skin"])
    shapes.capsule(shoulder, elbow, upper_r, fore_r, col[pre + "top"])


def _skirt(shapes: _Shapes, ident: Identity, pose: Pose) -> None:
    b = ident.build
    up, fwd = _trunk_frame(pose)
    hem = [leg[0] + 0.72 * (leg[1] - leg[0]) for leg in pose.legs.values()]
    pts = [pose.pelvis + 0.12 * up + side * b.hip_width / 2 * fwd for side in (-1, 1)]
    pts += [h + side * 0.06 * fwd for h in hem for side in (-1, 1)]
    hull = cv2.convexHull(np.array(pts, np.float32))[:, 0].astype(np.float64)
    shapes.polygon(hull, ident.clothing.bottom)


def _parts(shapes: _Shapes, parts: list[Part], pelvis: np.ndarray, far: bool = False) -> None:
    for poly, colour in parts:
        shapes.polygon(poly + pelvis, _shade(colour, FAR_SHADE) if far else colour)


def draw_person(canvas: np.ndarray, ident: Identity, pose: Pose, place: Placement) -> None:
    """Draw ``ident`` in ``pose`` onto ``canvas`` (uint8 sRGB [H, W, 3], modified in place).

    Facing right (``direction`` +1) shows the person's right side, so a bag on
    the right shoulder is in front of the trunk and one on the left is hidden
    behind it; facing left, the other way round.
    """
    c = ident.clothing
    parts = rigid_parts(ident)
    near_side = "right" if place.direction > 0 else "left"
    bag_near = c.bag == f"shoulder_{near_side}"
    bag_far = c.bag.startswith("shoulder") and not bag_near
    shapes = _Shapes()
    if bag_far:
        _parts(shapes, parts["bag"], pose.pelvis, far=True)
    _arm(shapes, ident, pose.arms["far"], far=True)
    _leg(shapes, ident, pose.legs["far"], far=True)
    if c.bag == "backpack":
        _parts(shapes, parts["bag"], pose.pelvis)
    _leg(shapes, ident, pose.legs["near"], far=False)
    if c.bottom_type == "skirt":
        _skirt(shapes, ident, pose)
    _parts(shapes, parts["upper"], pose.pelvis)
    if bag_near:
        _parts(shapes, parts["bag"], pose.pelvis)
    _arm(shapes, ident, pose.arms["near"], far=False)
    shapes.draw(canvas, place)


# -- static occluders ----------------------------------------------------------------
@dataclass(frozen=True)
class Occluder:
    """A static object in front of the walker: a pole or a box (bin, bench, barrier).

    Coordinates are strip pixels; standing bystanders are drawn with
    :func:`draw_person` instead.
    """

    kind: str
    x0: float
    x1: float
    top: float
    bottom: float
    colour: tuple[int, int, int]


def draw_occluder(canvas: np.ndarray, occ: Occluder) -> None:
    rect = np.array([(occ.x0, occ.top), (occ.x1, occ.top), (occ.x1, occ.bottom),
                     (occ.x0, occ.bottom)])
    _fill(canvas, rect, occ.colour)
    if occ.kind == "pole":
        # a darker side face gives the pole some volume
        side = rect.copy()
        side[[0, 3], 0] = occ.x0 + 0.65 * (occ.x1 - occ.x0)
        _fill(canvas, side, _shade(occ.colour, 0.7))
    else:
        lid = np.array([(occ.x0, occ.top), (occ.x1, occ.top),
                        (occ.x1, occ.top + 0.12 * (occ.bottom - occ.top)),
                        (occ.x0, occ.top + 0.12 * (occ.bottom - occ.top))])
        _fill(canvas, lid, _shade(occ.colour, 1.25 if max(occ.colour) < 200 else 0.8))
