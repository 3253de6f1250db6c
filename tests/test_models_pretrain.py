"""The paper recipe preset (§4.2) and the ImageNet-weights policy of training."""

from __future__ import annotations

import pytest
import torch

from evreid.config import load_config, load_preset, preset_path
from evreid.engine.solver import lr_factor
from evreid.errors import EvreidError
from evreid.models import build_model
from evreid.models.resnet import build_resnet

CONFIGS = preset_path("sdcl_cpu").parent   # the presets shipped in the package
PAPER = CONFIGS / "sdcl_paper.yaml"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_paper_preset_resolves_to_section_4_2():
    cfg = load_config(PAPER)
    assert (cfg.MODEL.BACKBONE, cfg.MODEL.WIDTH_MULT, cfg.MODEL.LAST_STRIDE) == ("resnet50",
                                                                               1.0, 1)
    assert cfg.SOLVER.OPTIMIZER == "Adam" and cfg.SOLVER.BASE_LR == 3e-4
    assert cfg.SOLVER.MAX_EPOCHS == 500
    assert cfg.INPUT.SEQ_LEN == 8 and cfg.DATALOADER.TRAIN_SAMPLER == "random_interval"
    assert cfg.TEST.DISTANCE == "cosine" and cfg.SOLVER.TRIPLET_DISTANCE == "cosine"
    s = cfg.SOLVER
    lr = {e: cfg.SOLVER.BASE_LR * lr_factor(e, s.WARMUP_EPOCHS, s.WARMUP_FACTOR,
                                            list(s.STEPS), s.GAMMA)
          for e in (s.WARMUP_EPOCHS, 199, 200, 399, 400, 499)}
    # "starting with a learning rate of 0.0003 and decaying it by 10 every 200 epochs"
    assert lr == pytest.approx({s.WARMUP_EPOCHS: 3e-4, 199: 3e-4, 200: 3e-5, 399: 3e-5,
                                400: 3e-6, 499: 3e-6})
    assert "RESULTS_model" not in PAPER.read_text()


def _paper(arch: str = "frames_only", *opts):
    # the paper's backbone and widths on a small input: what matters here is weights
    return load_config(PAPER, ["MODEL.ARCH", arch, "INPUT.SIZE_TRAIN", [64, 32],
                               "INPUT.SEQ_LEN", 2, *opts])


def test_resnet50_without_imagenet_weights_is_refused_with_the_way_out():
    with pytest.raises(EvreidError) as info:
        build_model(_paper(), 5, pretrained=True)
    msg = str(info.value)
    assert "\n" not in msg
    assert "MODEL.PRETRAIN_PATH is empty" in msg and "MODEL.PRETRAIN_PATH none" in msg
    # the opt-out, spelled either way, trains from random weights
    for value in ("none", "None", "null"):
        assert build_model(_paper("frames_only", "MODEL.PRETRAIN_PATH", value), 5,
                           pretrained=True) is not None
    # not training (evaluation, export, cost): nothing is read or refused
    assert build_model(_paper(), 5) is not None


def test_imagenet_file_of_torchvision_layout_loads_strictly(tmp_path):
    source = build_resnet("resnet50")
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    state = dict(source.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(state, path)
    model = build_model(_paper("sdcl", "MODEL.PRETRAIN_PATH", str(path)), 5, pretrained=True)
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    # strict: a file that lacks a key does not load
    del state["layer4.2.conv3.weight"]
    torch.save(state, path)
    with pytest.raises(EvreidError, match="1 missing: layer4.2.conv3.weight"):
        build_model(_paper("sdcl", "MODEL.PRETRAIN_PATH", str(path)), 5, pretrained=True)


def test_models_without_imagenet_weights_to_load_are_not_refused():
    # the CPU presets (narrow ResNet-18) and events-only models have none to load
    for cfg in (load_config(CONFIGS / "sdcl_cpu.yaml"), load_preset("demo"),
                _paper("events_only")):
        assert cfg.MODEL.PRETRAIN_PATH == ""
        build_model(cfg, 5, pretrained=True)


def test_train_command_refuses_paper_preset_without_weights(tmp_path, capsys):
    from conftest import make_tiny_reid
    from evreid.cli import main

    root = make_tiny_reid(tmp_path / "data")
    rc = main(["train", "--config-file", str(PAPER), "--no-progress", "DATASETS.NAME",
               "prid2011", "DATASETS.ROOT_DIR", str(root.parent), "MODEL.ARCH", "frames_only",
               "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert err[0].startswith("evreid train: error: MODEL.PRETRAIN_PATH is empty")
    assert not (tmp_path / "run" / "last.pth").exists()
