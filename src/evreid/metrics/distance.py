"""Query-gallery distance matrices."""

from __future__ import annotations

import numpy as np
import torch

from evreid.errors import EvreidError

DISTANCES = ("cosine", "euclidean")


def compute_distance(query: torch.Tensor | np.ndarray, gallery: torch.Tensor | np.ndarray,
                     metric: str = "cosine") -> np.ndarray:
    """[Q, D] x [G, D] -> [Q, G] float64 distances.

    ``cosine`` is 1 - cosine similarity (in [0, 2]); ``euclidean`` is the L2
    distance. Both rank identically to their squared / unnormalised forms.
    """
    q = torch.as_tensor(query, dtype=torch.float64)
    g = torch.as_tensor(gallery, dtype=torch.float64)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise EvreidError(f"features must be [Q, D] and [G, D] with the same D; got "
                          f"{tuple(q.shape)} and {tuple(g.shape)}")
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)
        dist = 1.0 - q @ g.T
    elif metric == "euclidean":
        sq = (q * q).sum(1, keepdim=True) + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
        dist = sq.clamp_min(0.0).sqrt()
    else:
        raise EvreidError(f"unknown distance {metric!r}; choose one of {DISTANCES}")
    return dist.numpy()
