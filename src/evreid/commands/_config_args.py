"""Arguments shared by `evreid train` and `evreid test`: a config file, KEY VALUE
overrides, and the seed paper's flags, all resolved into one config."""

from __future__ import annotations

import argparse

# seed flag -> config key (the SDCL reference scripts' command lines keep working)
SEED_FLAGS = {
    "arch": "MODEL.ARCH",
    "dataset": "DATASETS.NAME",
    "root": "DATASETS.ROOT_DIR",
    "seq_len": "INPUT.SEQ_LEN",
    "test_sampler": "TEST.SAMPLER",
    "triplet_distance": "SOLVER.TRIPLET_DISTANCE",
    "test_distance": "TEST.DISTANCE",
    "split_id": "DATASETS.SPLIT_ID",
    "output": "OUTPUT_DIR",
    "seed": "SEED",
}

TRUST_HELP = ("accept a checkpoint that is not plain data (e.g. an evreid checkpoint from "
              "before format 2) by fully unpickling it, which runs any code the file holds; "
              "only for files you made or trust. It is converted to the plain format in memory")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", "--config_file", dest="config_file", default=None,
                        help="YAML config (may inherit another with _BASE_) or a preset "
                             "name: sdcl_paper, sdcl_cpu, ... (evreid configs)")
    for flag, key in SEED_FLAGS.items():
        names = [f"--{flag}"] + ([f"--{flag.replace('_', '-')}"] if "_" in flag else [])
        parser.add_argument(*names, dest=flag, default=None, help=f"sets {key}")
    parser.add_argument("opts", nargs="*",
                        help="KEY VALUE overrides, e.g. SOLVER.MAX_EPOCHS 20")


def config_from_args(args: argparse.Namespace):
    from evreid.config import load_config
    opts = list(args.opts or [])
    for flag, key in SEED_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            opts += [key, value]
    return load_config(args.config_file, opts)


def parse_splits(text: str | None, default: int) -> list[int]:
    """``"3"``, ``"0-9"``, ``"0,2,5"`` or ``"all"`` (= 0-9) -> split ids."""
    from evreid.errors import EvreidError

    if text is None:
        return [default]
    if text == "all":
        return list(range(10))
    splits: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            splits.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise EvreidError(f"--splits must look like 3, 0-9, 0,2,5 or all; got {text!r}") from None
    return splits
