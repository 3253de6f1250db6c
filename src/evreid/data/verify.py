"""Checks of a built dataset's files, so bad data fails in `evreid datasets`, not in
the middle of a training (or never, when the bad frame is never sampled).

``missing_frames`` stats every frame file (cheap: MARS' 1.2 M files in seconds);
``verify_dataset(decode=True)`` also proves every frame is a whole image (a
truncated JPEG decodes to a partly grey picture with only a warning from
OpenCV) and checks each tracklet's event source against its frames
(:mod:`evreid.events.checks`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evreid.errors import EvreidError

# what a complete file ends with
_TRAILERS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND\xaeB`\x82"}


def _tracklets(dataset: Any) -> Iterator[Any]:
    seen: set[str] = set()
    for split in (dataset.train, dataset.query, dataset.gallery):
        for t in split:
            ident = t.key or (t.frames[0] if t.frames else "")
            if ident not in seen:
                seen.add(ident)
                yield t


def _name(t: Any) -> str:
    return t.key or (str(Path(t.frames[0]).parent) if t.frames else "?")


def missing_frames(dataset: Any) -> list[tuple[str, str]]:
    """(tracklet, frame path) of every frame file that does not exist."""
    return [(_name(t), f) for t in _tracklets(dataset) for f in t.frames
            if not os.path.isfile(f)]


def incomplete_image(path: str) -> str | None:
    """Why ``path`` is not a whole image, or None."""
    import cv2

    suffix = Path(path).suffix.lower()
    trailer = _TRAILERS.get(suffix)
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return "empty file"
            if trailer is not None:
                handle.seek(max(0, size - 16))
                if trailer not in handle.read():
                    return "truncated (no end marker)"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if cv2.imread(path, cv2.IMREAD_UNCHANGED) is None:
        return "not a readable image"
    return None


def verify_dataset(dataset: Any, decode: bool = False,
                   progress: Iterable | None = None) -> dict[str, int]:
    """Raise one EvreidError for the first problem found; return what was checked.

    Always: every frame file exists. With ``decode``: every frame is a whole
    image, and every tracklet with an event file passes the event-source checks.
    """
    missing = missing_frames(dataset)
    if missing:
        tracklet, path = missing[0]
        raise EvreidError(f"{dataset.name}: {len(missing)} frame file(s) listed by the dataset "
                          f"are missing (first: {path}, tracklet {tracklet})")
    counts = {"tracklets": 0, "frames": 0, "event_sources": 0}
    tracklets = list(_tracklets(dataset))
    counts["tracklets"] = len(tracklets)
    counts["frames"] = sum(len(t.frames) for t in tracklets)
    if not decode:
        return counts
    for t in tracklets:
        for path in t.frames:
            problem = incomplete_image(path)
            if problem:
                raise EvreidError(f"{dataset.name}: frame {path} of tracklet {_name(t)} is "
                                  f"{problem}")
        source = str(t.events) if t.events else ""
        if t.frames and source and not source.endswith(".evs") and not Path(source).is_dir():
            from evreid.events import load_tracklet_events
            from evreid.events.checks import check_tracklet_events

            check_tracklet_events(load_tracklet_events(source, len(t), t.fps), t)
            counts["event_sources"] += 1
    return counts
