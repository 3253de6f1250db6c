"""Event frames as pictures: red = ON, blue = OFF, next to the video frames.

Why: the quickest check that simulated (or real) events are right is to look
at them beside the frames they came from -- edges of the moving person should
light up, ON where it gets brighter, OFF where it gets darker, and a static
background should stay quiet apart from noise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from evreid.errors import EvreidError
from evreid.events.representation import to_count_frames
from evreid.events.types import Events

if TYPE_CHECKING:
    from evreid.events.config import SimulatorConfig

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


# --- whole pictures: what `evreid viz events` draws ----------------------------------
#: one tracklet to draw: (name, frame paths, fps, event source or None, simulator seed)
TrackletToDraw = tuple[str, list, float, object, int]


def folder_tracklet(frames_dir: str | os.PathLike, fps: float, events: object = None,
                    seed: int = 0) -> TrackletToDraw:
    """A folder of frames (numeric order) with its event file, or none (simulated)."""
    from evreid.events.frames import list_frame_files

    return (str(frames_dir), list_frame_files(frames_dir), fps, events, seed)


def dataset_tracklets(name: str, root: str | os.PathLike, split: str = "query",
                      keys: Sequence[str] = (), count: int = 2, seed: int = 0
                      ) -> list[TrackletToDraw]:
    """The tracklets ``keys`` of a dataset, else the first ``count`` of ``split``; each
    simulated (when it has no events) with its own seed, as `evreid simulate` does."""
    from evreid.data import build_dataset
    from evreid.events.cache import tracklet_seed

    dataset = build_dataset(name, root)
    if keys:
        by_key = {t.key: t for t in list(dataset.train) + list(dataset.query)
                  + list(dataset.gallery)}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise EvreidError(f"unknown tracklet key(s) {', '.join(missing)} in {name}")
        chosen = [by_key[k] for k in keys]
    else:
        chosen = list(getattr(dataset, split))[:max(1, count)]
    return [(t.key, t.frames, t.fps, t.events, tracklet_seed(seed, t.key)) for t in chosen]


def recording_picture(path: str | os.PathLike, out: str | os.PathLike,
                      window_us: int = 10_000, num_frames: int = 8,
                      background: str = "white", scale: float = 1.0) -> dict:
    """Consecutive ``window_us`` windows of a recorded event file (streamed), no frames,
    as one PNG; returns {out, width, height, windows}."""
    from evreid.events.io import iter_events
    from evreid.viz.png import write_png

    images = []
    for window in iter_events(path, window_us):
        if len(images) == num_frames:
            break
        images.append(render_event_frame(window.events, window.start_us, window.end_us,
                                         background))
    image = event_grid([([], images)], scale=scale)
    written = write_png(out, image, rgb=True)
    return {"out": str(written), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "windows": len(images)}


def _event_only_row(name: str, source: object, num_frames: int, background: str
                    ) -> tuple[tuple[list, list[np.ndarray]], dict]:
    """An event-only tracklet (eventreid): its windows, no frames."""
    from evreid.events.io import read_events_with_meta
    from evreid.events.representation import frame_windows

    ev, meta = read_events_with_meta(source)
    windows = frame_windows(np.asarray(meta["frame_timestamps_us"]),
                            int(meta.get("first_window_us", 0)))[:num_frames]
    images = [render_event_frame(ev, int(a), int(b), background) for a, b in windows]
    return ([], images), {"tracklet": name, "events": str(source), "num_events": len(ev)}


def _frames_row(tracklet: TrackletToDraw, indices: list[int], preset: str,
                config: SimulatorConfig, background: str, align_time: bool
                ) -> tuple[tuple[list, list[np.ndarray]], dict]:
    from evreid.events.checks import align_time_base
    from evreid.events.frames import read_frames
    from evreid.events.io import read_events_with_meta
    from evreid.events.simulator import frame_timestamps_us, simulate

    name, paths, fps, source, seed = tracklet
    last = indices[-1] + 1
    frames = read_frames(paths[:last], color=True)
    times = frame_timestamps_us(last, fps)
    if source and not str(source).endswith((".npz", ".h5", ".hdf5", ".aedat", ".aedat4")):
        source = None   # per-frame .mat folders: simulate instead
    if source:
        ev, meta = read_events_with_meta(source)
        if "frame_timestamps_us" in meta:
            times = np.asarray(meta["frame_timestamps_us"])[:last]
        # a recording whose clock does not start with the frames drew blank rows
        ev = align_time_base(ev, times, int(meta.get("first_window_us", 0)), str(source),
                             align_time, "pass --align-time")
        origin = str(source)
    else:
        ev = simulate(read_frames(paths[:last]), times, config, seed=seed)
        origin = f"simulated ({preset}, seed {seed})"
    if (ev.height, ev.width) != frames.shape[1:3]:
        raise EvreidError(f"{name}: events are {ev.width}x{ev.height}, frames "
                          f"{frames.shape[2]}x{frames.shape[1]}")
    row = tracklet_panel(frames, ev, times, indices, background)
    return row, {"tracklet": name, "frames": indices, "events": origin, "num_events": len(ev)}


def tracklet_picture(tracklets: Sequence[TrackletToDraw], out: str | os.PathLike,
                     num_frames: int = 8, start: int = 1, stride: int = 1,
                     preset: str = "default", background: str = "white", scale: float = 1.0,
                     align_time: bool = False) -> dict:
    """Per tracklet a row of frames and below each frame the events of its interval
    (t_{k-1}, t_k]: from the tracklet's event file, else simulated (``preset``, its
    seed). One PNG; returns {out, width, height, bytes, tracklets: [...]}."""
    from evreid.events.config import SimulatorConfig
    from evreid.viz.png import write_png

    config = SimulatorConfig.preset(preset)     # an unknown preset fails before any reading
    rows, info = [], []
    for tracklet in tracklets:
        name, paths, _, source, _ = tracklet
        if not paths:
            row, entry = _event_only_row(name, source, num_frames, background)
        else:
            indices = list(range(start, len(paths), stride))[:num_frames]
            if not indices:
                raise EvreidError(f"{name}: only {len(paths)} frames, nothing from --start "
                                  f"{start}")
            row, entry = _frames_row(tracklet, indices, preset, config, background,
                                      align_time)
        rows.append(row)
        info.append(entry)
    image = event_grid(rows, scale=scale)
    written = write_png(out, image, rgb=True)
    return {"out": str(written), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "bytes": written.stat().st_size, "tracklets": info}
