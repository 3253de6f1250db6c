"""CMC curves of several runs in one PNG, drawn with OpenCV (no plotting library)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from evreid.viz.png import write_png

# BGR, colour-blind friendly (Okabe-Ito)
COLOURS = [(178, 114, 0), (0, 94, 213), (115, 158, 0), (167, 121, 204), (0, 159, 230),
           (233, 180, 86), (66, 228, 240), (0, 0, 0)]


def plot_cmc(curves: Mapping[str, Sequence[float]], path: str | os.PathLike,
             max_rank: int = 20, title: str = "CMC", size: tuple[int, int] = (480, 640)) -> Path:
    """One line per run: matching rate (%) at rank 1..max_rank."""
    import cv2

    height, width = size
    left, right, top, bottom = 70, 170, 40, 50
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    plot_w, plot_h = width - left - right, height - top - bottom
    values = {name: np.asarray(c, dtype=float)[:max_rank] * (100 if max(c) <= 1.0 else 1)
              for name, c in curves.items()}
    lowest = min(float(v.min()) for v in values.values()) if values else 0.0
    y_min = max(0.0, np.floor(lowest / 10) * 10)

    def to_px(rank: float, value: float) -> tuple[int, int]:
        x = left + (rank - 1) / max(max_rank - 1, 1) * plot_w
        y = top + (1 - (value - y_min) / max(100 - y_min, 1e-9)) * plot_h
        return int(round(x)), int(round(y))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for tick in np.arange(y_min, 100.5, 10 if 100 - y_min > 40 else 5):
        _, y = to_px(1, tick)
        cv2.line(image, (left, y), (left + plot_w, y), (225, 225, 225), 1)
        cv2.putText(image, f"{tick:.0f}", (left - 40, y + 5), font, 0.45, (60, 60, 60), 1)
    for rank in sorted({1, 5, 10, 15, 20, max_rank}):
        if rank <= max_rank:
            x, _ = to_px(rank, y_min)
            cv2.line(image, (x, top), (x, top + plot_h), (225, 225, 225), 1)
            cv2.putText(image, str(rank), (x - 6, top + plot_h + 20), font, 0.45,
                        (60, 60, 60), 1)
    cv2.rectangle(image, (left, top), (left + plot_w, top + plot_h), (0, 0, 0), 1)
    cv2.putText(image, title, (left, 25), font, 0.6, (0, 0, 0), 1)
    cv2.putText(image, "rank", (left + plot_w // 2 - 15, height - 12), font, 0.5, (0, 0, 0), 1)
    cv2.putText(image, "%", (15, top + plot_h // 2), font, 0.5, (0, 0, 0), 1)
    for i, (name, curve) in enumerate(values.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = np.array([to_px(r + 1, v) for r, v in enumerate(curve)], dtype=np.int32)
        cv2.polylines(image, [points], False, colour, 2, cv2.LINE_AA)
        for point in points:
            cv2.circle(image, tuple(int(c) for c in point), 3, colour, -1, cv2.LINE_AA)
        y = top + 20 + 22 * i
        cv2.line(image, (width - right + 12, y - 4), (width - right + 32, y - 4), colour, 2)
        label = f"{name} {curve[0]:.1f}"
        cv2.putText(image, label[:22], (width - right + 38, y), font, 0.42, (0, 0, 0), 1)
    return write_png(path, image)
