"""ResNet-18/34/50 frame backbones with torchvision-identical state_dict keys.

The key layout (``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layer4.2.bn3``,
``downsample.0/1``) is a contract: an ImageNet checkpoint saved by torchvision
loads with :func:`load_backbone_state_dict` without renaming. The classifier
``fc`` is not part of the backbone (re-ID heads replace it); a checkpoint's
``fc.*`` entries are dropped and reported as ignored.

``last_stride=1`` keeps layer4 at 1/16 of the input (the re-ID convention: a
256x128 person crop gives a 16x8 map instead of 8x4). ``width_mult`` scales
every stage width for CPU-scale presets; checkpoints then no longer fit, which
the loader reports as shape mismatches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from evreid.errors import EvreidError

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "build_resnet", "load_backbone_state_dict", "RESNET_DEPTHS", "feature_map_size"]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    # stride on the 3x3 conv (torchvision's "ResNet v1.5"), so checkpoints match
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


class ResNet(nn.Module):
    """A ResNet trunk without the classifier.

    ``forward_stages(x, "layer2", "layer4")`` runs a contiguous range of stages,
    so a model can fuse another modality between two stages.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int],
                 last_stride: int = 2, width_mult: float = 1.0) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise EvreidError(f"MODEL.LAST_STRIDE must be 1 or 2; got {last_stride}")
        if width_mult <= 0:
            raise EvreidError(f"MODEL.WIDTH_MULT must be positive; got {width_mult}")
        widths = [max(8, int(round(64 * width_mult * 2**i))) for i in range(4)]
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        strides = (1, 2, 2, last_stride)
        for i, (width, blocks, stride) in enumerate(zip(widths, layers, strides, strict=True)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, blocks, stride))
        self.stage_channels = {"stem": widths[0]}
        self.stage_channels.update(
            {f"layer{i + 1}": w * block.expansion for i, w in enumerate(widths)})
        self.out_channels = widths[3] * block.expansion
        self._init_weights()

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], width: int,
                    blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != width * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, width * block.expansion, stride),
                                       nn.BatchNorm2d(width * block.expansion))
        layers = [block(self.inplanes, width, stride, downsample)]
        self.inplanes = width * block.expansion
        layers += [block(self.inplanes, width) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "stem":
            return self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return getattr(self, name)(x)

    def forward_stages(self, x: torch.Tensor, first: str = "stem",
                       last: str = "layer4") -> torch.Tensor:
        i, j = STAGES.index(first), STAGES.index(last)
        for name in STAGES[i:j + 1]:
            x = self._stage(name, x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)


def feature_map_size(height: int, width: int, last_stride: int = 2,
                     stage: str = "layer4") -> tuple[int, int]:
    """(h, w) of a stage's output for an input of height x width, without running it.

    Every stride-2 step here (7x7 conv, 3x3 max pool, 3x3 conv, 1x1 downsample,
    all with "same" padding) maps n to ceil(n / 2).
    """
    steps = {"stem": 2, "layer1": 2, "layer2": 3, "layer3": 4,
             "layer4": 4 + (last_stride == 2)}[stage]
    scale = 2 ** steps
    return -(-int(height) // scale), -(-int(width) // scale)


RESNET_DEPTHS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def build_resnet(name: str, last_stride: int = 2, width_mult: float = 1.0) -> ResNet:
    if name not in RESNET_DEPTHS:
        raise EvreidError(f"unknown MODEL.BACKBONE {name!r}; valid: {', '.join(RESNET_DEPTHS)}")
    block, layers = RESNET_DEPTHS[name]
    return ResNet(block, layers, last_stride=last_stride, width_mult=width_mult)


def resnet18(last_stride: int = 2, width_mult: float = 1.0) -> ResNet:
    return build_resnet("resnet18", last_stride, width_mult)


def resnet34(last_stride: int = 2, width_mult: float = 1.0) -> ResNet:
    return build_resnet("resnet34", last_stride, width_mult)


def resnet50(last_stride: int = 2, width_mult: float = 1.0) -> ResNet:
    return build_resnet("resnet50", last_stride, width_mult)


def _unwrap(state_dict: Mapping) -> Mapping:
    # accept {"state_dict": ...} / {"model": ...} wrappers and DataParallel's "module." prefix
    for key in ("state_dict", "model"):
        if key in state_dict and isinstance(state_dict[key], Mapping):
            state_dict = state_dict[key]
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def load_backbone_state_dict(backbone: ResNet, state_dict: Mapping[str, torch.Tensor],
                             source: str = "state_dict") -> list[str]:
    """Load torchvision-layout weights strictly; return the ignored keys (``fc.*``).

    Raises EvreidError listing missing keys, unexpected keys and shape
    mismatches (a few of each, with totals), naming ``source``.
    """
    state_dict = _unwrap(state_dict)
    ignored = sorted(k for k in state_dict if k.startswith("fc."))
    incoming = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    # old torchvision checkpoints predate BatchNorm's num_batches_tracked buffer;
    # it is a counter, not a weight, so its absence is harmless
    missing = sorted(k for k in set(own) - set(incoming)
                     if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(incoming) - set(own))
    mismatched = sorted(
        f"{k} (checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)})"
        for k, v in incoming.items()
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape))
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatch", mismatched)):
        if items:
            shown = ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")
            problems.append(f"{len(items)} {label}: {shown}")
    if problems:
        raise EvreidError(f"backbone weights {source} do not fit this "
                          f"{type(backbone).__name__}: " + "; ".join(problems))
    backbone.load_state_dict(incoming, strict=False)
    return ignored
