"""Ctrl-C: one stops the work within seconds with finished files intact and nothing
half-written; a second one never hangs; a re-run resumes to identical files.

Ctrl-C in a terminal reaches the whole foreground process group (the command and
its workers), so the commands run in a session of their own and SIGINT goes to
the group.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_OPTS, make_tiny_reid
from evreid.errors import EvreidError
from evreid.parallel import imap_unordered

STOP_SECONDS = 5.0


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for(condition, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"finished before the interrupt: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen, twice: bool) -> tuple[float, str]:
    """SIGINT to the group (twice: again 0.3 s later); (seconds until exit, stderr)."""
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    if twice:
        time.sleep(0.3)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the interrupted command hung for 30 s")
    # its workers have stopped too: nothing left running in the group (a zombie that a
    # container's init has not reaped yet has stopped)
    deadline = t0 + STOP_SECONDS
    while running_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not running_in_group(proc.pid)
    return time.monotonic() - t0, err


def running_in_group(pgid: int) -> int:
    ps = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True)
    return sum(1 for state in ps.stdout.split() if not state.startswith("Z"))


def check_status(proc: subprocess.Popen, err: str, command: str, twice: bool) -> None:
    """130 and the one line; a second Ctrl-C that lands while the interpreter is already
    exiting (its handlers reset to the default) ends it by the signal itself."""
    assert proc.returncode in ((130, -signal.SIGINT) if twice else (130,)), err
    assert f"evreid {command}: interrupted" in err.splitlines(), err


@pytest.fixture(scope="module")
def frames_dataset(tmp_path_factory):
    """A PRID-layout dataset of 24 tracklets of 40 160x80 frames (~2 s to simulate)."""
    root = tmp_path_factory.mktemp("interrupt") / "data"
    make_tiny_reid(root, ids=12, frames=40, height=160, width=80)
    return root


def simulate_cmd(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "evreid", "simulate", "--dataset", "prid2011", "--root",
            str(root), "--out", str(out), "--workers", "2"]


@pytest.fixture(scope="module")
def reference_cache(frames_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "events"
    subprocess.run(simulate_cmd(frames_dataset, out), env=env(), check=True,
                   capture_output=True)
    return digests(out)


@pytest.mark.parametrize("twice", [False, True], ids=["one_sigint", "two_sigints"])
def test_simulate_dataset_two_workers_stops_and_resumes(frames_dataset, reference_cache,
                                                        tmp_path, twice):
    out = tmp_path / "events"
    proc = start(simulate_cmd(frames_dataset, out))
    wait_for(lambda: out.is_dir() and any(
        p.is_file() and not p.name.startswith(".") for p in out.rglob("*")), proc)
    seconds, err = interrupt(proc, twice)
    assert seconds < STOP_SECONDS
    check_status(proc, err, "simulate", twice)
    files = digests(out)
    assert not [name for name in files if name.endswith(".tmp") or "/." in name]
    assert 0 < len(files) < len(reference_cache)      # stopped early
    for name, digest in files.items():                # every finished file is complete
        assert reference_cache[name] == digest, name
    subprocess.run(simulate_cmd(frames_dataset, out), env=env(), check=True,
                   capture_output=True)
    assert digests(out) == reference_cache


def train_cmd(root: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "evreid", "train", "--no-progress", *flags, *TINY_TRAIN_OPTS,
            "DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR", str(out), "SOLVER.MAX_EPOCHS", "4",
            "DATALOADER.NUM_WORKERS", "2", "DETERMINISTIC", "True"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(dataset root, run folder of the same training without interruption)."""
    tmp = tmp_path_factory.mktemp("train")
    root = make_tiny_reid(tmp / "data", ids=16, frames=8).parent
    subprocess.run(train_cmd(root, tmp / "full"), env=env(), check=True, capture_output=True)
    return root, tmp / "full"


@pytest.mark.slow
@pytest.mark.parametrize("twice", [False, True], ids=["one_sigint", "two_sigints"])
def test_train_stops_and_resumes(uninterrupted, tmp_path, twice):
    import torch

    root, full = uninterrupted
    run = tmp_path / "run"
    proc = start(train_cmd(root, run))
    wait_for(lambda: (run / "last.pth").is_file(), proc)     # one epoch saved
    seconds, err = interrupt(proc, twice)
    assert seconds < STOP_SECONDS
    check_status(proc, err, "train", twice)
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    torch.load(run / "last.pth", weights_only=True)          # intact
    resumed = subprocess.run(train_cmd(root, run, "--resume"), env=env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(full / "last.pth", weights_only=True)["model"]
    b = torch.load(run / "last.pth", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (run / "train_log.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[i] for i in (0, 1, -1)) for r in rows]   # epoch, step, kind
    assert len(keys) == len(set(keys))


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise EvreidError(f"item {x} is bad")
    return x


def _die_on_two(x: int) -> int:
    if x == 2:
        os._exit(7)
    return x


def test_pool_results_errors_and_dead_workers():
    assert sorted(imap_unordered(_square, range(6), 2)) == [0, 1, 4, 9, 16, 25]
    with pytest.raises(EvreidError, match="^item 3 is bad$"):
        list(imap_unordered(_fail_on_three, range(6), 2))
    with pytest.raises(EvreidError, match=r"^worker process \d+ died \(exit code 7\) on task 2$"):
        list(imap_unordered(_die_on_two, range(6), 2))
    with pytest.raises(EvreidError, match="workers must be >= 1; got 0"):
        list(imap_unordered(_square, range(6), 0))


def test_synth_stops_and_leaves_nothing_half_made(tmp_path):
    out = tmp_path / "synth"
    proc = start([sys.executable, "-m", "evreid", "synth", "--out", str(out), "--preset",
                   "small", "--workers", "2"])
    # interrupt once the workers have written a first tracklet into the staging folder
    wait_for(lambda: any(p.suffix == ".png" for p in tmp_path.rglob("*")), proc)
    seconds, err = interrupt(proc, twice=False)
    assert seconds < STOP_SECONDS
    check_status(proc, err, "synth", twice=False)
    assert list(tmp_path.iterdir()) == []      # no staging folder, no half dataset


def _stubborn(x: int) -> int:
    if x == 0:
        time.sleep(0.5)               # let the other worker start its task
        raise EvreidError("item 0 failed")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # like a long compiled call
    time.sleep(60)
    return x


def test_pool_kills_a_worker_that_does_not_stop_and_reports_its_item():
    abandoned = []
    start_time = time.monotonic()
    with pytest.raises(EvreidError, match="^item 0 failed$"):
        list(imap_unordered(_stubborn, [0, 1], 2, on_abandon=abandoned.append))
    assert abandoned == [1]
    assert time.monotonic() - start_time < STOP_SECONDS
