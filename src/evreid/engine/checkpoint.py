"""Checkpoints: written atomically, resumable, checked against the config.

A checkpoint holds the model, optimiser, scheduler, AMP scaler, epoch, step,
best metric, every RNG state and the resolved config, so a run killed at any
moment resumes from its last completed epoch and reproduces the uninterrupted
run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evreid import __version__
from evreid.errors import EvreidError
from evreid.utils import atomic_open

LAST = "last.pth"
BEST = "best.pth"


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        # a run resumed on a machine with fewer GPUs than it was saved on: the devices
        # that exist take their saved states (set_rng_state_all would ask for the others)
        saved = states["cuda"]
        for index in range(min(len(saved), torch.cuda.device_count())):
            torch.cuda.set_rng_state(saved[index], index)


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """torch.save to a temp file, then rename: a kill never leaves half a checkpoint."""
    path = Path(path)
    state.setdefault("evreid_version", __version__)
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)
    return path


def load_checkpoint(path: str | os.PathLike, arch: str | None = None) -> dict[str, Any]:
    """Load a checkpoint; with ``arch``, refuse one written for another architecture."""
    path = Path(path)
    if not path.is_file():
        raise EvreidError(f"checkpoint not found: {path}")
    try:
        # our own files hold numpy / python RNG states, hence weights_only=False
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, unpickling errors, ...
        raise EvreidError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise EvreidError(f"{path} is not an evreid checkpoint (no 'model' entry)")
    if arch is not None and state.get("arch") not in (None, arch):
        raise EvreidError(f"checkpoint {path} is for MODEL.ARCH {state['arch']!r}, but the "
                          f"config says {arch!r}")
    return state


def load_model_weights(model: torch.nn.Module, state: dict[str, Any], source: str) -> None:
    """Strict load with a readable report instead of PyTorch's wall of keys."""
    weights = state["model"]
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    mismatched = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or mismatched:
        def show(keys: list[str]) -> str:
            return f"{len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
        raise EvreidError(f"checkpoint {source} does not fit the model: missing {show(missing)}"
                          f", unexpected {show(unexpected)}, shape mismatch {show(mismatched)}")
    model.load_state_dict(weights)
