"""The registry and the assembled models: shapes, gradients, errors, paper scale."""

from __future__ import annotations

import pytest
import torch

from evreid.config import get_cfg, load_config, preset_path
from evreid.errors import EvreidError
from evreid.models import MODELS, build_model

CONFIGS = preset_path("sdcl_cpu").parent   # the presets shipped in the package
ARCHS = ["sdcl", "frames_only", "events_only", "fusion_concat", "fusion_add",
         "fusion_attention", "sdcl_e2f_only", "sdcl_f2e_only"]
NUM_CLASSES = 7


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_cfg(arch: str, *opts):
    cfg = load_config(CONFIGS / "sdcl_cpu.yaml", ["MODEL.ARCH", arch, *opts])
    return cfg


def inputs(cfg, batch: int = 2, density: float = 0.1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = cfg.INPUT.SIZE_TRAIN
    T, bins = cfg.INPUT.SEQ_LEN, cfg.EVENTS.BINS
    frames = torch.randn(batch, T, 3, h, w, generator=g)
    events = (torch.rand(batch, T, bins, 2, h, w, generator=g) < density).float()
    return frames, events


def test_registry_lists_every_arch():
    assert sorted(MODELS) == sorted(ARCHS)
    cfg = get_cfg()
    cfg.MODEL.ARCH = "sdlc"
    with pytest.raises(EvreidError, match="unknown MODEL.ARCH 'sdlc'; valid: sdcl, "):
        build_model(cfg, 10)


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_shapes_and_gradient_reaches_every_parameter(arch):
    torch.manual_seed(0)
    cfg = small_cfg(arch)
    model = build_model(cfg, NUM_CLASSES).train()
    assert model.uses_events == (arch != "frames_only")
    frames, events = inputs(cfg)
    logits, feats = model(frames, events if model.uses_events else None)
    levels = cfg.MODEL.AGG.LEVELS
    assert [tuple(t.shape) for t in logits] == [(2, NUM_CLASSES)] * levels
    assert [tuple(t.shape) for t in feats] == [(2, cfg.MODEL.FEAT_DIM)] * levels
    loss = sum(t.square().mean() for t in logits) + sum(t.square().mean() for t in feats)
    loss.backward()
    frozen = {n for n, _ in model.named_parameters() if n.startswith("heads.necks.")
              and n.endswith(".bn.bias")}
    assert len(frozen) == levels
    assert all(not p.requires_grad for n, p in model.named_parameters() if n in frozen)
    dead = [n for n, p in model.named_parameters()
            if n not in frozen and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert dead == []
    if model.uses_events:
        rates = model.firing_rates()
        assert len(rates) == cfg.MODEL.SNN.LAYERS and all(0 < r < 1 for r in rates.values())
        assert model.synops() > 0
    else:
        assert model.firing_rates() == {}
    model.eval()
    with torch.no_grad():
        emb = model(frames, events)
    assert emb.shape == (2, cfg.MODEL.FEAT_DIM)
    # the embedding is the last level's BNNeck feature
    with torch.no_grad():
        last = model.aggregation(*model.forward_branches(frames, events))[-1]
        assert torch.allclose(emb, model.heads.necks[-1].bn(last), atol=1e-6)


def test_eval_is_deterministic_and_batch_independent():
    torch.manual_seed(0)
    cfg = small_cfg("sdcl")
    model = build_model(cfg, NUM_CLASSES).eval()
    frames, events = inputs(cfg, batch=3)
    with torch.no_grad():
        whole = model(frames, events)
        one = model(frames[1:2], events[1:2])
    assert torch.allclose(whole[1:2], one, atol=1e-5)


@pytest.mark.parametrize("opts", [
    ["MODEL.SNN.LAYERS", 1], ["MODEL.SNN.LAYERS", 4], ["MODEL.DEFORM.MAPPINGS", 0],
    ["MODEL.DEFORM.MAPPINGS", 4], ["MODEL.AGG.MODE", "tap"], ["MODEL.LAST_STRIDE", 2],
    ["MODEL.SNN.SURROGATE", "sigmoid", "MODEL.SNN.DETACH_RESET", True],
    ["INPUT.SEQ_LEN", 3], ["MODEL.BACKBONE", "resnet50"],
])
def test_ablation_options_run(opts):
    torch.manual_seed(0)
    cfg = small_cfg("sdcl", *opts)
    model = build_model(cfg, NUM_CLASSES).train()
    frames, events = inputs(cfg)
    logits, feats = model(frames, events)
    n_out = 1 if cfg.MODEL.AGG.MODE == "tap" else cfg.MODEL.AGG.LEVELS
    assert len(logits) == len(feats) == n_out
    assert len(model.event_branch.encoder.layers) == cfg.MODEL.SNN.LAYERS
    assert len(model.event_branch.mappings.mappings) == cfg.MODEL.DEFORM.MAPPINGS


def test_input_errors_are_clear():
    cfg = small_cfg("sdcl")
    model = build_model(cfg, NUM_CLASSES)
    frames, events = inputs(cfg)
    with pytest.raises(EvreidError, match="needs events"):
        model(frames, None)
    with pytest.raises(EvreidError, match="events must be"):
        model(frames, events[:, :2])
    with pytest.raises(EvreidError, match="frames must be"):
        model(frames[:, :, :1], events)
    with pytest.raises(EvreidError, match=r"bins=3 \(EVENTS.BINS\)"):
        model(frames, events[:, :, :2])
    with pytest.raises(EvreidError, match="num_classes"):
        build_model(cfg, 0)
    cfg.MODEL.NECK = "none"
    with pytest.raises(EvreidError, match="MODEL.NECK"):
        build_model(cfg, NUM_CLASSES)


def test_preset_files_hold_only_known_keys():
    for name in ("sdcl_paper.yaml", "sdcl_cpu.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.MODEL.ARCH == "sdcl"
        assert cfg.EVENTS.BINS == 3


@pytest.mark.parametrize("arch", ARCHS)
def test_paper_widths_every_arch(arch):
    """Paper channel widths (ResNet-50, 1024-d, T = 8, 3 levels) on a reduced 128x64
    input, one clip in eval mode: every arch gives the 1024-d embedding."""
    torch.manual_seed(0)
    cfg = load_config(CONFIGS / "sdcl_paper.yaml",
                      ["MODEL.ARCH", arch, "INPUT.SIZE_TRAIN", [128, 64]])
    model = build_model(cfg, 625).eval()
    frames, events = inputs(cfg, batch=1, density=0.02)
    with torch.no_grad():
        maps, event_maps = model.forward_branches(frames, events if model.uses_events else None)
        emb = model.heads(model.aggregation(maps, event_maps))
    assert maps.shape == (1, 8, 1024, 8, 4)
    # events enter the fusion as maps of their own, of the frame maps' size
    both = model.uses_events and model.uses_frames
    assert (event_maps.shape == maps.shape) if both else event_maps is None
    assert emb.shape == (1, 1024) and torch.isfinite(emb).all()


def test_paper_scale_sdcl():
    """ResNet-50, 256x128, T = 8, 3 bins: one clip, eval mode."""
    torch.manual_seed(0)
    cfg = load_config(CONFIGS / "sdcl_paper.yaml")
    model = build_model(cfg, 625).eval()
    n_params = sum(p.numel() for p in model.parameters())
    # issue 17: PSTA (frames only) has 35.4 M; SDCL may add at most 15 %
    assert 35.4e6 < n_params <= 40.7e6
    assert model.backbone.out_channels == 2048
    frames, events = inputs(cfg, batch=1, density=0.02)
    with torch.no_grad():
        maps, event_maps = model.forward_branches(frames, events)
        assert maps.shape == event_maps.shape == (1, 8, 1024, 16, 8)   # last stride 1: 16x8
        emb = model.heads(model.aggregation(maps, event_maps))
    assert emb.shape == (1, 1024)
    assert torch.isfinite(emb).all()


@pytest.mark.parametrize("arch", ["sdcl", "events_only", "fusion_add"])
@pytest.mark.parametrize("last_stride", [1, 2])
def test_event_maps_take_the_frame_maps_size(arch, last_stride):
    """§3.5: a conv brings the event voxel to the frame features' size, odd input
    sizes included; events-only models use the size the frame branch would give."""
    from evreid.models.resnet import feature_map_size

    torch.manual_seed(0)
    cfg = small_cfg(arch, "INPUT.SIZE_TRAIN", [50, 26], "MODEL.LAST_STRIDE", last_stride)
    model = build_model(cfg, NUM_CLASSES).eval()
    frames, events = inputs(cfg, batch=1)
    expected = (1, 4, cfg.MODEL.FEAT_DIM, *feature_map_size(50, 26, last_stride))
    with torch.no_grad():
        maps, event_maps = model.forward_branches(frames if model.uses_frames else None, events)
    assert maps.shape == expected
    assert event_maps is None if arch == "events_only" else event_maps.shape == expected
