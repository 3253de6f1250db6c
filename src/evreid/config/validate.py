"""Range checks of config values, run when a config is built (``load_config``).

Types are already checked by the merge (an integer key takes only integers);
here every value is checked against what the code can use, so a bad value is
one line naming the key and the value before any folder is made or any data is
read -- not an optimizer ValueError, an IndexError or a DataLoader-worker
traceback later. Choices that belong to a module (samplers, distances, event
representations, ...) are read from that module, so a new choice needs no
change here. Keys this module does not know (added elsewhere) are left to
their own code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from evreid.errors import EvreidError

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def positive(x: Any) -> bool:
    return _number(x) and x > 0


def non_negative(x: Any) -> bool:
    return _number(x) and x >= 0


def probability(x: Any) -> bool:
    return _number(x) and 0 <= x <= 1


def at_least(low: int) -> Callable[[Any], bool]:
    return lambda x: _int(x) and x >= low


def size2(x: Any) -> bool:
    return isinstance(x, list) and len(x) == 2 and all(_int(v) and v > 0 for v in x)


def numbers(n: int, check: Callable[[Any], bool] = _number) -> Callable[[Any], bool]:
    return lambda x: isinstance(x, list) and len(x) == n and all(check(v) for v in x)


def one_of(*choices: Any, case: bool = True) -> Callable[[Any], bool]:
    if case:
        return lambda x: x in choices
    return lambda x: isinstance(x, str) and x.lower() in {c.lower() for c in choices}


def _steps(x: Any) -> bool:
    return (isinstance(x, list) and all(_int(v) and v >= 1 for v in x)
            and x == sorted(x))


def _rules() -> list[tuple[str, Callable[[Any], bool], str]]:
    from evreid.data.sampling import CLIP_SAMPLERS
    from evreid.events.representation import NORMALIZE, REPRESENTATIONS
    from evreid.metrics.distance import DISTANCES
    from evreid.metrics.rank import PROTOCOLS

    def choice(values: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
        return one_of(*values), f"one of {', '.join(values)}"

    train_samplers = tuple(s for s in CLIP_SAMPLERS if s != "dense")
    return [
        ("DATASETS.NAME", lambda x: isinstance(x, str) and x.strip() != "", "a dataset name"),
        ("DATASETS.SPLIT_ID", at_least(0), "an integer >= 0"),
        ("DATASETS.PROTOCOL", *choice(PROTOCOLS)),
        ("DATASETS.MIN_SEQ_LEN", at_least(0), "an integer >= 0"),
        ("INPUT.SIZE_TRAIN", size2, "[height, width], two integers > 0"),
        ("INPUT.SIZE_TEST", size2, "[height, width], two integers > 0"),
        ("INPUT.SEQ_LEN", at_least(1), "an integer >= 1"),
        ("INPUT.PROB_FLIP", probability, "a probability in [0, 1]"),
        ("INPUT.PADDING", at_least(0), "an integer >= 0"),
        ("INPUT.RE_PROB", probability, "a probability in [0, 1]"),
        ("INPUT.PIXEL_MEAN", numbers(3), "three numbers (R, G, B)"),
        ("INPUT.PIXEL_STD", numbers(3, positive), "three numbers > 0 (R, G, B)"),
        ("EVENTS.REPRESENTATION", *choice(REPRESENTATIONS)),
        ("EVENTS.BINS", at_least(1), "an integer >= 1"),
        ("EVENTS.NORMALIZE", *choice(NORMALIZE)),
        ("EVENTS.CLIP", non_negative, "a number >= 0 (0 = no clipping)"),
        ("DATALOADER.NUM_WORKERS", at_least(0), "an integer >= 0"),
        ("DATALOADER.NUM_INSTANCE", at_least(1), "an integer >= 1"),
        ("DATALOADER.IMS_PER_BATCH", at_least(1), "an integer >= 1"),
        ("DATALOADER.TRAIN_SAMPLER", *choice(train_samplers)),
        ("MODEL.ARCH", lambda x: isinstance(x, str) and x.strip() != "", "a model name"),
        ("MODEL.DEVICE", lambda x: isinstance(x, str) and bool(DEVICE.match(x)),
         "auto, cpu, cuda, cuda:N or mps"),
        ("MODEL.LAST_STRIDE", one_of(1, 2), "1 or 2"),
        ("MODEL.WIDTH_MULT", positive, "a number > 0"),
        ("MODEL.FEAT_DIM", at_least(1), "an integer >= 1"),
        ("MODEL.SNN.LAYERS", at_least(1), "an integer >= 1"),
        ("MODEL.SNN.WIDTH", at_least(1), "an integer >= 1"),
        ("MODEL.SNN.DECAY", probability, "a number in [0, 1]"),
        ("MODEL.SNN.THRESHOLD", positive, "a number > 0"),
        ("MODEL.SNN.ALPHA", positive, "a number > 0"),
        ("MODEL.DEFORM.MAPPINGS", at_least(0), "an integer >= 0"),
        ("MODEL.DEFORM.CHANNELS", at_least(1), "an integer >= 1"),
        ("MODEL.DEFORM.RADIUS", at_least(0), "an integer >= 0"),
        ("MODEL.ALIGN.HEADS", at_least(1), "an integer >= 1"),
        ("MODEL.ALIGN.POINTS", at_least(1), "an integer >= 1"),
        ("MODEL.ALIGN.EMBED_DIM", at_least(1), "an integer >= 1"),
        ("MODEL.ALIGN.HIDDEN", at_least(1), "an integer >= 1"),
        ("MODEL.ALIGN.HOMOGRAPHY", numbers(9), "nine numbers (a row-major 3x3 matrix)"),
        ("MODEL.AGG.LEVELS", at_least(0), "an integer >= 0"),
        ("MODEL.AGG.REDUCTION", at_least(1), "an integer >= 1"),
        ("SOLVER.OPTIMIZER", one_of("adam", "sgd", case=False), "Adam or SGD"),
        ("SOLVER.BASE_LR", positive, "a number > 0"),
        ("SOLVER.WEIGHT_DECAY", non_negative, "a number >= 0"),
        ("SOLVER.MAX_EPOCHS", at_least(1), "an integer >= 1"),
        ("SOLVER.WARMUP_EPOCHS", at_least(0), "an integer >= 0"),
        ("SOLVER.WARMUP_FACTOR", lambda x: _number(x) and 0 < x <= 1, "a number in (0, 1]"),
        ("SOLVER.STEPS", _steps, "a list of epochs >= 1 in increasing order"),
        ("SOLVER.GAMMA", positive, "a number > 0"),
        ("SOLVER.MARGIN", non_negative, "a number >= 0"),
        ("SOLVER.TRIPLET_DISTANCE", *choice(DISTANCES)),
        ("SOLVER.LABEL_SMOOTH", lambda x: _number(x) and 0 <= x < 1, "a number in [0, 1)"),
        ("SOLVER.LEVEL_REDUCTION", one_of("mean", "sum"), "mean or sum"),
        ("SOLVER.GRAD_CLIP", non_negative, "a number >= 0 (0 = no clipping)"),
        ("SOLVER.AMP_DTYPE", one_of("float16", "bfloat16"), "float16 or bfloat16"),
        ("SOLVER.CHECKPOINT_PERIOD", at_least(0), "an integer >= 0 (0 = none)"),
        ("SOLVER.EVAL_PERIOD", at_least(1), "an integer >= 1"),
        ("SOLVER.LOG_PERIOD", at_least(1), "an integer >= 1"),
        ("TEST.IMS_PER_BATCH", at_least(1), "an integer >= 1"),
        ("TEST.SAMPLER", *choice(tuple(s for s in CLIP_SAMPLERS if s != "random_interval"))),
        ("TEST.DENSE_MAX_CLIPS", at_least(1), "an integer >= 1"),
        ("TEST.DISTANCE", *choice(DISTANCES)),
        ("TEST.MAX_RANK", at_least(1), "an integer >= 1"),
        ("OUTPUT_DIR", lambda x: isinstance(x, str) and x.strip() != "", "a folder path"),
        ("SEED", at_least(0), "an integer >= 0"),
    ]


def validate_config(cfg: Any) -> Any:
    """Raise one EvreidError for the first out-of-range value; return ``cfg``."""
    for key, check, wanted in _rules():
        try:
            value = cfg.get_key(key)
        except (KeyError, AttributeError):
            continue          # a key this evreid does not have: nothing to check
        if not check(value):
            raise EvreidError(f"config key {key} must be {wanted}; got {value!r}")
    _check_together(cfg)
    return cfg


def _check_together(cfg: Any) -> None:
    """Values that are fine alone but not with each other."""
    d = cfg.DATALOADER
    if d.IMS_PER_BATCH % d.NUM_INSTANCE:
        raise EvreidError(f"config key DATALOADER.IMS_PER_BATCH ({d.IMS_PER_BATCH}) must be a "
                          f"multiple of DATALOADER.NUM_INSTANCE ({d.NUM_INSTANCE})")
    align = cfg.MODEL.ALIGN
    if align.EMBED_DIM % align.HEADS:
        raise EvreidError(f"config key MODEL.ALIGN.EMBED_DIM ({align.EMBED_DIM}) must be a "
                          f"multiple of MODEL.ALIGN.HEADS ({align.HEADS})")
