"""A checkpoint is data, never code: every entry point reads it with weights_only=True.

The malicious file below is a well-formed evreid checkpoint plus one object
whose unpickling runs a shell command that creates a marker file. Every
command that takes a checkpoint must refuse it with one line, and the marker
must never appear.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.api import Embedder
from evreid.cli import main
from evreid.config import load_config
from evreid.engine.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from evreid.errors import EvreidError
from evreid.models import build_model

REFUSED = ("checkpoint {path} holds objects other than tensors and plain data (an evreid "
           "checkpoint older than format 2, or not an evreid checkpoint); refusing to "
           "unpickle it, which could run code. If you made it or trust its source, pass "
           "--trust-checkpoint (Python: trust=True)")


class RunsCode:
    """Unpickling this calls os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def tiny_cfg(root="data", out="run"):
    return load_config(None, TINY_TRAIN_OPTS + ["DATASETS.ROOT_DIR", str(root),
                                                "OUTPUT_DIR", str(out)])


def tiny_state(cfg, num_classes=4):
    model = build_model(cfg, num_classes)
    return {"arch": cfg.MODEL.ARCH, "num_classes": num_classes, "config": cfg.dump(),
            "model": model.state_dict()}


@pytest.fixture
def evil(tmp_path):
    """(checkpoint path, marker path): the checkpoint creates the marker when unpickled."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    state = tiny_state(tiny_cfg())
    state["extra"] = RunsCode(f"touch {marker}")
    torch.save(state, path)
    return path, marker


def test_the_malicious_file_does_run_code_when_fully_unpickled(evil):
    path, marker = evil     # the fixture is a real threat, so its refusal means something
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_it(evil):
    path, marker = evil
    with pytest.raises(EvreidError) as info:
        load_checkpoint(path)
    assert str(info.value) == REFUSED.format(path=path)
    assert not marker.exists()


def test_embedder_refuses_it(evil):
    path, marker = evil
    with pytest.raises(EvreidError, match="refusing to unpickle it"):
        Embedder(path)
    assert not marker.exists()


def _cli(argv, capsys):
    rc = main(argv)
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", ["test", "export", "viz", "resume"])
def test_every_command_refuses_it(evil, tmp_path, capsys, command):
    path, marker = evil
    if command == "test":
        argv = ["test", "--checkpoint", str(path), "--out", str(tmp_path / "o"),
                *TINY_TRAIN_OPTS]
    elif command == "export":
        argv = ["export", "onnx", "--checkpoint", str(path), "--out", str(tmp_path / "m.onnx")]
    elif command == "viz":
        argv = ["viz", "features", "--checkpoint", str(path), "--out", str(tmp_path / "f.png")]
    else:
        root = make_tiny_reid(tmp_path / "data").parent
        run = tmp_path / "run"
        run.mkdir()
        (run / "last.pth").write_bytes(path.read_bytes())
        path = run / "last.pth"
        argv = ["train", "--resume", "--no-progress", *TINY_TRAIN_OPTS, "DATASETS.ROOT_DIR",
                str(root), "OUTPUT_DIR", str(run)]
    name = "viz" if command == "viz" else "train" if command == "resume" else command
    rc, err = _cli(argv, capsys)
    assert rc == 2
    assert err == [f"evreid {name}: error: " + REFUSED.format(path=path)]
    assert not marker.exists()


def _old_format_checkpoint(path, cfg):
    """What evreid wrote before format 2: numpy arrays and getstate() tuples inside."""
    state = tiny_state(cfg)
    state["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state()}
    torch.save(state, path)


def test_old_checkpoint_refused_then_converted_when_trusted(tmp_path, capsys):
    cfg = tiny_cfg()
    old = tmp_path / "old.pth"
    _old_format_checkpoint(old, cfg)
    with pytest.raises(EvreidError, match="older than format 2"):
        load_checkpoint(old)
    state = load_checkpoint(old, trust=True)
    err = capsys.readouterr().err
    assert err.strip() == (f"--trust-checkpoint: unpickling {old} with weights_only=False (any "
                           f"code it holds runs now) and converting it to checkpoint format "
                           f"{FORMAT} in memory")
    assert state["format"] == FORMAT
    assert isinstance(state["rng"]["numpy"]["key"], torch.Tensor)
    # the converted state saves as plain data, readable without trust
    save_checkpoint(tmp_path / "new.pth", **state)
    again = load_checkpoint(tmp_path / "new.pth")
    assert torch.equal(again["rng"]["numpy"]["key"], state["rng"]["numpy"]["key"])
    embedder = Embedder(old, trust=True)
    assert embedder.cfg.MODEL.ARCH == "frames_only"


def test_saved_checkpoints_are_plain_data(tmp_path):
    from evreid.engine.checkpoint import restore_rng_states, rng_states

    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "a.pth", model={}, rng=rng_states())
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = torch.load(tmp_path / "a.pth", weights_only=True)   # raises if not plain
    restore_rng_states(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_stale_temp_files_of_a_killed_save_are_removed(tmp_path):
    stale = tmp_path / ".last.pth.abc123.tmp"
    stale.write_bytes(b"")               # what SIGKILL during torch.save leaves
    other = tmp_path / ".best.pth.abc123.tmp"
    other.write_bytes(b"")
    save_checkpoint(tmp_path / "last.pth", model={})
    assert not stale.exists() and other.exists()   # only this name's leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.pth.abc123.tmp", "last.pth"]
