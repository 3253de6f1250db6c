"""Saved features / distance matrices: the file `evreid test` writes and
`evreid evaluate` reads.

An ``.npz`` file with ``query_pids``, ``gallery_pids``, ``query_camids``,
``gallery_camids`` and either ``query_features`` + ``gallery_features``
([Q, D], [G, D]) or ``distmat`` ([Q, G]). ``protocol`` may be stored too.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from evreid.errors import EvreidError
from evreid.utils import atomic_open, npz_problem

ID_KEYS = ("query_pids", "gallery_pids", "query_camids", "gallery_camids")
FEATURE_KEYS = ("query_features", "gallery_features")


def save_features(path: str | os.PathLike, **arrays) -> Path:
    """Write an evaluation file atomically (see module docstring for the keys)."""
    path = Path(path)
    missing = [k for k in ID_KEYS if k not in arrays]
    has_features = all(k in arrays for k in FEATURE_KEYS)
    if missing or not (has_features or "distmat" in arrays):
        raise EvreidError(f"save_features needs {ID_KEYS} and features or distmat; "
                          f"missing {missing or list(FEATURE_KEYS) + ['distmat']}")
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def load_features(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check an evaluation file; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise EvreidError(f"features file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise EvreidError(f"cannot read features file {path}: {npz_problem(exc)}") from None
    missing = [k for k in ID_KEYS if k not in arrays]
    if missing:
        raise EvreidError(f"features file {path} lacks {missing}; it has {sorted(arrays)}")
    if "distmat" not in arrays and not all(k in arrays for k in FEATURE_KEYS):
        raise EvreidError(f"features file {path} needs 'distmat' or both "
                          f"{FEATURE_KEYS}; it has {sorted(arrays)}")
    return arrays


def stored_distances(data: dict[str, np.ndarray], metric: str = "cosine", rerank: bool = False,
                     source: str = "features file", **rerank_options) -> np.ndarray:
    """The file's ``distmat``, or distances computed from its features (and
    re-ranked when asked; a stored distmat cannot be re-ranked)."""
    from evreid.metrics import query_gallery_distances

    if "distmat" in data:
        if rerank:
            raise EvreidError(f"--rerank needs features; {source} holds a distmat")
        return data["distmat"]
    return query_gallery_distances(data["query_features"], data["gallery_features"], metric,
                                   rerank, **rerank_options)


def evaluate_features(path: str | os.PathLike, distance: str = "cosine",
                      protocol: str | None = None, max_rank: int = 50, rerank: bool = False,
                      **rerank_options) -> dict:
    """Rank the queries of a features file (``evreid test``'s features.npz) against its
    gallery: :func:`evreid.metrics.evaluate`'s result plus ``summary`` (percent
    figures), ``protocol`` (default: the file's, else standard), ``distance`` (the
    metric, or ``distmat`` for a stored matrix) and ``warning`` (some queries tied,
    else None; all tied is an error)."""
    from evreid.metrics import evaluate, summary_row
    from evreid.metrics.rank import check_not_degenerate

    if max_rank < 1:
        raise EvreidError(f"--max-rank must be >= 1; got {max_rank}")
    data = load_features(path)
    protocol = protocol or str(data.get("protocol", "standard"))
    distmat = stored_distances(data, distance, rerank, source=str(path), **rerank_options)
    result = evaluate(distmat, data["query_pids"], data["gallery_pids"], data["query_camids"],
                      data["gallery_camids"], max_rank=max_rank, protocol=protocol)
    result["warning"] = check_not_degenerate(result, str(path))
    result.update(summary=summary_row(result), protocol=protocol,
                  distance="distmat" if "distmat" in data else distance)
    return result
