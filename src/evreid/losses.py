"""Re-ID losses: label-smoothed cross-entropy, batch-hard triplet, and the training
loss made of both on every pyramid level (:class:`ReidLoss`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evreid.errors import EvreidError

TRIPLET_DISTANCES = ("cosine", "euclidean")


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy against (1 - eps) * one_hot + eps / num_classes (Szegedy et al.)."""

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise EvreidError(f"label smoothing must be in [0, 1); got {epsilon}")
        self.num_classes, self.epsilon = num_classes, epsilon

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits.float(), dim=1)
        smooth = torch.full_like(log_probs, self.epsilon / self.num_classes)
        smooth.scatter_(1, targets[:, None], 1.0 - self.epsilon + self.epsilon / self.num_classes)
        return -(smooth * log_probs).sum(dim=1).mean()


def pairwise_distance(features: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "cosine":
        normed = F.normalize(features.float(), dim=1)
        return 1.0 - normed @ normed.T
    if metric == "euclidean":
        x = features.float()
        sq = (x * x).sum(1, keepdim=True)
        return (sq + sq.T - 2.0 * x @ x.T).clamp_min(1e-12).sqrt()
    raise EvreidError(f"unknown triplet distance {metric!r}; choose one of {TRIPLET_DISTANCES}")


class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al., 2017): for each anchor, the farthest
    positive and the closest negative in the batch, hinge with ``margin``."""

    def __init__(self, margin: float = 0.3, distance: str = "cosine") -> None:
        super().__init__()
        if distance not in TRIPLET_DISTANCES:
            raise EvreidError(f"unknown triplet distance {distance!r}; choose one of "
                              f"{TRIPLET_DISTANCES}")
        self.margin, self.distance = margin, distance

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dist = pairwise_distance(features, self.distance)
        same = targets[:, None] == targets[None, :]
        hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1)
        hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
        # anchors with a negative in the batch (from labels: NaN distances must propagate)
        valid = (~same).any(dim=1)
        if targets.device.type == "cpu" and len(np.unique(targets.numpy())) < 2:
            # checked on host labels only: on a GPU it would sync every step (the train
            # sampler guarantees >= 2 identities; a batch without gives NaN, the NaN stop)
            raise EvreidError("triplet loss needs at least two identities in a batch")
        losses = F.relu(hardest_positive - hardest_negative + self.margin)
        # mean over the valid anchors without a data-sized index (no host sync)
        return torch.where(valid, losses, 0.0).sum() / valid.sum()


class ReidLoss(nn.Module):
    """CE (label smoothing) + batch-hard triplet on every level, then mean or sum over
    the levels (``level_reduction``); returns (total, ce, triplet)."""

    def __init__(self, num_classes: int, label_smooth: float = 0.1, margin: float = 0.3,
                 distance: str = "cosine", level_reduction: str = "mean") -> None:
        super().__init__()
        self.ce = CrossEntropyLabelSmooth(num_classes, label_smooth)
        self.triplet = TripletLoss(margin, distance)
        if level_reduction not in ("mean", "sum"):
            raise EvreidError(f"SOLVER.LEVEL_REDUCTION must be mean or sum; got "
                              f"{level_reduction!r}")
        self.reduce_mean = level_reduction == "mean"

    @classmethod
    def from_config(cls, cfg: Any, num_classes: int) -> ReidLoss:
        """The loss the ``SOLVER`` section describes."""
        s = cfg.SOLVER
        return cls(num_classes, s.LABEL_SMOOTH, s.MARGIN, s.TRIPLET_DISTANCE,
                   s.LEVEL_REDUCTION)

    def forward(self, logits: list[torch.Tensor], feats: list[torch.Tensor],
                targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ce = sum(self.ce(lg, targets) for lg in logits)
        tri = sum(self.triplet(f, targets) for f in feats)
        if self.reduce_mean:
            ce, tri = ce / len(logits), tri / len(feats)
        return ce + tri, ce, tri
