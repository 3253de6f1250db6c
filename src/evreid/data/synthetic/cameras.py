"""Cameras: a fixed random draw of scene, lighting and framing per camera view.

A camera is static (the event sensor beside it sees only what moves); the
re-ID "frames" are crops that a tracker cuts around the walker from the
camera's wide view. Why per-camera draws matter: illumination gain and colour
cast change how the same clothes look from one camera to the next (the main
difficulty of real cross-camera re-ID, and what defeats a colour histogram),
and the walking direction decides which side of the body (and of any bag) is
visible.

The background is a textured, static panorama (wall with panels and windows
over a paved ground) wide enough for any tracklet; it is regenerated from the
camera's seed wherever it is needed, so workers need not share it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

WALL_COLOURS = ((150, 140, 128), (118, 122, 128), (170, 160, 140), (128, 108, 96),
                (96, 104, 100), (180, 176, 168))
GROUND_COLOURS = ((120, 118, 112), (98, 96, 94), (140, 130, 112), (86, 90, 86))


@dataclass(frozen=True)
class Camera:
    """One view: lighting, framing, direction, noise and the seed of its background."""

    index: int
    name: str
    gain: float                       # scene illumination relative to the average camera
    cast: tuple[float, float, float]  # per-channel (R, G, B) multipliers of the light
    shade_top: float                  # light at the top of the view relative to the bottom
    person_scale: float               # average stature as a fraction of the crop height
    foot_row: float                   # ground row of the feet as a fraction of the height
    direction: int                    # +1 walks left to right, -1 right to left
    read_noise: float                 # video sensor read noise (fraction of full scale)
    horizon: float                    # wall / ground boundary as a fraction of the height
    background_seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def camera_name(index: int) -> str:
    """cam_a, cam_b, ... (the PRID-2011 naming)."""
    return "cam_" + chr(ord("a") + index)


def sample_camera(index: int, rng: np.random.Generator) -> Camera:
    """Draw one camera; casts are relative, so the mean of the three channels is 1."""
    cast = np.exp(rng.normal(0.0, 0.13, size=3))
    cast = cast / cast.mean()
    return Camera(
        index=index, name=camera_name(index),
        gain=float(rng.uniform(0.75, 1.2)),
        cast=(float(cast[0]), float(cast[1]), float(cast[2])),
        shade_top=float(rng.uniform(0.75, 1.25)),
        person_scale=float(rng.uniform(0.74, 0.84)),
        foot_row=float(rng.uniform(0.93, 0.97)),
        # alternate so that two-camera datasets show both sides of every person
        direction=1 if index % 2 == 0 else -1,
        read_noise=float(rng.uniform(0.002, 0.008)),
        horizon=float(rng.uniform(0.55, 0.72)),
        background_seed=int(rng.integers(2**31 - 1)),
    )


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: random values on a coarse grid, bicubic upsampled."""
    coarse = rng.uniform(-1.0, 1.0, size=(max(2, height // cell + 2), max(2, width // cell + 2)))
    big = cv2.resize(coarse.astype(np.float32), (width + 2 * cell, height + 2 * cell),
                     interpolation=cv2.INTER_CUBIC)
    return big[cell:cell + height, cell:cell + width]


def render_background(camera: Camera, height: int, width: int) -> np.ndarray:
    """The camera's static panorama, uint8 sRGB [height, width, 3] (albedo, unlit)."""
    rng = np.random.default_rng(camera.background_seed)
    wall = np.array(WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))], np.float32)
    ground = np.array(GROUND_COLOURS[int(rng.integers(len(GROUND_COLOURS)))], np.float32)
    horizon = int(round(camera.horizon * height))
    img = np.empty((height, width, 3), np.float32)
    img[:horizon] = wall
    img[horizon:] = ground
    # wall: vertical panels of slightly different tone, a plinth, some windows
    x = 0
    while x < width:
        panel_w = int(rng.integers(height // 3, height))
        img[:horizon, x:x + panel_w] *= float(rng.uniform(0.88, 1.12))
        img[:horizon, x:x + 1] *= 0.7
        if rng.random() < 0.55:
            wx0 = x + panel_w // 5
            wx1 = x + panel_w - panel_w // 5
            wy0 = int(horizon * rng.uniform(0.08, 0.25))
            wy1 = int(horizon * rng.uniform(0.5, 0.72))
            glass = np.array((60, 72, 84), np.float32) * float(rng.uniform(0.7, 1.3))
            img[wy0:wy1, wx0:wx1] = glass
            img[wy0:wy1, (wx0 + wx1) // 2:(wx0 + wx1) // 2 + 1] = wall * 0.6
        x += panel_w
    plinth = max(1, height // 40)
    img[horizon - plinth:horizon] *= 0.6
    # ground: paving joints, denser towards the bottom like a receding plane
    rows = horizon + np.cumsum(np.geomspace(2, max(3, height // 10), 12)).astype(int)
    for r in rows[rows < height]:
        img[r:r + 1, :, :] *= 0.82
    step = max(4, height // 6)
    for c in range(int(rng.integers(step)), width, step):
        img[horizon:, c:c + 1] *= 0.85
    # stains and weathering (low frequency), grain (high frequency)
    img *= (1.0 + 0.12 * _smooth_noise(rng, height, width, max(4, height // 6)))[..., None]
    img += rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)
