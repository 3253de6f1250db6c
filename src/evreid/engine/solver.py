"""Optimiser and learning-rate schedule from the ``SOLVER`` section: Adam or SGD
(Nesterov), linear warm-up then step decay, stepped once per epoch."""

from __future__ import annotations

import torch

from evreid.config import CfgNode
from evreid.errors import EvreidError


def lr_factor(epoch: int, warmup_epochs: int, warmup_factor: float, steps: list[int],
              gamma: float) -> float:
    """Linear warm-up from ``warmup_factor`` to 1, then x gamma at every step epoch."""
    decay = gamma ** sum(epoch >= s for s in steps)
    if epoch < warmup_epochs:
        alpha = epoch / warmup_epochs
        return (warmup_factor * (1 - alpha) + alpha) * decay
    return decay


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    name = cfg.SOLVER.OPTIMIZER.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.SOLVER.BASE_LR,
                                weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.SOLVER.BASE_LR, momentum=0.9,
                               weight_decay=cfg.SOLVER.WEIGHT_DECAY, nesterov=True)
    raise EvreidError(f"unknown SOLVER.OPTIMIZER {cfg.SOLVER.OPTIMIZER!r}; choose Adam or SGD")


def build_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-epoch schedule of :func:`lr_factor` (``scheduler.step()`` after an epoch)."""
    s = cfg.SOLVER
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: lr_factor(e, s.WARMUP_EPOCHS, s.WARMUP_FACTOR, list(s.STEPS),
                                       s.GAMMA))


def apply_solver_config(cfg: CfgNode, optimizer: torch.optim.Optimizer,
                        scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """Learning rate and weight decay from the config, not from restored states (a
    resumed run's optimiser and scheduler would otherwise silently keep the old ones)."""
    s = cfg.SOLVER
    scheduler.base_lrs = [s.BASE_LR for _ in optimizer.param_groups]
    for group, factor in zip(optimizer.param_groups,
                             (f(scheduler.last_epoch) for f in scheduler.lr_lambdas),
                             strict=True):
        group["initial_lr"] = s.BASE_LR
        group["lr"] = s.BASE_LR * factor
        group["weight_decay"] = s.WEIGHT_DECAY
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
