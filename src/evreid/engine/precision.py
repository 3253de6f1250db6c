"""Mixed precision: which dtype autocast uses on CUDA (``SOLVER.AMP`` /
``SOLVER.AMP_DTYPE``), shared by training and feature extraction.

float16 needs loss scaling (the trainer's GradScaler); bfloat16 has float32's
range and needs none, on GPUs that have it (Ampere and newer).
"""

from __future__ import annotations

import torch

from evreid.errors import EvreidError

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def amp_dtype(cfg) -> torch.dtype:
    """The autocast dtype named by ``SOLVER.AMP_DTYPE``."""
    name = cfg.SOLVER.AMP_DTYPE
    if name not in AMP_DTYPES:
        raise EvreidError(f"SOLVER.AMP_DTYPE {name!r} is not one of {', '.join(AMP_DTYPES)}")
    return AMP_DTYPES[name]


def needs_loss_scaling(dtype: torch.dtype) -> bool:
    return dtype == torch.float16
