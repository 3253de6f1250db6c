"""k-reciprocal re-ranking (Zhong et al., CVPR 2017).

The final distance mixes the original distance with a Jaccard distance between
k-reciprocal neighbour sets, which rewards gallery items that are mutual
nearest neighbours of the query's neighbourhood. Memory is O(N^2) for
N = queries + gallery (about 0.8 GB float32 at MARS size).
"""

from __future__ import annotations

import numpy as np

from evreid.errors import EvreidError


def _k_reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, :k + 1]
    backward = initial_rank[forward, :k + 1]
    return forward[(backward == i).any(axis=1)]


def re_ranking(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20,
               k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked [Q, G] distances from query-gallery, query-query and gallery-gallery ones."""
    q_g, q_q, g_g = (np.asarray(a, dtype=np.float32) for a in (q_g, q_q, g_g))
    num_q, num_g = q_g.shape
    if q_q.shape != (num_q, num_q) or g_g.shape != (num_g, num_g):
        raise EvreidError(f"re-ranking needs q_q {num_q}x{num_q} and g_g {num_g}x{num_g}; "
                          f"got {q_q.shape} and {g_g.shape}")
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise EvreidError(f"re-ranking needs k1, k2 >= 1 and 0 <= lambda <= 1; got "
                          f"k1={k1}, k2={k2}, lambda={lambda_value}")
    original = np.block([[q_q, q_g], [q_g.T, g_g]])
    num_all = original.shape[0]
    original = original / np.maximum(original.max(axis=0, keepdims=True), 1e-12)
    original = original.T
    initial_rank = np.argsort(original, axis=1, kind="stable")
    k1 = min(k1, num_all - 1)
    half_k1 = int(np.around(k1 / 2))

    weights = np.zeros_like(original, dtype=np.float32)
    for i in range(num_all):
        reciprocal = _k_reciprocal(initial_rank, i, k1)
        expansion = [reciprocal]
        for candidate in reciprocal:
            cand_set = _k_reciprocal(initial_rank, candidate, half_k1)
            if len(np.intersect1d(cand_set, reciprocal)) > 2.0 / 3.0 * len(cand_set):
                expansion.append(cand_set)
        expansion = np.unique(np.concatenate(expansion))
        w = np.exp(-original[i, expansion])
        weights[i, expansion] = w / w.sum()

    if k2 > 1:
        weights = weights[initial_rank[:, :k2]].mean(axis=1)

    # Jaccard distance between rows, using the sparsity of the weight matrix
    nonzero_rows_of_col = [np.nonzero(weights[:, j])[0] for j in range(num_all)]
    jaccard = np.zeros((num_q, num_all), dtype=np.float32)
    for i in range(num_q):
        overlap = np.zeros(num_all, dtype=np.float32)
        for j in np.nonzero(weights[i])[0]:
            rows = nonzero_rows_of_col[j]
            overlap[rows] += np.minimum(weights[i, j], weights[rows, j])
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)
    final = jaccard * (1.0 - lambda_value) + original[:num_q] * lambda_value
    return final[:, num_q:].astype(np.float64)
