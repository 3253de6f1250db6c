"""Training engine: schedule, resume after SIGKILL, DDP, NaN stop, checkpoint errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.config import load_config
from evreid.data import build_dataset_from_cfg
from evreid.engine.checkpoint import (
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from evreid.engine.distributed import DistInfo, resolve_device
from evreid.engine.solver import lr_factor
from evreid.engine.trainer import Trainer
from evreid.errors import EvreidError


def test_lr_schedule_warmup_then_steps():
    f = [lr_factor(e, 4, 0.01, [6, 8], 0.1) for e in range(10)]
    assert f[0] == pytest.approx(0.01) and f[2] == pytest.approx(0.505)
    assert f[4] == f[5] == 1.0 and f[6] == pytest.approx(0.1) and f[9] == pytest.approx(0.01)


@pytest.mark.parametrize("gpus, procs, expected", [
    (0, 1, "cpu"), (1, 1, "cuda:0"), (1, 2, "cpu"), (2, 2, "cuda:1"), (4, 2, "cuda:1")])
def test_auto_device_gives_every_local_process_a_gpu_or_none(monkeypatch, gpus, procs,
                                                             expected):
    # found on a 1-GPU machine: torchrun --nproc_per_node 2 sent rank 1 to cuda:1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(procs))
    info = DistInfo(rank=procs - 1, world_size=procs, local_rank=procs - 1)
    assert str(resolve_device("auto", info)) == expected


def test_cuda_device_with_too_few_gpus_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(EvreidError, match="local rank 1 and only 1 CUDA device.*"
                                          "nproc_per_node 1"):
        resolve_device("cuda", DistInfo(rank=1, world_size=2, local_rank=1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EvreidError, match="no CUDA device"):
        resolve_device("cuda")


def test_resume_on_fewer_gpus_restores_the_ones_there(monkeypatch):
    states = rng_states()
    states["cuda"] = [torch.ByteTensor([0]), torch.ByteTensor([1])]   # saved on 2 GPUs
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: calls.append((int(s[0]), i)))
    restore_rng_states(states)
    assert calls == [(0, 0)]


def tiny_cfg(root, out, epochs=3, extra=()):
    return load_config(None, TINY_TRAIN_OPTS + ["DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR",
                                                str(out), "SOLVER.MAX_EPOCHS", str(epochs),
                                                *extra])


def train_cmd(root, out, epochs, *flags):
    opts = TINY_TRAIN_OPTS + ["DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR", str(out),
                              "SOLVER.MAX_EPOCHS", str(epochs), "DETERMINISTIC", "True"]
    return [sys.executable, "-m", "evreid", "train", "--no-progress", *flags, *opts]


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


@pytest.mark.slow
def test_sigkill_and_resume_matches_uninterrupted(tmp_path):
    make_tiny_reid(tmp_path / "data", ids=16, frames=8)
    root = tmp_path / "data"
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(train_cmd(root, full, 6), check=True, env=env(), capture_output=True)
    proc = subprocess.Popen(train_cmd(root, killed, 6), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    log = killed / "train_log.csv"
    while time.time() < deadline:  # kill once two epochs are logged (mid-run)
        if log.is_file() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    resumed = subprocess.run(train_cmd(root, killed, 6, "--resume"), env=env(),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["final"] == b["final"]
    state_a = torch.load(full / "last.pth", weights_only=True)["model"]
    state_b = torch.load(killed / "last.pth", weights_only=True)["model"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.mark.slow
def test_ddp_two_processes_matches_single(tmp_path):
    root = make_tiny_reid(tmp_path / "data", ids=16, frames=8).parent
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    batch = ["DATALOADER.IMS_PER_BATCH", "8"]  # global: 4 ids x 2; 2 ids per rank
    subprocess.run(train_cmd(root, single, 2) + batch, check=True, env=env(),
                   capture_output=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "evreid", *train_cmd(root, ddp, 2)[3:], *batch]
    result = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, [l for l in result.stderr.splitlines() if "rror" in l][:6]
    a = json.loads((single / "metrics.json").read_text())["final"]
    b = json.loads((ddp / "metrics.json").read_text())["final"]
    # same global batches; per-rank BatchNorm statistics and triplet mining differ
    for key in ("rank1", "mAP"):
        assert abs(a[key] - b[key]) <= 25.0, (a, b)


@pytest.mark.slow
def test_nan_loss_stops_with_checkpoint_intact(tmp_path):
    root = make_tiny_reid(tmp_path / "data").parent
    out = tmp_path / "run"
    trainer = Trainer(tiny_cfg(root, out, epochs=2), build_dataset_from_cfg(
        tiny_cfg(root, out)), out, show_progress=False)
    trainer.train()
    before = (out / "last.pth").read_bytes()
    cfg = tiny_cfg(root, out, epochs=3, extra=["SOLVER.BASE_LR", "1e30"])
    trainer = Trainer(cfg, build_dataset_from_cfg(cfg), out, resume=True, show_progress=False,
                      allow_config_change=True)   # BASE_LR differs from the checkpoint's
    for p in trainer.model.parameters():  # poison the weights: the loss becomes NaN
        p.data.fill_(float("nan"))
    with pytest.raises(EvreidError, match=r"loss became nan at epoch 3.*last good checkpoint"):
        trainer.train()
    assert (out / "last.pth").read_bytes() == before


def test_checkpoint_errors(tmp_path):
    with pytest.raises(EvreidError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pth")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(EvreidError, match="cannot read checkpoint"):
        load_checkpoint(broken)
    save_checkpoint(tmp_path / "a.pth", arch="frames_only", model={})
    with pytest.raises(EvreidError, match="is for MODEL.ARCH 'frames_only'.*says 'sdcl'"):
        load_checkpoint(tmp_path / "a.pth", arch="sdcl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pth", "broken.pth"]


def test_resume_without_checkpoint(tmp_path):
    root = make_tiny_reid(tmp_path / "data").parent
    cfg = tiny_cfg(root, tmp_path / "run")
    with pytest.raises(EvreidError, match="cannot resume: no checkpoint"):
        Trainer(cfg, build_dataset_from_cfg(cfg), tmp_path / "run", resume=True)


@pytest.mark.slow
def test_resume_refuses_changed_training_keys_unless_allowed(tmp_path):
    # found: resume with SOLVER.BASE_LR 0.01 exited 0, config.yaml said 0.01, the run kept
    # the checkpoint's 0.001 (the optimiser state carries the old rate)
    root = make_tiny_reid(tmp_path / "data").parent
    out = tmp_path / "run"
    cfg = tiny_cfg(root, out, epochs=2)
    Trainer(cfg, build_dataset_from_cfg(cfg), out, show_progress=False).train()
    longer = tiny_cfg(root, out, epochs=3)                 # more epochs: always allowed
    assert Trainer(longer, build_dataset_from_cfg(longer), out, resume=True,
                   show_progress=False).start_epoch == 2
    changed = tiny_cfg(root, out, epochs=3, extra=["SOLVER.BASE_LR", "0.01",
                                                    "SOLVER.WEIGHT_DECAY", "0.0"])
    with pytest.raises(EvreidError) as info:
        Trainer(changed, build_dataset_from_cfg(changed), out, resume=True)
    assert str(info.value) == (
        f"cannot resume {out / 'last.pth'}: the config differs from the checkpoint's in "
        f"SOLVER.BASE_LR 0.001 -> 0.01, SOLVER.WEIGHT_DECAY 0.0005 -> 0.0; restore those "
        f"values, or pass --allow-config-change to continue with the new ones")
    trainer = Trainer(changed, build_dataset_from_cfg(changed), out, resume=True,
                      show_progress=False, allow_config_change=True)
    group = trainer.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(0.01) and group["weight_decay"] == 0.0


def test_flags_may_follow_overrides(tmp_path, capsys):
    from evreid.cli import main

    root = make_tiny_reid(tmp_path / "data").parent
    out = tmp_path / "run"
    opts = TINY_TRAIN_OPTS + ["DATASETS.ROOT_DIR", str(root), "SOLVER.MAX_EPOCHS", "1",
                              "OUTPUT_DIR", str(out)]
    assert main(["train", *opts, "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"]
    assert main(["train", *opts, "--resume", "--no-progress"]) == 0  # nothing left to run


@pytest.mark.slow
def test_train_and_test_commands(tmp_path, capsys):
    from evreid.cli import main

    root = make_tiny_reid(tmp_path / "data").parent
    out = tmp_path / "run"
    opts = TINY_TRAIN_OPTS + ["DATASETS.ROOT_DIR", str(root), "SOLVER.MAX_EPOCHS", "2"]
    assert main(["train", "--no-progress", "--json", "--output", str(out), *opts]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["runs"]["frames_only"]) >= {"rank1", "mAP", "mINP"}
    for name in ("config.yaml", "last.pth", "best.pth", "metrics.json", "train_log.csv",
                 "eval_log.csv"):
        assert (out / name).is_file(), name
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:  # with the optional package, losses / lr / metrics also go to TensorBoard
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert main(["test", "--config-file", str(out / "config.yaml"), "--json",
                 "TEST.SAMPLER", "dense"]) == 0
    tested = json.loads(capsys.readouterr().out)
    assert tested["sampler"] == "dense" and (out / "features.npz").is_file()
    assert main(["evaluate", str(out / "features.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] == pytest.approx(tested["mAP"])


def _train_cli(root, out, *extra):
    from evreid.cli import main

    return main(["train", "--no-progress", "--output", str(out), *TINY_TRAIN_OPTS,
                 "DATASETS.ROOT_DIR", str(root), "SOLVER.MAX_EPOCHS", "1", *extra])


def test_train_bad_key_is_one_line_and_writes_nothing(tmp_path, capsys):
    root = make_tiny_reid(tmp_path / "data").parent
    assert _train_cli(root, tmp_path / "run", "SOLVER.BASE_RL", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean SOLVER.BASE_LR" in err
    assert not (tmp_path / "run").exists()


def test_train_corrupt_image_is_one_line(tmp_path, capsys):
    base = make_tiny_reid(tmp_path / "data")
    folder = base / "prid_2011" / "multi_shot" / "cam_a" / "person_0001"
    for frame in folder.iterdir():  # every frame: whichever one the sampler picks
        frame.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bad = folder
    assert _train_cli(base.parent, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read image {bad}" in err
    assert not (tmp_path / "run" / "last.pth").exists()


def test_train_truncated_event_file_is_one_line(tmp_path, capsys):
    base = make_tiny_reid(tmp_path / "data")
    from evreid.cli import main

    assert main(["simulate", "--dataset", "prid2011", "--root", str(base.parent),
                 "--workers", "1"]) == 0
    capsys.readouterr()
    victim = base / "events" / "cam_a" / "person_0001.evs"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    assert _train_cli(base.parent, tmp_path / "run", "DATASETS.NAME", "prid2011_event",
                      "EVENTS.ENABLED", "True", "MODEL.ARCH", "sdcl") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "person_0001.evs" in err
    assert not (tmp_path / "run" / "last.pth").exists()


def test_amp_dtype_names_the_autocast_dtype_and_its_loss_scaling():
    import torch

    from evreid.config import get_cfg
    from evreid.engine.precision import amp_dtype, needs_loss_scaling
    from evreid.errors import EvreidError

    cfg = get_cfg()
    assert amp_dtype(cfg) is torch.float16 and needs_loss_scaling(torch.float16)
    cfg.merge_from_list(["SOLVER.AMP_DTYPE", "bfloat16"])
    assert amp_dtype(cfg) is torch.bfloat16 and not needs_loss_scaling(torch.bfloat16)
    cfg.merge_from_list(["SOLVER.AMP_DTYPE", "half"])
    with pytest.raises(EvreidError, match="SOLVER.AMP_DTYPE 'half'"):
        amp_dtype(cfg)


@pytest.mark.slow
def test_train_reports_its_whole_wall_time(tmp_path, monkeypatch):
    root = make_tiny_reid(tmp_path / "data").parent
    out = tmp_path / "run"
    cfg = tiny_cfg(root, out, epochs=3)
    trainer = Trainer(cfg, build_dataset_from_cfg(cfg), out, show_progress=False)
    step, calls = trainer._train_step, []

    def slow_step(batch):           # every step at least 50 ms: a known lower bound
        calls.append(1)
        time.sleep(0.05)
        return step(batch)

    monkeypatch.setattr(trainer, "_train_step", slow_step)
    result = trainer.train()
    assert len(calls) >= 3 and result["seconds"] >= 0.05 * len(calls)
    assert json.loads((out / "metrics.json").read_text())["seconds"] == result["seconds"]
