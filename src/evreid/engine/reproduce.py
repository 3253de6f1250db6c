"""The paper's tables as runs: each table is a list of rows, each row a model
(MODEL.ARCH plus overrides) trained and evaluated the same way, over several
seeds. Results: a markdown table (mean +- std) and a JSON file with every run's
config hash, seed and metrics. A run whose folder holds the trainer's final
``metrics.json`` for the same config is reused, so a long table resumes where
it was interrupted.

On the synthetic benchmark the protocol of a row (clean / blur / occlusion /
lowlight) picks the generated variant to train and test on; the identities are
the same in every variant.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evreid.config import config_hash
from evreid.errors import EvreidError


@dataclass(frozen=True)
class Row:
    name: str
    arch: str
    overrides: tuple[str, ...] = ()
    protocol: str = "clean"


@dataclass(frozen=True)
class Table:
    title: str
    rows: tuple[Row, ...]
    paper: dict = field(default_factory=dict)  # row name -> paper figures (for the page)


def _layers(n: int) -> Row:
    return Row(f"{n} spiking layer{'s' * (n > 1)}", "sdcl", ("MODEL.SNN.LAYERS", str(n)))


def _mappings(n: int) -> Row:
    return Row(f"{n} deformable mapping{'s' * (n > 1)}", "sdcl", ("MODEL.DEFORM.MAPPINGS", str(n)))


TABLES: dict[str, Table] = {
    "table1": Table("Table 1: frames, events, frames + events", (
        Row("frames only", "frames_only"),
        Row("events only", "events_only"),
        Row("frames + events (SDCL)", "sdcl"),
    )),
    "table2": Table("Table 2: fusion ablation", (
        Row("no fusion (frames only)", "frames_only"),
        Row("concat", "fusion_concat"),
        Row("addition", "fusion_add"),
        Row("attention", "fusion_attention"),
        Row("E2F only", "sdcl_e2f_only"),
        Row("F2E only", "sdcl_f2e_only"),
        Row("E2F + F2E (SDCL)", "sdcl"),
    ), paper={"no fusion (frames only)": "85.3 / 78.7", "concat": "84.6 / 77.5",
              "addition": "67.8 / 57.3", "attention": "90.6 / 85.4", "E2F only": "92.7 / 89.9",
              "F2E only": "89.9 / 85.4", "E2F + F2E (SDCL)": "96.9 / 96.5"}),
    "table3": Table("Table 3: degradations", tuple(
        Row(f"{arch} / {protocol}", arch, (), protocol)
        for protocol in ("clean", "blur", "occlusion", "lowlight")
        for arch in ("frames_only", "sdcl"))),
    "table4": Table("Table 4: temporal aggregation", (
        Row("temporal average pooling", "sdcl", ("MODEL.AGG.MODE", "tap")),
        Row("pyramid, 1 level", "sdcl", ("MODEL.AGG.MODE", "pyramid", "MODEL.AGG.LEVELS", "1")),
        Row("pyramid, 2 levels", "sdcl", ("MODEL.AGG.MODE", "pyramid", "MODEL.AGG.LEVELS", "2")),
    )),
    "fig6": Table("Fig. 6: spiking layers and event deformable mappings",
                  tuple(_layers(n) for n in (1, 2, 3, 4))
                  + tuple(_mappings(n) for n in (1, 2, 3, 4))),
}


def _finished_run(run_dir: Path, cfg_hash: str) -> dict | None:
    """What a finished run with this config left (the trainer's ``metrics.json``),
    or None: no run there, an unfinished one, or one made with another config."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if metrics.get("config_hash") != cfg_hash or not isinstance(metrics.get("final"), dict):
        return None
    return metrics


def table_names() -> list[str]:
    return list(TABLES)


def run_table(name: str, seeds: list[int], out: Path, data_root: Path, base_opts: list[str],
              preset: str = "small", dataset: str = "synthetic", root: str | None = None,
              progress: bool = False, protocol: str | None = None) -> dict:
    """Train and evaluate every row of a table for every seed; returns the report.

    ``protocol`` (synthetic only) runs every row on that protocol instead of clean,
    e.g. the fusion ablation under blur; tables whose rows set their own protocols
    (table3) refuse it.
    """
    from evreid.config import load_preset
    from evreid.data import build_dataset
    from evreid.data.synthetic import ensure_synthetic
    from evreid.engine.trainer import Trainer

    if name not in TABLES:
        raise EvreidError(f"unknown table {name!r}; choose one of {table_names()}")
    table = TABLES[name]
    rows = table.rows
    if protocol is not None:
        if dataset != "synthetic":
            raise EvreidError(f"--protocol {protocol} needs the synthetic benchmark, not "
                              f"{dataset}")
        if any(row.protocol != "clean" for row in rows):
            raise EvreidError(f"{name} sets a protocol per row; --protocol does not apply")
        rows = tuple(dataclasses.replace(row, protocol=protocol) for row in rows)
    runs = []
    for row in rows:
        if dataset != "synthetic" and row.protocol != "clean":
            raise EvreidError(f"{name} row {row.name!r} needs the synthetic {row.protocol} "
                              f"protocol; it cannot run on {dataset}")
        for seed in seeds:
            if dataset == "synthetic":
                data = ensure_synthetic(data_root, preset, row.protocol, 0)
            else:
                data = Path(root or "")
            folder = row.name.replace(" / ", "_").replace(" ", "_")
            if protocol is not None:
                folder += f"_{protocol}"
            run_dir = out / name / f"{folder}_seed{seed}"
            cfg = load_preset("demo", ["MODEL.ARCH", row.arch, "SEED", str(seed), "DATASETS.NAME",
                               dataset, "DATASETS.ROOT_DIR", str(data), "OUTPUT_DIR",
                               str(run_dir), *row.overrides, *base_opts])
            finished = _finished_run(run_dir, config_hash(cfg))
            if finished is not None:       # resume: a run that ended before is reused
                final, seconds = finished["final"], finished.get("seconds")
            else:
                trainer = Trainer(cfg, build_dataset(dataset, data), run_dir,
                                  show_progress=progress)
                result = trainer.train()
                final, seconds = result["final"], result["seconds"]
            runs.append({"row": row.name, "arch": row.arch, "protocol": row.protocol,
                         "seed": seed, "config_hash": config_hash(cfg), "seconds": seconds,
                         **final})
    return {"table": name, "title": table.title, "seeds": seeds, "dataset": dataset,
            "preset": preset, "protocol": protocol or "per row", "runs": runs,
            "paper": table.paper}


def markdown(report: dict) -> str:
    """mean +- std of rank-1 and mAP per row (percent), with the paper's figures if any."""
    rows: dict[str, list[dict]] = {}
    for run in report["runs"]:
        rows.setdefault(run["row"], []).append(run)
    paper = report.get("paper") or {}
    header = "| row | rank-1 | mAP | mINP | seeds |" + (" paper (mAP / R1) |" if paper else "")
    lines = [f"### {report['title']}", "",
             f"dataset {report['dataset']} ({report['preset']}), protocol "
             f"{report.get('protocol', 'per row')}, seeds {report['seeds']}", "",
             header, "|" + " --- |" * (header.count("|") - 1)]
    for row, runs in rows.items():
        def fmt(key: str, runs=runs) -> str:
            values = np.array([r[key] for r in runs])
            return f"{values.mean():.1f} ± {values.std():.1f}"
        line = f"| {row} | {fmt('rank1')} | {fmt('mAP')} | {fmt('mINP')} | {len(runs)} |"
        if paper:
            line += f" {paper.get(row, '')} |"
        lines.append(line)
    return "\n".join(lines) + "\n"
