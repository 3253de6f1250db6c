from __future__ import annotations

import math

import pytest
import torch

from evreid.config import get_cfg
from evreid.errors import EvreidError
from evreid.losses import CrossEntropyLabelSmooth, ReidLoss, TripletLoss


def test_label_smoothing_analytic():
    logits = torch.zeros(1, 4)
    loss = CrossEntropyLabelSmooth(4, epsilon=0.1)(logits, torch.tensor([2]))
    assert loss.item() == pytest.approx(math.log(4))
    logits = torch.tensor([[2.0, 0.0]])
    log_p = torch.log_softmax(logits, 1)[0]
    expected = -(0.95 * log_p[0] + 0.05 * log_p[1])
    assert CrossEntropyLabelSmooth(2, 0.1)(logits, torch.tensor([0])).item() == pytest.approx(
        expected.item())
    no_smooth = CrossEntropyLabelSmooth(2, 0.0)(logits, torch.tensor([1]))
    assert no_smooth.item() == pytest.approx(torch.nn.functional.cross_entropy(
        logits, torch.tensor([1])).item())


def test_triplet_batch_hard_euclidean_analytic():
    feats = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = TripletLoss(margin=0.5, distance="euclidean")(feats, labels)
    # anchors: 0: pos 1, neg 3 -> 0; 1: pos 1, neg 2 -> 1-2+.5=0 ->0; 2: pos 2, neg 2 -> .5;
    # 3: pos 2, neg sqrt(8) -> 0
    assert loss.item() == pytest.approx(0.5 / 4, abs=1e-5)


def test_triplet_cosine_and_gradient():
    feats = torch.randn(8, 5, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = TripletLoss(margin=10.0, distance="cosine")(feats, labels)
    loss.backward()
    assert loss.item() > 0 and feats.grad.abs().sum() > 0


def test_triplet_errors():
    with pytest.raises(EvreidError, match="unknown triplet distance 'l1'"):
        TripletLoss(distance="l1")
    with pytest.raises(EvreidError, match="two identities"):
        TripletLoss()(torch.randn(3, 4), torch.tensor([1, 1, 1]))


def test_triplet_propagates_nan():
    feats = torch.full((4, 3), float("nan"))
    loss = TripletLoss(distance="euclidean")(feats, torch.tensor([0, 0, 1, 1]))
    assert torch.isnan(loss)


def test_reid_loss_sums_both_terms_over_levels_then_reduces():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = [torch.randn(6, 3) for _ in range(3)]
    feats = [torch.randn(6, 4) for _ in range(3)]
    ce, tri = CrossEntropyLabelSmooth(3, 0.1), TripletLoss(0.3, "cosine")
    ce_sum = sum(ce(lg, labels) for lg in logits)
    tri_sum = sum(tri(f, labels) for f in feats)
    total, ce_mean, tri_mean = ReidLoss(3, 0.1, 0.3, "cosine", "mean")(logits, feats, labels)
    assert torch.equal(ce_mean, ce_sum / 3) and torch.equal(tri_mean, tri_sum / 3)
    assert torch.equal(total, ce_sum / 3 + tri_sum / 3)
    total, ce_s, tri_s = ReidLoss(3, 0.1, 0.3, "cosine", "sum")(logits, feats, labels)
    assert torch.equal(total, ce_sum + tri_sum)
    # from_config reads the SOLVER section
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.LEVEL_REDUCTION", "sum", "SOLVER.MARGIN", "0.3"])
    assert torch.equal(ReidLoss.from_config(cfg, 3)(logits, feats, labels)[0], total)
    with pytest.raises(EvreidError, match="SOLVER.LEVEL_REDUCTION must be mean or sum; got 'max'"):
        ReidLoss(3, level_reduction="max")
