"""Rendered event images as an event representation (datasets released as pictures).

Some event re-ID datasets (EvReID / TriPro-ReID) publish each event window as
a rendered picture, not a stream: events drawn in two colours (commonly red
ON / blue OFF, or white ON / black OFF) over a plain background. The stream
cannot be recovered, but the picture is an image-like event representation:
per pixel, how strongly and with which polarity it fired.

Decoding rule: the background is the image's median colour; a pixel's
activity is its largest per-channel distance from it (divided by 255;
distances below ``floor`` -- JPEG noise -- count as none). Its polarity is the
sign of red minus blue relative to the background when the picture is
coloured (mean |R - B| of active pixels above ``floor``), else the sign of its
brightness change (brighter = ON). The result is float32 [2, H, W]
(channel 0 ON, 1 OFF), the layout of the event tensors, split evenly over
``bins`` so a clip's totals do not depend on the bin count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evreid.errors import EvreidError


def event_image_channels(rgb: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """[2, H, W] float32 ON / OFF activity in [0, 1] of an RGB uint8 [H, W, 3] picture."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise EvreidError(f"event image must be RGB [H, W, 3], got shape {rgb.shape}")
    img = rgb.astype(np.float32)
    diff = img - np.median(img.reshape(-1, 3), axis=0)
    activity = np.abs(diff).max(axis=2) / 255.0
    activity[activity < floor] = 0.0
    active = activity > 0
    red_blue = diff[..., 0] - diff[..., 2]
    coloured = active.any() and float(np.abs(red_blue[active]).mean()) > floor * 255.0
    sign = red_blue if coloured else diff.mean(axis=2)
    on = np.where(sign >= 0, activity, 0.0)
    off = np.where(sign < 0, activity, 0.0)
    return np.stack([on, off]).astype(np.float32)


def event_image_bins(paths: Sequence[str], bins: int) -> np.ndarray:
    """[len(paths), bins, 2, H, W] float32 from event pictures (resized to the first's size)."""
    import cv2

    from evreid.data.clips import read_image

    if bins < 1:
        raise EvreidError(f"bins must be >= 1, got {bins}")
    out = []
    for path in paths:
        image = read_image(path)
        if out and image.shape[:2] != out[0].shape[1:]:
            image = cv2.resize(image, (out[0].shape[2], out[0].shape[1]),
                               interpolation=cv2.INTER_NEAREST)
        out.append(event_image_channels(image))
    maps = np.stack(out)                                   # [n, 2, H, W]
    return np.repeat(maps[:, None] / bins, bins, axis=1).astype(np.float32)
