"""Checkpoints: plain data only, written atomically, resumable, checked against the config.

A checkpoint holds the model, optimiser, scheduler, AMP scaler, epoch, step,
best metric, every RNG state and the resolved config (as YAML text), so a run
killed at any moment resumes from its last completed epoch and reproduces the
uninterrupted run.

Everything in it is a tensor or plain Python data (dict, list, str, number), so
it is read with ``torch.load(weights_only=True)``: unpickling a downloaded file
can never run code. A file that needs more (an evreid checkpoint from before
format 2, or someone's pickle) is refused, unless the caller says it trusts the
file (``trust=True``, the commands' ``--trust-checkpoint``), in which case it is
unpickled fully and converted to the plain format in memory.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evreid import __version__
from evreid.errors import EvreidError
from evreid.utils import atomic_open, remove_stale_temps

LAST = "last.pth"
BEST = "best.pth"
# 2: RNG states as tensors / lists, config as YAML text; loadable with weights_only=True
FORMAT = 2


def rng_states() -> dict[str, Any]:
    """Every RNG state as tensors and plain data (no numpy arrays, no tuples of objects)."""
    version, words, gauss = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(words, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"name": str(name), "key": torch.from_numpy(key.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = list(torch.cuda.get_rng_state_all())
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    py = states["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["state"].tolist()), py["gauss"]))
    npy = states["numpy"]
    np.random.set_state((npy["name"], npy["key"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        # a run resumed on a machine with fewer GPUs than it was saved on: the devices
        # that exist take their saved states (set_rng_state_all would ask for the others)
        saved = states["cuda"]
        for index in range(min(len(saved), torch.cuda.device_count())):
            torch.cuda.set_rng_state(saved[index], index)


def _plain_rng(states: dict[str, Any]) -> dict[str, Any]:
    """Old (format 1) RNG states -- getstate() tuples and numpy arrays -- as format 2."""
    if isinstance(states.get("python"), dict):
        return states
    version, words, gauss = states["python"]
    name, key, pos, has_gauss, cached = states["numpy"]
    out = {"python": {"version": int(version), "state": torch.tensor(words, dtype=torch.int64),
                      "gauss": gauss},
           "numpy": {"name": str(name), "key": torch.from_numpy(np.asarray(key, np.int64)),
                     "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
           "torch": states["torch"]}
    if "cuda" in states:
        out["cuda"] = list(states["cuda"])
    return out


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """torch.save to a temp file, then rename: a kill never leaves half a checkpoint.

    Temp files of this name left by a killed save (SIGKILL skips the clean-up)
    are removed first. The state must be plain data; it is checked by loading
    nothing back, but ``torch.save`` of a non-plain object would make the file
    unreadable with weights_only, so callers keep to tensors, dicts, lists,
    strings and numbers.
    """
    path = Path(path)
    state.setdefault("evreid_version", __version__)
    state.setdefault("format", FORMAT)
    remove_stale_temps(path)
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)
    return path


def load_checkpoint(path: str | os.PathLike, arch: str | None = None,
                    trust: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; with ``arch``, refuse one written
    for another architecture. ``trust=True`` also accepts files that need full
    unpickling (old checkpoints), converting them to the plain format."""
    path = Path(path)
    if not path.is_file():
        raise EvreidError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, unpickling errors, ...
        if not trust or not _needs_full_unpickling(exc):
            if _needs_full_unpickling(exc):
                raise EvreidError(
                    f"checkpoint {path} holds objects other than tensors and plain data (an "
                    f"evreid checkpoint older than format {FORMAT}, or not an evreid "
                    f"checkpoint); refusing to unpickle it, which could run code. If you made "
                    f"it or trust its source, pass --trust-checkpoint (Python: trust=True)"
                ) from None
            text = str(exc).strip()
            if "zip archive" in text or isinstance(exc, EOFError):
                reason = "not a complete torch checkpoint (its zip archive is truncated or corrupt)"
            elif isinstance(exc, pickle.UnpicklingError):
                reason = "not a torch checkpoint (unreadable pickle data)"
            else:
                reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            raise EvreidError(f"cannot read checkpoint {path}: {reason}") from None
        state = _load_trusted(path)
    if not isinstance(state, dict) or "model" not in state:
        raise EvreidError(f"{path} is not an evreid checkpoint (no 'model' entry)")
    if arch is not None and state.get("arch") not in (None, arch):
        raise EvreidError(f"checkpoint {path} is for MODEL.ARCH {state['arch']!r}, but the "
                          f"config says {arch!r}")
    return state


def _needs_full_unpickling(exc: Exception) -> bool:
    """The file is a pickle that the weights-only unpickler refused (it names a global
    that is not plain data), as opposed to a file that is no checkpoint at all."""
    return "unsupported global" in str(exc).lower()


def _load_trusted(path: Path) -> dict[str, Any]:
    print(f"--trust-checkpoint: unpickling {path} with weights_only=False (any code it holds "
          f"runs now) and converting it to checkpoint format {FORMAT} in memory",
          file=sys.stderr)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise EvreidError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict):
        state = dict(state)
        if isinstance(state.get("rng"), dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                state["rng"] = _plain_rng(state["rng"])
        if state.get("config") is not None and not isinstance(state["config"], str):
            import yaml

            config = state["config"]
            config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
            state["config"] = yaml.safe_dump(config, sort_keys=False)
        state["format"] = FORMAT
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


# Config keys that may change on resume without changing what the run computes:
# where things are, how many epochs in all, how often to log / evaluate / save,
# test-time settings, and resources.
RESUME_FREE_KEYS = ("OUTPUT_DIR", "SOLVER.MAX_EPOCHS", "SOLVER.EVAL_PERIOD",
                    "SOLVER.LOG_PERIOD", "SOLVER.CHECKPOINT_PERIOD", "DATASETS.ROOT_DIR",
                    "DATASETS.EVENTS_DIR", "DATALOADER.NUM_WORKERS", "MODEL.DEVICE",
                    "MODEL.PRETRAIN_PATH", "DETERMINISTIC", "TEST.")


def config_differences(saved_yaml: str, cfg: Any) -> list[tuple[str, Any, Any]]:
    """(key, checkpoint value, current value) for every training-relevant key that differs.

    A key the checkpoint does not have (added to evreid since) counts as its default.
    """
    import yaml

    from evreid.config import get_cfg

    try:
        saved = yaml.safe_load(saved_yaml) or {}
    except yaml.YAMLError as exc:
        raise EvreidError(f"the checkpoint's embedded config is not valid YAML: {exc}") from None
    base = get_cfg()
    for key, value in _flatten(saved):
        with contextlib.suppress(EvreidError):   # keys since removed from evreid: ignored
            base.merge_from_dict({key: value}, source="checkpoint")
    prefixes = tuple(k for k in RESUME_FREE_KEYS if k.endswith("."))
    diffs = []
    for key in cfg.flat_keys():
        if key in RESUME_FREE_KEYS or key.startswith(prefixes):
            continue
        try:
            old = base.get_key(key)
        except KeyError:
            continue
        new = cfg.get_key(key)
        if old != new:
            diffs.append((key, old, new))
    return diffs


def _flatten(values: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(values, dict):
        return [(prefix[:-1], values)] if prefix else []
    out = []
    for key, value in values.items():
        out += _flatten(value, f"{prefix}{key}.")
    return out
