"""The ``evreid`` command line.

Each subcommand lives in ``evreid.commands.<name>``: its docstring is the
command's ``--help`` text, ``add_arguments(parser)`` declares the arguments and
``run(args) -> int`` calls one library function and prints its result. Command
modules import only the standard library at module level and do their heavy
imports (torch, OpenCV) inside ``run``, so ``evreid --help`` stays fast. Settings
are ``KEY VALUE`` pairs wherever a command takes them. A new command is one module
plus one line in ``COMMANDS`` (name, module, the one-line help of ``evreid --help``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

from evreid import __version__
from evreid.errors import EvreidError

DOTTED_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(other arguments, KEY VALUE overrides): a key is an upper-case dotted name
    (``SOLVER.BASE_LR``) or a top-level config key (``SEED``), wherever it stands,
    so flags may come before or after the overrides."""
    from evreid.config import get_cfg

    defaults = get_cfg()
    top_level = {k for k, v in defaults.items() if not isinstance(v, dict)}
    rest: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        if DOTTED_KEY.match(argv[i]) or argv[i] in top_level:
            overrides += argv[i:i + 2]
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    return rest, overrides

# name -> (module, one-line help). Order is the order of `evreid --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("evreid.commands.demo",
             "end-to-end example: synthetic data -> events -> SDCL vs frames-only -> metrics"),
    "synth": ("evreid.commands.synth", "generate the synthetic benchmark (frames + events)"),
    "simulate": ("evreid.commands.simulate", "simulate DVS events from frames or a dataset"),
    "datasets": ("evreid.commands.datasets",
                 "print statistics of a dataset (ids, tracklets, frames, cameras, lengths)"),
    "train": ("evreid.commands.train", "train a model (SDCL by default) and evaluate it"),
    "test": ("evreid.commands.test", "evaluate a trained model on a dataset's query / gallery"),
    "evaluate": ("evreid.commands.evaluate",
                 "CMC / mAP / mINP from saved features or a distance matrix"),
    "export": ("evreid.commands.export", "export a trained model (ONNX), checked against torch"),
    "reproduce": ("evreid.commands.reproduce",
                  "re-run a paper table (table1-4, fig6) over several seeds"),
    "viz": ("evreid.commands.viz", "pictures: event frames (red ON / blue OFF) next to frames"),
    "bench": ("evreid.commands.bench", "measure cost and speed (bench model: params, MACs, time)"),
    "events": ("evreid.commands.events",
               "event files: info (format, size, count, rate) and convert between formats"),
    "configs": ("evreid.commands.configs", "list the config presets, or print one"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evreid",
        description="Event-guided video person re-identification (SDCL, CVPR 2023): "
                    "event simulation, datasets, training and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"evreid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text,
                                 description=getattr(module, "__doc__", None) or help_text,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from evreid.parallel import worker_error_line
    from evreid.utils import tune_allocator

    tune_allocator()
    parser = build_parser()
    as_program = argv is None      # the `evreid` process itself, not a call from Python
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    if hasattr(args, "opts"):
        args.opts = overrides
    elif overrides:  # this command takes no overrides: let argparse judge the tokens
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from evreid.interrupts import stop_on_ctrl_c

    try:
        with stop_on_ctrl_c():
            return int(args._run(args) or 0)
    except EvreidError as exc:
        print(f"evreid {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evreid {args.command}: interrupted", file=sys.stderr)
        if as_program:
            # the command has stopped and cleaned up; what is left is interpreter
            # teardown, where PyTorch joins DataLoader workers for up to 5 s each
            # (measured: 5-10 s after train had stopped). Leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except OSError as exc:      # a full disk, a folder that became read-only, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"evreid {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = worker_error_line(exc)
        if line is None:
            raise
        print(f"evreid {args.command}: error: {line}", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """An EvreidError's message; a DataLoader worker's re-raised one as its own line."""
    from evreid.parallel import worker_error_line

    return worker_error_line(exc) or " ".join(str(exc).split("\n")).strip()


if __name__ == "__main__":
    raise SystemExit(main())
