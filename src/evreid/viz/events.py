"""Event frames as pictures: red = ON, blue = OFF, next to the video frames.

Why: the quickest check that simulated (or real) events are right is to look
at them beside the frames they came from -- edges of the moving person should
light up, ON where it gets brighter, OFF where it gets darker, and a static
background should stay quiet apart from noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evreid.errors import EvreidError
from evreid.events.representation import to_count_frames
from evreid.events.types import Events

ON_RGB = np.array([220, 20, 20], np.float64)
OFF_RGB = np.array([20, 60, 230], np.float64)


def render_event_frame(ev: Events, t_start_us: int, t_end_us: int,
                       background: str = "white", saturation: float = 2.0) -> np.ndarray:
    """RGB uint8 [H, W, 3] of the events in (t_start_us, t_end_us].

    A pixel's colour moves from the background to red with its ON count and to
    blue with its OFF count, full colour at ``saturation`` events.
    """
    if background not in ("white", "black"):
        raise EvreidError(f"background must be 'white' or 'black', got {background!r}")
    counts = to_count_frames(ev, t_start_us, t_end_us, 1, ev.height, ev.width)[0]
    w_on = np.clip(counts[0] / saturation, 0, 1)[..., None]
    w_off = np.clip(counts[1] / saturation, 0, 1)[..., None]
    total = np.maximum(w_on + w_off, 1e-9)
    colour = (w_on * ON_RGB + w_off * OFF_RGB) / total
    alpha = np.maximum(w_on, w_off)
    base = np.full(3, 255.0 if background == "white" else 0.0)
    img = base * (1 - alpha) + colour * alpha
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def event_grid(rows: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
               scale: float = 1.0, gap: int = 4) -> np.ndarray:
    """Stack (frames, event images) pairs: per tracklet one row of frames, one of events.

    All images are RGB uint8 of one size; returns the RGB grid.
    """
    if not rows:
        raise EvreidError("nothing to draw")
    tiles = []
    for frames, events in rows:
        for line in (frames, events):
            if not len(line):     # an event-only row (a recording, an event-only dataset)
                continue
            line = [_resize(np.asarray(img), scale) for img in line]
            h = line[0].shape[0]
            sep = np.full((h, gap, 3), 255, np.uint8)
            parts = []
            for img in line:
                parts.extend([img, sep])
            tiles.append(np.concatenate(parts[:-1], axis=1))
    width = max(t.shape[1] for t in tiles)
    out = []
    for i, tile in enumerate(tiles):
        if tile.shape[1] < width:
            pad = np.full((tile.shape[0], width - tile.shape[1], 3), 255, np.uint8)
            tile = np.concatenate([tile, pad], axis=1)
        out.append(tile)
        sep_h = gap * 3 if i % 2 else gap
        if i < len(tiles) - 1:
            out.append(np.full((sep_h, width, 3), 255, np.uint8))
    return np.concatenate(out, axis=0)


def tracklet_panel(frames_rgb: np.ndarray, ev: Events, frame_times_us: np.ndarray,
                   indices: Sequence[int], background: str = "white"
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames at ``indices`` and the event image of each one's window (t_{k-1}, t_k]."""
    frames, images = [], []
    for k in indices:
        start = int(frame_times_us[k - 1]) if k > 0 else int(frame_times_us[0])
        frames.append(frames_rgb[k])
        images.append(render_event_frame(ev, start, int(frame_times_us[k]), background))
    return frames, images
