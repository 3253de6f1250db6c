from __future__ import annotations

import pytest
import yaml

from evreid.config import config_hash, get_cfg, load_config, save_config
from evreid.errors import EvreidError


def test_overrides_are_typed():
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.BASE_LR", "1e-3", "INPUT.SIZE_TRAIN", "[128, 64]",
                         "TEST.RERANKING", "True", "SOLVER.MAX_EPOCHS", "3"])
    assert cfg.SOLVER.BASE_LR == 1e-3 and cfg.INPUT.SIZE_TRAIN == [128, 64]
    assert cfg.TEST.RERANKING is True and cfg.SOLVER.MAX_EPOCHS == 3


@pytest.mark.parametrize("opts, message", [
    (["SOLVER.BASE_RL", "1"], "unknown config key SOLVER.BASE_RL in command line; "
                              "did you mean SOLVER.BASE_LR?"),
    (["MODEL.ARHC", "x"], "did you mean MODEL.ARCH"),
    (["SOLVER.MAX_EPOCHS", "abc"], "SOLVER.MAX_EPOCHS .* expects an integer; got 'abc'"),
    (["TEST.RERANKING", "3"], "expects true/false"),
    (["SOLVER.BASE_LR"], "KEY VALUE pairs"),
    (["SOLVER", "1"], "is a section"),
])
def test_bad_overrides(opts, message):
    with pytest.raises(EvreidError, match=message):
        get_cfg().merge_from_list(opts)


def test_yaml_base_inheritance(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(
        {"SOLVER": {"BASE_LR": 0.01, "MAX_EPOCHS": 5}, "INPUT": {"SEQ_LEN": 4}}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text(
        "_BASE_: ../base.yaml\nSOLVER:\n  MAX_EPOCHS: 7\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml", ["INPUT.SEQ_LEN", "2"])
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.SOLVER.MAX_EPOCHS == 7 and cfg.INPUT.SEQ_LEN == 2


def test_yaml_errors(tmp_path):
    with pytest.raises(EvreidError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("SOLVER:\n  BASE_LR: [unclosed\n")
    with pytest.raises(EvreidError, match="bad.yaml is not valid YAML"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("SOLVER:\n  WARMUP_EPOCH: 3\n")
    with pytest.raises(EvreidError, match=r"unknown config key SOLVER.WARMUP_EPOCH in "
                                          r".*unknown.yaml; did you mean SOLVER.WARMUP_EPOCHS"):
        load_config(unknown)
    loop = tmp_path / "loop.yaml"
    loop.write_text("_BASE_: loop.yaml\n")
    with pytest.raises(EvreidError, match="inherits itself"):
        load_config(loop)


def test_save_roundtrip_and_hash(tmp_path):
    cfg = load_config(None, ["SEED", "3"])
    path = save_config(cfg, tmp_path / "run")
    again = load_config(path)
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert config_hash(load_config(None, ["SEED", "4"])) != config_hash(cfg)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.yaml"]


def test_frozen_config():
    cfg = get_cfg().freeze()
    with pytest.raises(EvreidError, match="frozen"):
        cfg.merge_from_list(["SEED", "1"])
    clone = cfg.clone()
    clone.merge_from_list(["SEED", "1"])
    assert clone.SEED == 1 and cfg.SEED == 0
