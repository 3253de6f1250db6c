"""Identities: one fixed random draw of body build, clothing and gait per person.

Why a small shared palette: re-identification by clothing colour alone must
not be trivial. Tops come from 9 colours and bottoms from 5, with the
frequencies skewed towards dark and neutral colours as in street clothing, so
that many identities share their colour pair and a colour histogram alone
confuses them; pattern, sleeves, trouser type, shoes, hair, bag, build and gait
then tell them apart.

Colours are sRGB triples (the albedo of the material); the renderer converts
them to linear intensity before lighting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from evreid.data.synthetic.gait import Gait

RGB = tuple[int, int, int]

TOP_COLOURS: dict[str, RGB] = {
    "black": (38, 38, 42), "white": (222, 222, 215), "grey": (125, 127, 130),
    "navy": (38, 48, 96), "red": (165, 42, 44), "blue": (56, 96, 168),
    "green": (58, 112, 68), "yellow": (208, 176, 64), "beige": (188, 166, 128),
}
TOP_WEIGHTS = (0.2, 0.16, 0.14, 0.12, 0.08, 0.09, 0.07, 0.05, 0.09)
BOTTOM_COLOURS: dict[str, RGB] = {
    "denim": (52, 72, 112), "black": (30, 30, 34), "grey": (98, 98, 104),
    "khaki": (156, 138, 98), "brown": (96, 70, 50),
}
BOTTOM_WEIGHTS = (0.34, 0.3, 0.14, 0.14, 0.08)
SHOE_COLOURS: dict[str, RGB] = {
    "black": (25, 25, 28), "white": (228, 228, 226), "brown": (92, 60, 38),
    "grey": (120, 120, 124),
}
HAIR_COLOURS: dict[str, RGB] = {
    "black": (22, 20, 20), "dark_brown": (58, 40, 28), "brown": (104, 72, 44),
    "blonde": (196, 164, 104), "grey": (150, 148, 146),
}
SKIN_TONES: tuple[RGB, ...] = ((236, 198, 170), (208, 160, 124), (160, 112, 78),
                               (102, 70, 50))
BAG_COLOURS: dict[str, RGB] = {
    "black": (32, 32, 36), "brown": (110, 72, 40), "navy": (40, 48, 90), "red": (150, 40, 44),
}

PATTERNS = ("plain", "stripes", "checks", "logo")
PATTERN_WEIGHTS = (0.4, 0.2, 0.2, 0.2)
BOTTOM_TYPES = ("trousers", "shorts", "skirt")
BOTTOM_TYPE_WEIGHTS = (0.66, 0.19, 0.15)
BAGS = ("none", "shoulder_left", "shoulder_right", "backpack")
BAG_WEIGHTS = (0.5, 0.15, 0.15, 0.2)
HAIR_STYLES = ("short", "long", "bald")
HAIR_STYLE_WEIGHTS = (0.6, 0.32, 0.08)


@dataclass(frozen=True)
class Build:
    """Body proportions in body heights; ``stature`` scales the whole figure."""

    stature: float
    shoulder_width: float   # trunk thickness at the chest (side view)
    hip_width: float        # trunk thickness at the hips
    head_radius: float
    limb_scale: float       # thickness of arms and legs relative to the average


@dataclass(frozen=True)
class Clothing:
    top: RGB
    top_name: str
    pattern: str
    pattern_colour: RGB
    pattern_scale: float     # stripe / check period in body heights
    long_sleeves: bool
    bottom: RGB
    bottom_name: str
    bottom_type: str
    shoes: RGB
    hair: RGB
    hair_style: str
    skin: RGB
    bag: str
    bag_colour: RGB


@dataclass(frozen=True)
class Identity:
    """One person: a fixed draw of build, clothing and gait."""

    pid: int
    build: Build
    clothing: Clothing
    gait: Gait

    def to_dict(self) -> dict:
        return asdict(self)


def _pick(rng: np.random.Generator, table: dict[str, RGB],
          weights: tuple[float, ...] | None = None) -> tuple[str, RGB]:
    names = list(table)
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    name = names[int(rng.choice(len(names), p=p))]
    return name, table[name]


def _choice(rng: np.random.Generator, options: tuple[str, ...], weights: tuple[float, ...]) -> str:
    p = np.asarray(weights) / np.sum(weights)
    return options[int(rng.choice(len(options), p=p))]


def sample_build(rng: np.random.Generator) -> Build:
    return Build(stature=float(rng.uniform(0.9, 1.06)),
                 shoulder_width=float(rng.uniform(0.1, 0.155)),
                 hip_width=float(rng.uniform(0.095, 0.145)),
                 head_radius=float(rng.uniform(0.054, 0.07)),
                 limb_scale=float(rng.uniform(0.82, 1.22)))


def sample_clothing(rng: np.random.Generator) -> Clothing:
    top_name, top = _pick(rng, TOP_COLOURS, TOP_WEIGHTS)
    pattern = _choice(rng, PATTERNS, PATTERN_WEIGHTS)
    others = {k: v for k, v in TOP_COLOURS.items() if k != top_name}
    _, pattern_colour = _pick(rng, others)
    bottom_name, bottom = _pick(rng, BOTTOM_COLOURS, BOTTOM_WEIGHTS)
    _, shoes = _pick(rng, SHOE_COLOURS)
    _, hair = _pick(rng, HAIR_COLOURS)
    bag = _choice(rng, BAGS, BAG_WEIGHTS)
    _, bag_colour = _pick(rng, BAG_COLOURS)
    return Clothing(
        top=top, top_name=top_name, pattern=pattern, pattern_colour=pattern_colour,
        pattern_scale=float(rng.uniform(0.04, 0.075)),
        long_sleeves=bool(rng.random() < 0.55),
        bottom=bottom, bottom_name=bottom_name,
        bottom_type=_choice(rng, BOTTOM_TYPES, BOTTOM_TYPE_WEIGHTS),
        shoes=shoes, hair=hair, hair_style=_choice(rng, HAIR_STYLES, HAIR_STYLE_WEIGHTS),
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        bag=bag, bag_colour=bag_colour)


def sample_gait(rng: np.random.Generator) -> Gait:
    return Gait(cadence_hz=float(rng.uniform(1.6, 2.2)),
                step_length=float(rng.uniform(0.34, 0.46)),
                arm_swing=float(rng.uniform(0.1, 0.55)),
                bounce=float(rng.uniform(0.0, 0.02)),
                knee_flex=float(rng.uniform(0.75, 1.15)),
                lean=float(rng.uniform(0.0, 0.12)))


def sample_identity(pid: int, rng: np.random.Generator) -> Identity:
    """Draw one identity; the draw order is fixed so that a seed names the person."""
    return Identity(pid=pid, build=sample_build(rng), clothing=sample_clothing(rng),
                    gait=sample_gait(rng))
