"""The one way pictures are written: PNG-encoded with OpenCV, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evreid.errors import EvreidError
from evreid.utils import atomic_open


def write_png(path: str | os.PathLike, image: np.ndarray, rgb: bool = False) -> Path:
    """Write a uint8 image (BGR, or RGB with ``rgb=True``), maximally compressed;
    a failure leaves no file behind."""
    import cv2

    pixels = np.ascontiguousarray(image[..., ::-1] if rgb else image)
    ok, buffer = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise EvreidError(f"{path}: PNG encoding failed")
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.tobytes())
    return path
