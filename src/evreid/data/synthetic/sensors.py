"""The two sensors that look at the rendered scene: a video camera and an event pixel array.

Both see the same linear scene radiance (albedo x light), sampled at a high
internal rate. They differ in what they do with it:

* the video camera integrates radiance over its shutter (the average of the
  sub-frames inside the exposure window -- motion blur comes from this and
  nothing else), converts it to photo-electrons (Poisson shot noise), adds
  read noise, amplifies, gamma-encodes (sRGB) and quantises to 8 bits;
* the event sensor receives the noiseless luminance of every event sub-frame
  and runs the DVS pixel model (:mod:`evreid.events.simulator`) on it, with its
  own noise model. Video noise and quantisation never reach it: they happen
  in a different chip.
"""

from __future__ import annotations

import cv2
import numpy as np

#: uint8 sRGB albedo -> linear reflectance, as a lookup table
SRGB_TO_LINEAR = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                          ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4).astype(np.float32)
#: Rec. 601 luma weights, applied to linear RGB for the event sensor's luminance
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: exposure for which ``full_well`` photo-electrons give full scale
REFERENCE_EXPOSURE = 0.25


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """sRGB encoding of linear values clipped to [0, 1] (the camera's gamma curve)."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def video_frame(exposure_mean: np.ndarray, exposure: float, full_well: float, gain: float,
                read_noise: float, rng: np.random.Generator) -> np.ndarray:
    """One 8-bit frame from the mean linear radiance seen during the exposure.

    ``exposure`` is the shutter's duty cycle: a longer exposure collects more
    photo-electrons (less relative shot noise) while auto-exposure keeps the
    brightness, so only the noise and the blur change with it.
    """
    electrons_full_scale = np.float32(full_well * exposure / REFERENCE_EXPOSURE)
    electrons = np.clip(exposure_mean, 0.0, None) * electrons_full_scale
    # shot noise in its Gaussian limit (a pixel collects hundreds of electrons or
    # more even in the dark preset), then read noise; both in one draw of two planes
    draws = rng.standard_normal(size=(2, *electrons.shape), dtype=np.float32)
    signal = (electrons + np.sqrt(electrons) * draws[0]) / electrons_full_scale
    signal += np.float32(read_noise) * draws[1]
    encoded = linear_to_srgb(signal * np.float32(gain))
    return np.round(encoded * 255.0).astype(np.uint8)


def to_linear(albedo: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Linear radiance of a uint8 sRGB albedo image under ``light`` ([H, 1, 3] or scalar)."""
    return cv2.LUT(albedo, SRGB_TO_LINEAR) * light


def luminance(linear_rgb: np.ndarray) -> np.ndarray:
    """Linear luminance [H, W] (0..1 = 0..255 DN for the event simulator) of linear RGB."""
    return linear_rgb @ LUMA
