"""Model registry: ``build_model(cfg, num_classes)`` by ``cfg.MODEL.ARCH``.

Contract (the engine relies on it): ``model(frames, events)`` with frames
[B, T, 3, H, W] and events [B, T, bins, 2, H, W] (None for frames-only
models); train mode returns ``(logits_per_level, feats_per_level)``, eval mode
the embedding [B, FEAT_DIM]; ``model.uses_events``; ``model.firing_rates()``.

Initial weights: ``build_model(cfg, n, pretrained=True)`` (what training
does) applies ``MODEL.PRETRAIN_PATH``: a torchvision ImageNet checkpoint is
loaded strictly into the frame backbone. A full-width ResNet-50 (the paper's
backbone, §4.2: "ImageNet-pretrained standard ResNet-50") without one is
refused, unless ``MODEL.PRETRAIN_PATH none`` asks for random weights on
purpose. Without ``pretrained`` the weights are random and the key is not
read (evaluation, export and cost measurement load or need no ImageNet file).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from evreid.config import CfgNode
from evreid.errors import EvreidError
from evreid.models.baselines import (
    events_only,
    frames_only,
    fusion_add,
    fusion_attention,
    fusion_concat,
)
from evreid.models.resnet import load_backbone_state_dict
from evreid.models.sdcl import SDCL, sdcl, sdcl_e2f_only, sdcl_f2e_only

__all__ = ["build_model", "register_model", "list_models", "load_pretrained_backbone",
           "pretrain_path", "MODELS", "SDCL", "FROM_SCRATCH"]

# MODEL.PRETRAIN_PATH value that opts out of ImageNet weights explicitly
FROM_SCRATCH = "none"

MODELS: dict[str, Callable[[CfgNode, int], nn.Module]] = {
    "sdcl": sdcl,
    "sdcl_e2f_only": sdcl_e2f_only,
    "sdcl_f2e_only": sdcl_f2e_only,
    "frames_only": frames_only,
    "events_only": events_only,
    "fusion_concat": fusion_concat,
    "fusion_add": fusion_add,
    "fusion_attention": fusion_attention,
}


def register_model(name: str, builder: Callable[[CfgNode, int], nn.Module]) -> None:
    """Add an architecture (for extensions); names are unique."""
    if name in MODELS:
        raise EvreidError(f"model {name!r} is already registered")
    MODELS[name] = builder


def list_models() -> list[str]:
    return list(MODELS)


def load_pretrained_backbone(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a torchvision-layout ImageNet checkpoint into ``model.backbone``.

    Returns the ignored keys (``fc.*``). Nothing is ever downloaded.
    """
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise EvreidError(f"MODEL.PRETRAIN_PATH is set ({path}) but this model has no "
                          "frame backbone")
    if not os.path.isfile(path):
        raise EvreidError(f"MODEL.PRETRAIN_PATH: file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise EvreidError(f"MODEL.PRETRAIN_PATH: cannot read {path}: "
                          f"{type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict):
        raise EvreidError(f"MODEL.PRETRAIN_PATH: {path} holds a {type(state).__name__}, "
                          "not a state_dict")
    return load_backbone_state_dict(backbone, state, source=str(path))


def _expects_imagenet(cfg: CfgNode, model: nn.Module) -> bool:
    # ImageNet checkpoints fit a full-width backbone only; the CPU presets'
    # narrow ResNet-18s have none to load
    return (getattr(model, "backbone", None) is not None and cfg.MODEL.BACKBONE == "resnet50"
            and float(cfg.MODEL.WIDTH_MULT) == 1.0)


def pretrain_path(cfg: CfgNode, model: nn.Module) -> str | None:
    """The ImageNet file training starts ``model`` from, or None (random weights).

    Raises EvreidError for a full-width ResNet-50 with MODEL.PRETRAIN_PATH empty.
    """
    value = cfg.MODEL.PRETRAIN_PATH
    # the command line and YAML turn "none" into None; both spellings opt out
    if value is None or str(value).strip().lower() == FROM_SCRATCH:
        return None
    path = str(value).strip()
    if path:
        return path
    if _expects_imagenet(cfg, model):
        raise EvreidError(
            f"MODEL.PRETRAIN_PATH is empty: {cfg.MODEL.ARCH} with a ResNet-50 trains from "
            "ImageNet weights (SDCL §4.2); set MODEL.PRETRAIN_PATH to a torchvision "
            "resnet50 state_dict file (e.g. resnet50-0676ba61.pth; nothing is downloaded), "
            f"or MODEL.PRETRAIN_PATH {FROM_SCRATCH} to train from random weights on purpose")
    return None


def build_model(cfg: CfgNode, num_classes: int, *, pretrained: bool = False) -> nn.Module:
    """Build ``cfg.MODEL.ARCH`` for ``num_classes`` training identities.

    ``pretrained``: start from MODEL.PRETRAIN_PATH as training does (see the
    module docstring); otherwise random weights, the key unread.
    """
    arch = cfg.MODEL.ARCH
    if arch not in MODELS:
        raise EvreidError(f"unknown MODEL.ARCH {arch!r}; valid: {', '.join(MODELS)}")
    if int(num_classes) < 1:
        raise EvreidError(f"num_classes must be >= 1; got {num_classes}")
    model = MODELS[arch](cfg, int(num_classes))
    if pretrained:
        path = pretrain_path(cfg, model)
        if path is not None:
            load_pretrained_backbone(model, path)
    return model
