"""The embedded synthetic benchmark: procedural walkers seen by a video camera and an event sensor.

Modules, one idea each: ``gait`` (walking kinematics), ``identities`` and
``cameras`` (the fixed random draws), ``renderer`` (drawing), ``sensors``
(video camera and event sensor models), ``tracklet`` (one walker through one
view), ``protocols`` (presets and degradations), ``generator`` (folders,
splits, card, cache), ``baseline`` (the colour-histogram reference).
See docs/SYNTHETIC.md for the fairness rules and the measured numbers.
"""

from evreid.data.synthetic.generator import (
    GenerationReport,
    ensure_synthetic,
    generate_synthetic,
    synthetic_folder,
)
from evreid.data.synthetic.protocols import PRESETS, PROTOCOLS, Preset, get_preset

__all__ = ["PRESETS", "PROTOCOLS", "GenerationReport", "Preset", "ensure_synthetic",
           "generate_synthetic", "get_preset", "synthetic_folder"]
