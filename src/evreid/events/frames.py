"""Reading frame files for the simulator (grayscale, numerically ordered)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evreid.errors import EvreidError


def list_frame_files(folder: str | os.PathLike) -> tuple[str, ...]:
    """Image files of a folder in numeric order (``f2.png`` before ``f10.png``)."""
    from evreid.data.datasets.base import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise EvreidError(f"frame folder {folder} does not exist")
    files = list_images(folder)
    if not files:
        raise EvreidError(f"{folder}: no image files (.jpg, .jpeg, .png, .bmp)")
    return files


def read_frames(paths: Sequence[str | os.PathLike], color: bool = False) -> np.ndarray:
    """Stack frames as uint8 ``[N, H, W]`` luma (or ``[N, H, W, 3]`` RGB with ``color``).

    Luma is decoded by OpenCV (BT.601 weights, the same as the simulator's RGB
    path up to JPEG rounding). Every frame must have the first frame's size.
    """
    import cv2

    if not paths:
        raise EvreidError("no frames to read")
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    out = None
    for i, path in enumerate(paths):
        img = cv2.imread(str(path), flag)
        if img is None:
            raise EvreidError(f"cannot read image {path} (missing, truncated or not an image)")
        if color:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if out is None:
            out = np.empty((len(paths),) + img.shape, np.uint8)
        elif img.shape != out.shape[1:]:
            raise EvreidError(f"{path}: frame size {img.shape[1]}x{img.shape[0]} differs from "
                              f"the first frame's {out.shape[2]}x{out.shape[1]} ({paths[0]})")
        out[i] = img
    return out
