from __future__ import annotations

import math

import pytest
import torch

from evreid.errors import EvreidError
from evreid.losses import CrossEntropyLabelSmooth, TripletLoss


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
