"""ResNet backbones: torchvision state_dict contract, strict loading, strides, widths."""

from __future__ import annotations

import pytest
import torch

from evreid.config import get_cfg
from evreid.errors import EvreidError
from evreid.models import build_model
from evreid.models.resnet import build_resnet, load_backbone_state_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bn(prefix: str, c: int, counter: bool = True) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,)}
    if counter:
        keys[f"{prefix}.num_batches_tracked"] = ()
    return keys


def torchvision_resnet50_layout(counter: bool = True) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's resnet50 state_dict, written out independently."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}
    shapes.update(_bn("bn1", 64, counter))
    cin = 64
    for li, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512),
                                             strict=True), start=1):
        for b in range(blocks):
            p = f"layer{li}.{b}"
            shapes[f"{p}.conv1.weight"] = (width, cin, 1, 1)
            shapes.update(_bn(f"{p}.bn1", width, counter))
            shapes[f"{p}.conv2.weight"] = (width, width, 3, 3)
            shapes.update(_bn(f"{p}.bn2", width, counter))
            shapes[f"{p}.conv3.weight"] = (4 * width, width, 1, 1)
            shapes.update(_bn(f"{p}.bn3", 4 * width, counter))
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (4 * width, cin, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", 4 * width, counter))
            cin = 4 * width
    shapes["fc.weight"] = (1000, 2048)
    shapes["fc.bias"] = (1000,)
    return shapes


def _random_state(layout: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: (torch.tensor(7) if k.endswith("num_batches_tracked")
                else torch.randn(s, generator=g)) for k, s in layout.items()}


def test_resnet50_keys_and_shapes_match_torchvision_layout():
    own = build_resnet("resnet50").state_dict()
    layout = torchvision_resnet50_layout()
    expected = {k: v for k, v in layout.items() if not k.startswith("fc.")}
    assert {k: tuple(v.shape) for k, v in own.items()} == expected


def test_torchvision_checkpoint_loads_through_pretrain_path(tmp_path):
    state = _random_state(torchvision_resnet50_layout())
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(state, path)
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.ARCH", "frames_only", "MODEL.PRETRAIN_PATH", str(path)])
    model = build_model(cfg, num_classes=5, pretrained=True)
    loaded = model.backbone.state_dict()
    for key in ("conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var"):
        assert torch.equal(loaded[key], state[key]), key


def test_checkpoint_without_batch_counters_and_wrapped_loads():
    # old torchvision files lack num_batches_tracked; DataParallel adds "module."
    state = _random_state(torchvision_resnet50_layout(counter=False))
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    backbone = build_resnet("resnet50")
    ignored = load_backbone_state_dict(backbone, wrapped)
    assert ignored == ["fc.bias", "fc.weight"]
    assert torch.equal(backbone.layer3[5].conv2.weight, state["layer3.5.conv2.weight"])


def test_wrong_checkpoint_gives_clear_report():
    backbone = build_resnet("resnet18")
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    del state["layer2.1.bn2.running_mean"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(EvreidError) as info:
        load_backbone_state_dict(backbone, state, source="bad.pth")
    msg = str(info.value)
    assert "bad.pth" in msg
    assert "1 missing: layer2.1.bn2.running_mean" in msg
    assert "1 unexpected: layer5.0.conv1.weight" in msg
    assert "shape mismatch: conv1.weight (checkpoint (64, 3, 3, 3), model (64, 3, 7, 7))" in msg


def test_pretrain_path_errors(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.ARCH", "frames_only", "MODEL.BACKBONE", "resnet18",
                         "MODEL.PRETRAIN_PATH", str(tmp_path / "nope.pth")])
    with pytest.raises(EvreidError, match="file not found"):
        build_model(cfg, 3, pretrained=True)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    cfg.MODEL.PRETRAIN_PATH = str(tmp_path / "junk.pth")
    with pytest.raises(EvreidError, match="cannot read"):
        build_model(cfg, 3, pretrained=True)


@pytest.mark.parametrize("name,params", [("resnet18", 11_176_512), ("resnet34", 21_284_672),
                                         ("resnet50", 23_508_032)])
def test_parameter_counts_equal_torchvision_without_fc(name, params):
    assert sum(p.numel() for p in build_resnet(name).parameters()) == params


@pytest.mark.parametrize("last_stride,size", [(1, (4, 2)), (2, (2, 1))])
def test_last_stride(last_stride, size):
    net = build_resnet("resnet18", last_stride=last_stride).eval()
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        out = net(x)
        # running the stages in two parts is the same network
        split = net.forward_stages(net.forward_stages(x, "stem", "layer1"), "layer2", "layer4")
    assert out.shape == (1, 512, *size)
    assert torch.equal(out, split)


def test_width_mult_and_bad_options():
    net = build_resnet("resnet50", width_mult=0.25)
    assert net.stage_channels == {"stem": 16, "layer1": 64, "layer2": 128, "layer3": 256,
                                  "layer4": 512}
    assert net.out_channels == 512
    with pytest.raises(EvreidError, match="LAST_STRIDE"):
        build_resnet("resnet18", last_stride=3)
    with pytest.raises(EvreidError, match="resnet18, resnet34, resnet50"):
        build_resnet("resnet101")


@pytest.mark.parametrize("size", [(64, 32), (50, 27), (33, 17)])
@pytest.mark.parametrize("last_stride", [1, 2])
def test_feature_map_size_is_the_size_the_stages_give(size, last_stride):
    from evreid.models.resnet import feature_map_size

    net = build_resnet("resnet18", last_stride=last_stride, width_mult=0.125).eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        for stage in ("stem", "layer1", "layer2", "layer3", "layer4"):
            out = net.forward_stages(x, "stem", stage)
            assert tuple(out.shape[-2:]) == feature_map_size(*size, last_stride, stage), stage
