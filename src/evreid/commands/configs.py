"""The config presets shipped inside the package: list them, or print one.

examples:
  evreid configs                          # name and one line each
  evreid configs sdcl_paper               # the preset's YAML, to copy and edit
  evreid configs sdcl_cpu --resolved      # every key, as train would run it

Any command that takes --config-file accepts a preset name where it takes a path
(`evreid train --config-file sdcl_cpu`); a file of that name in the working folder
wins over the preset.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None,
                        help="a preset to print (default: list them all)")
    parser.add_argument("--resolved", action="store_true",
                        help="print the whole config: the defaults with the preset applied")


def run(args: argparse.Namespace) -> int:
    from evreid.config import list_presets, load_preset, preset_path

    if args.name is None:
        presets = list_presets()
        width = max(map(len, presets), default=0)
        for name, description in presets.items():
            print(f"{name:<{width}}  {description}")
        return 0
    if args.resolved:
        print(load_preset(args.name).dump(), end="")
    else:
        print(preset_path(args.name).read_text(encoding="utf-8"), end="")
    return 0
