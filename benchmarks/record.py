"""Record one benchmark result for the results page (benchmarks/RESULTS.md).

Runs COMMAND, which prints one JSON document on stdout (every ``bench_*.py --json``,
``evreid demo --json``, ``evreid bench ... --json``, ``evreid reproduce ... --json``),
and writes ``benchmarks/results/NAME.json`` atomically with where and how it ran:

    python benchmarks/record.py NAME -- COMMAND...
    python benchmarks/record.py NAME --from-file OUT.json --command "COMMAND" \
        [--commit abc1234] [--date 2026-12-06T05:00:00Z]
    python benchmarks/record.py demo_seeds --per-seed --from-file runs/seed*/demo_metrics.json \
        --command "evreid demo --seed S --json ..."

A command that fails (non-zero status, or no JSON on stdout) writes nothing and
the recorder exits non-zero. ``--from-file`` wraps a JSON output made earlier or
elsewhere (e.g. several seeds run in parallel); its command is given with
``--command``, and ``--commit`` / ``--date`` name the run's own code and time;
``--per-seed`` combines one output per seed (e.g. seeds run in parallel) into
{"seeds": {seed: output}} with the fields they share.
Then ``python benchmarks/report.py`` regenerates the page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from evreid.utils import atomic_write_json

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# the code a figure depends on; the page and its JSON are outputs, not code
CODE_PATHS = ("src", "benchmarks", ":!benchmarks/results", ":!benchmarks/RESULTS.md")


def dirty_files(repo: Path = REPO) -> list[str]:
    """Tracked files under src/ or benchmarks/ (the results themselves aside) that
    differ from HEAD."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                             *CODE_PATHS], cwd=repo, check=True, capture_output=True,
                            text=True).stdout
    return sorted(line[3:] for line in status.splitlines() if line.strip())


def git_commit(repo: Path = REPO, dirty: list[str] | None = None) -> str:
    """``git rev-parse --short HEAD``, plus ``-dirty`` when :func:`dirty_files` has any."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = dirty_files(repo) if dirty is None else dirty
    return head + ("-dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name: ``lscpu``'s 'Model name', else /proc/cpuinfo's 'model name'."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and value.strip():
                return value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch_version}


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def run_command(command: list[str]) -> tuple[Any, float]:
    """Run ``command`` (stderr passes through) and parse its stdout as one JSON
    document; returns (document, wall seconds). Raises SystemExit on failure."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    except OSError as err:
        raise SystemExit(f"record: cannot run {shlex.join(command)}: {err}") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:])
        raise SystemExit(f"record: the command exited with status {proc.returncode}; "
                         f"nothing written")
    try:
        return json.loads(proc.stdout), wall
    except ValueError as err:
        sys.stderr.write(proc.stdout[-2000:])
        raise SystemExit(f"record: the command's stdout is not one JSON document ({err}); "
                         f"nothing written") from None


def record(name: str, command: list[str], out_dir: Path = RESULTS) -> dict[str, Any]:
    """Run ``command`` and write ``out_dir``/NAME.json; returns the record."""
    dirty = dirty_files()
    commit, date, load_start = git_commit(dirty=dirty), utc_now(), load1()
    result, wall = run_command(command)
    doc = {"name": name, "command": shlex.join(command), "commit": commit, "date": date,
           "machine": machine(), "load": {"start": load_start, "end": load1()},
           "wall_s": round(wall, 1), "result": result}
    if dirty:   # which uncommitted changes the run saw
        doc["dirty"] = dirty
    atomic_write_json(out_dir / f"{name}.json", doc)
    return doc


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"record: cannot read JSON from {path}: {err}") from None


def per_seed(outputs: list[dict]) -> dict[str, Any]:
    """Several runs of one command, one per seed (each output has a "seed" field), as
    {"seeds": {seed: output}} plus the scalar fields all outputs share (e.g. the
    demo's train_protocol)."""
    try:
        seeds = {str(out["seed"]): out for out in outputs}
    except (KeyError, TypeError):
        raise SystemExit("record: --per-seed needs a \"seed\" field in every output") from None
    if len(seeds) != len(outputs):
        raise SystemExit(f"record: --per-seed got a seed twice: {[o['seed'] for o in outputs]}")
    shared = {k: v for k, v in outputs[0].items() if k != "seed"
              and not isinstance(v, dict | list) and all(o.get(k) == v for o in outputs)}
    return {**shared, "seeds": dict(sorted(seeds.items(), key=lambda kv: int(kv[0])))}


def wrap(name: str, paths: list[Path], command: str, commit: str | None = None,
         date: str | None = None, out_dir: Path = RESULTS,
         seeds: bool = False) -> dict[str, Any]:
    """Write ``out_dir``/NAME.json around JSON output made earlier: one file as it is,
    or (``seeds``) one file per seed combined by :func:`per_seed`."""
    outputs = [read_json(p) for p in paths]
    result = per_seed(outputs) if seeds else outputs[0]
    doc = {"name": name, "command": command, "commit": commit or git_commit(),
           "date": date or utc_now(), "machine": machine(), "load": None, "wall_s": None,
           "result": result}
    atomic_write_json(out_dir / f"{name}.json", doc)
    return doc


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, command = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     usage="%(prog)s NAME [options] -- COMMAND...")
    parser.add_argument("name", help="the result's name: benchmarks/results/NAME.json")
    parser.add_argument("--from-file", type=Path, nargs="+", default=None,
                        help="wrap this JSON output instead of running a command")
    parser.add_argument("--per-seed", action="store_true",
                        help="with --from-file: the files are one run per seed (each with a "
                             "\"seed\" field); result = {shared fields, \"seeds\": {seed: "
                             "output}}")
    parser.add_argument("--command", default=None, help="with --from-file: the command run")
    parser.add_argument("--commit", default=None, help="with --from-file: the run's commit")
    parser.add_argument("--date", default=None, help="with --from-file: the run's date (ISO)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(own)
    if not NAME.match(args.name):
        parser.error(f"NAME must match {NAME.pattern}; got {args.name!r}")
    if args.from_file is None:
        if not command:
            parser.error("give the command after --, or --from-file")
        if args.command or args.commit or args.date or args.per_seed:
            parser.error("--command, --commit, --date and --per-seed go with --from-file")
    else:
        if command:
            parser.error("--from-file takes no command after --")
        if not args.command:
            parser.error("--from-file needs --command (the command that made the file)")
        if len(args.from_file) > 1 and not args.per_seed:
            parser.error("several --from-file files need --per-seed")
    return args, command


def main(argv: list[str] | None = None) -> int:
    args, command = parse(sys.argv[1:] if argv is None else argv)
    if args.from_file is not None:
        wrap(args.name, args.from_file, args.command, args.commit, args.date, args.out_dir,
             args.per_seed)
    else:
        record(args.name, command, args.out_dir)
    print(f"wrote {args.out_dir / (args.name + '.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
