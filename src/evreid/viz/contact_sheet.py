"""Contact sheet of a synthetic dataset: identities across cameras, frames beside their events.

One row per identity; for every camera, a few frames spread over the
tracklet, each followed by the events of its frame interval (red = ON,
blue = OFF). It is the quickest way to check that walkers look like
walkers, that the same person is recognisable across cameras and that the
events sit exactly on the moving edges of the frame beside them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from evreid.data.clips import read_image
from evreid.data.datasets.base import list_images
from evreid.data.datasets.synthetic import CARD_NAME, EVENTS_DIR, read_card
from evreid.errors import EvreidError
from evreid.viz.png import write_png

_LABEL_H = 14
_GAP = 2


def _label(width: int, text: str) -> np.ndarray:
    strip = np.full((_LABEL_H, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (2, _LABEL_H - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1,
                cv2.LINE_AA)
    return strip


def _cells(root: Path, camera: str, person: str, frames: int, fps: float) -> list[np.ndarray]:
    """[frame, events] image pairs at ``frames`` evenly spaced times of one tracklet."""
    from evreid.data.synthetic.events_io import load, polarity_image

    paths = list_images(root / camera / person)
    if not paths:
        raise EvreidError(f"contact sheet: no frames in {root / camera / person}")
    event_path = root / EVENTS_DIR / camera / f"{person}.evs"
    events = load(event_path, len(paths), fps) if event_path.is_file() else None
    out = []
    for k in np.linspace(0, len(paths) - 1, frames).round().astype(int):
        out.append(read_image(paths[k]))
        if events is not None:
            out.append(polarity_image(events.frame_events(int(k))))
    return out


def render_contact_sheet(root: str | Path, out_png: str | Path, num_ids: int = 6,
                         frames: int = 3, first_pid: int = 1, palette: bool = False) -> Path:
    """Write a PNG contact sheet of ``num_ids`` identities of the synthetic folder ``root``.

    ``palette`` stores a 256-colour PNG (about a third of the size; for documentation).
    """
    root = Path(root)
    card = read_card(root / CARD_NAME)
    cameras = [c["name"] for c in card["cameras"]]
    persons = [f"person_{pid:04d}" for pid in range(first_pid, first_pid + num_ids)]
    rows = []
    for person in persons:
        blocks = []
        for camera in cameras:
            cells = _cells(root, camera, person, frames, float(card["preset"]["fps"]))
            gap = np.full((cells[0].shape[0], _GAP, 3), 255, np.uint8)
            block = np.concatenate([x for c in cells for x in (c, gap)][:-1], axis=1)
            blocks.append(block)
            blocks.append(np.full((block.shape[0], 3 * _GAP, 3), 255, np.uint8))
        row = np.concatenate(blocks[:-1], axis=1)
        rows.append(_label(row.shape[1], person))
        rows.append(row)
    width = rows[1].shape[1]
    block_w = (width - 3 * _GAP * (len(cameras) - 1)) // len(cameras)
    header = np.concatenate(
        [x for cam in cameras for x in (_label(block_w, f"{cam} (frame | events: red ON, "
                                                        f"blue OFF)"),
                                         np.full((_LABEL_H, 3 * _GAP, 3), 255, np.uint8))][:-1],
        axis=1)
    title = _label(width, f"synthetic {card['preset']['name']} / {card['protocol']} / "
                          f"seed {card['seed']}")
    sheet = np.concatenate([title, header, *rows], axis=0)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    from evreid.utils import atomic_open

    if palette:
        from PIL import Image

        image = Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
        with atomic_open(out_png, "wb") as handle:
            image.save(handle, format="PNG", optimize=True)
        return out_png
    return write_png(out_png, sheet, rgb=True)
