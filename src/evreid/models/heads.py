"""BNNeck heads (Luo et al., "Bag of Tricks"): one per aggregation level.

The triplet loss sees the feature before BatchNorm, the classifier the one
after it; the BN bias is frozen at zero (a learned shift would only move the
features the cosine distance compares), and the classifier has no bias.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BNNeck", "MultiLevelHeads"]


class BNNeck(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feat [B, D] -> (BN feature [B, D], logits [B, num_classes])."""
        bn_feat = self.bn(feat)
        return bn_feat, self.classifier(bn_feat)


class MultiLevelHeads(nn.Module):
    """Train: (logits per level, features per level before BN). Eval: last BN feature."""

    def __init__(self, dim: int, num_classes: int, levels: int) -> None:
        super().__init__()
        self.necks = nn.ModuleList(BNNeck(dim, num_classes) for _ in range(levels))

    def forward(self, feats: list[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]] | torch.Tensor:
        if not self.training:
            return self.necks[-1].bn(feats[-1])
        logits = [neck(f)[1] for neck, f in zip(self.necks, feats, strict=True)]
        return logits, list(feats)
