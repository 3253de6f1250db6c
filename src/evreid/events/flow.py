"""Optical-flow sub-frames between two video frames (``upsample="flow"``).

A DVS sees motion continuously; a video samples it. With flow upsampling the
simulator inserts frames interpolated along the motion, so that an edge moves
at most ``flow_pixel_step`` pixels from one sample to the next
(docs/SIMULATOR.md, "Upsampling").
"""

from __future__ import annotations

import math

import numpy as np

from evreid.events.config import SimulatorConfig


def flow_subframes(luma0: np.ndarray, luma1: np.ndarray, t0: int, t1: int,
                   config: SimulatorConfig) -> list[tuple[int, np.ndarray]]:
    """Intermediate (timestamp, luma) frames between two frames by optical flow.

    Farneback flow both ways; the frame at fraction a is the blend
    ``(1-a) * I0(x - a F01(x)) + a * I1(x - (1-a) F10(x))``, enough sub-frames
    that the largest motion per sub-frame is ``flow_pixel_step`` pixels.
    """
    import cv2

    g0 = np.clip(luma0, 0, 255).astype(np.uint8)
    g1 = np.clip(luma1, 0, 255).astype(np.uint8)
    args = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
    f01 = cv2.calcOpticalFlowFarneback(g0, g1, *args)
    f10 = cv2.calcOpticalFlowFarneback(g1, g0, *args)
    motion = max(float(np.abs(f01).max(initial=0)), float(np.abs(f10).max(initial=0)))
    m = int(min(math.ceil(motion / config.flow_pixel_step), config.flow_max_substeps, t1 - t0))
    if m <= 1:
        return []
    h, w = g0.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    src0, src1 = luma0.astype(np.float32), luma1.astype(np.float32)
    out = []
    for j in range(1, m):
        a = j / m
        w0 = cv2.remap(src0, gx - a * f01[..., 0], gy - a * f01[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        w1 = cv2.remap(src1, gx - (1 - a) * f10[..., 0], gy - (1 - a) * f10[..., 1],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = (1 - a) * w0.astype(np.float64) + a * w1.astype(np.float64)
        out.append((t0 + int(round(a * (t1 - t0))), np.maximum(frame, 0.0)))
    return out
