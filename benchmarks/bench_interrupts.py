"""Seconds from Ctrl-C to a stopped command (target: < 5 s, issue 20).

Ctrl-C in a terminal sends SIGINT to the whole foreground process group; this
starts each command in a session of its own, waits until it is mid-work (a
first event file written, a first epoch saved), sends SIGINT to the group
(and, for "two Ctrl-C", again 0.3 s later) and times until every process of
the group is gone. Exit status 130 is the command's own "interrupted"; -2 means
the second SIGINT found the interpreter already exiting (its handlers reset),
which ends it at once.

    python benchmarks/bench_interrupts.py [--repeats 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TRAIN_OPTS = ["DATASETS.NAME", "synthetic", "MODEL.ARCH", "frames_only", "MODEL.BACKBONE",
              "resnet18", "MODEL.WIDTH_MULT", "0.125", "MODEL.FEAT_DIM", "32",
              "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "INPUT.SEQ_LEN",
              "2", "DATALOADER.IMS_PER_BATCH", "8", "DATALOADER.NUM_INSTANCE", "2",
              "DATALOADER.NUM_WORKERS", "2", "EVENTS.ENABLED", "False", "SOLVER.MAX_EPOCHS",
              "20", "SOLVER.EVAL_PERIOD", "20", "MODEL.PRETRAIN_PATH", "none"]


def evreid(*args: str) -> list[str]:
    return [sys.executable, "-m", "evreid", *args]


def stop_seconds(cmd: list[str], ready, twice: bool) -> tuple[float, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while not ready():
        if proc.poll() is not None:
            raise SystemExit(f"finished before the interrupt: {proc.stderr.read()[-2000:]}")
        time.sleep(0.01)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    if twice:
        time.sleep(0.3)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    while running_in_group(proc.pid):
        time.sleep(0.01)
    return time.monotonic() - t0, proc.returncode


def running_in_group(pgid: int) -> int:
    """Processes of the group that still run (a zombie waiting for init to reap it has
    stopped; a container's init may take seconds to do it)."""
    ps = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True)
    return sum(1 for state in ps.stdout.split() if not state.startswith("Z"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", default="/tmp/evreid_bench_interrupts")
    args = parser.parse_args()
    work = Path(args.work)
    data = work / "synth_small"
    subprocess.run(evreid("synth", "--out", str(data), "--preset", "small", "--no-events",
                          "--json"), check=True, capture_output=True)

    def first_file(folder: Path):
        return lambda: folder.is_dir() and any(
            p.is_file() and not p.name.startswith(".") for p in folder.rglob("*"))

    cases = []
    for twice in (False, True):
        label = "two Ctrl-C" if twice else "one Ctrl-C"
        cases.append((f"simulate --dataset, 2 workers, {label}", twice, lambda out: (
            evreid("simulate", "--dataset", "synthetic", "--root", str(data), "--out",
                   str(out), "--workers", "2"), first_file(out))))
        cases.append((f"train, 2 DataLoader workers, {label}", twice, lambda out: (
            evreid("train", "--no-progress", *TRAIN_OPTS, "DATASETS.ROOT_DIR", str(data),
                   "OUTPUT_DIR", str(out)), lambda: (out / "last.pth").is_file())))
        cases.append((f"synth --preset small, 2 workers, {label}", twice, lambda out: (
            evreid("synth", "--out", str(out), "--preset", "small", "--workers", "2"),
            lambda: any(p.suffix == ".png" for p in out.parent.glob(f".{out.name}.*/**/*")))))
    for name, twice, make in cases:
        results = []
        for i in range(args.repeats):
            out = work / f"run_{len(results)}_{abs(hash(name)) % 10**6}_{i}"
            cmd, ready = make(out)
            results.append(stop_seconds(cmd, ready, twice))
        shown = ", ".join(f"{s:.2f} s (rc {rc})" for s, rc in results)
        print(f"| {name} | {max(s for s, _ in results):.2f} | {shown} |")


if __name__ == "__main__":
    main()
