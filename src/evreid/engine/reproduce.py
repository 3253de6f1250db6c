"""The paper's tables as runs: each table is a list of rows, each row a model
(MODEL.ARCH plus overrides) trained and evaluated the same way, over several
seeds. A run whose folder holds the trainer's final ``metrics.json`` for the
same config is reused, so a long table resumes where it was interrupted.

Results: a JSON file with every run (config hash, seed, data seed, metrics,
modality diagnostics of fused models) and its statistics, and a markdown page
with the same statistics: per row and metric the mean, the standard deviation
and the 95 % t-interval over seeds; per row with a reference row (e.g. SDCL
against frames-only) the same for the paired difference, seed by seed
(:mod:`evreid.stats`). A claim needs >= 5 seeds (the default); fewer are
reported with a warning line.

On the synthetic benchmark the protocol of a row (clean / blur / occlusion /
lowlight) picks the generated variant to train and test on; the identities are
the same in every variant. By default every seed also draws its own benchmark
(data seed = run seed), so the interval covers the draw of the identities as
well as the training; ``data_seed`` fixes the data for all seeds instead.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from evreid.config import config_hash
from evreid.errors import EvreidError
from evreid.stats import paired_summary, summarize

#: metrics summarised over seeds (percent, from the evaluator's summary)
METRICS = ("rank1", "rank5", "mAP", "mINP")
#: fewer seeds than this make a description of runs, not a claim
CLAIM_SEEDS = 5


@dataclass(frozen=True)
class Row:
    name: str
    arch: str
    overrides: tuple[str, ...] = ()
    protocol: str = "clean"
    reference: str | None = None   # the row it is compared with, seed by seed


@dataclass(frozen=True)
class Table:
    title: str
    rows: tuple[Row, ...]
    paper: dict = field(default_factory=dict)  # row name -> paper figures (for the page)


def _layers(n: int) -> Row:
    # compared with the demo recipe's 2 layers
    return Row(f"{n} spiking layer{'s' * (n > 1)}", "sdcl", ("MODEL.SNN.LAYERS", str(n)),
               reference=None if n == 2 else "2 spiking layers")


def _mappings(n: int) -> Row:
    # compared with the demo recipe's 3 mappings
    return Row(f"{n} deformable mapping{'s' * (n > 1)}", "sdcl",
               ("MODEL.DEFORM.MAPPINGS", str(n)),
               reference=None if n == 3 else "3 deformable mappings")


def _table3_rows() -> tuple[Row, ...]:
    rows = []
    for protocol in ("clean", "blur", "occlusion", "lowlight"):
        ref = f"frames_only / {protocol}"
        rows += [Row(ref, "frames_only", (), protocol),
                 Row(f"events_only / {protocol}", "events_only", (), protocol, ref),
                 Row(f"sdcl / {protocol}", "sdcl", (), protocol, ref)]
    return tuple(rows)


_FRAMES, _NO_FUSION, _TAP = "frames only", "no fusion (frames only)", "temporal average pooling"


TABLES: dict[str, Table] = {
    "table1": Table("Table 1: frames, events, frames + events", (
        Row(_FRAMES, "frames_only"),
        Row("events only", "events_only", reference=_FRAMES),
        Row("frames + events (SDCL)", "sdcl", reference=_FRAMES),
    )),
    "table2": Table("Table 2: fusion ablation", (
        Row(_NO_FUSION, "frames_only"),
        Row("concat", "fusion_concat", reference=_NO_FUSION),
        Row("addition", "fusion_add", reference=_NO_FUSION),
        Row("attention", "fusion_attention", reference=_NO_FUSION),
        Row("E2F only", "sdcl_e2f_only", reference=_NO_FUSION),
        Row("F2E only", "sdcl_f2e_only", reference=_NO_FUSION),
        Row("E2F + F2E (SDCL)", "sdcl", reference=_NO_FUSION),
    ), paper={"no fusion (frames only)": "85.3 / 78.7", "concat": "84.6 / 77.5",
              "addition": "67.8 / 57.3", "attention": "90.6 / 85.4", "E2F only": "92.7 / 89.9",
              "F2E only": "89.9 / 85.4", "E2F + F2E (SDCL)": "96.9 / 96.5"}),
    "table3": Table("Table 3: degradations (trained and tested on each protocol)",
                    _table3_rows()),
    "table4": Table("Table 4: temporal aggregation", (
        Row(_TAP, "sdcl", ("MODEL.AGG.MODE", "tap")),
        Row("pyramid, 1 level", "sdcl", ("MODEL.AGG.MODE", "pyramid", "MODEL.AGG.LEVELS", "1"),
            reference=_TAP),
        Row("pyramid, 2 levels", "sdcl", ("MODEL.AGG.MODE", "pyramid", "MODEL.AGG.LEVELS", "2"),
            reference=_TAP),
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


def _diagnostics(run_dir: Path, cfg_hash: str) -> dict | None:
    """The modality diagnostics the trainer wrote for this run (fused models), if any."""
    from evreid.engine.diagnostics import ABLATIONS, DIAGNOSTICS

    path = run_dir / DIAGNOSTICS
    if not path.is_file():
        return None
    try:
        diag = json.loads(path.read_text())
        if diag.get("config_hash") != cfg_hash:   # left by a run with another config
            return None
        return {name: dict(diag[name]) for name in ABLATIONS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def table_names() -> list[str]:
    return list(TABLES)


def run_table(name: str, seeds: list[int], out: Path, data_root: Path, base_opts: list[str],
              preset: str = "small", dataset: str = "synthetic", root: str | None = None,
              progress: bool = False, protocol: str | None = None,
              data_seed: int | None = None) -> dict:
    """Train and evaluate every row of a table for every seed; returns the report
    (every run and the statistics of :func:`table_statistics`).

    ``protocol`` (synthetic only) runs every row on that protocol instead of clean,
    e.g. the fusion ablation under blur; tables whose rows set their own protocols
    (table3) refuse it. ``data_seed``: the synthetic benchmark's seed for every
    run; None (default) generates one benchmark per run seed.
    """
    from evreid.config import load_preset
    from evreid.data import build_dataset
    from evreid.data.synthetic import ensure_synthetic
    from evreid.engine.trainer import Trainer

    if name not in TABLES:
        raise EvreidError(f"unknown table {name!r}; choose one of {table_names()}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise EvreidError(f"reproduce: seeds must be distinct and at least one; got {seeds}")
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
            drawn = seed if data_seed is None else data_seed
            if dataset == "synthetic":
                data = ensure_synthetic(data_root, preset, row.protocol, drawn)
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
            run = {"row": row.name, "arch": row.arch, "protocol": row.protocol,
                   "seed": seed, "data_seed": drawn if dataset == "synthetic" else None,
                   "config_hash": config_hash(cfg), "seconds": seconds, **final}
            diagnostics = _diagnostics(run_dir, config_hash(cfg))
            if diagnostics is not None:
                run["diagnostics"] = diagnostics
            runs.append(run)
    report = {"table": name, "title": table.title, "seeds": seeds, "dataset": dataset,
              "preset": preset, "protocol": protocol or "per row",
              "data_seed": "run seed" if data_seed is None else data_seed, "runs": runs,
              "paper": table.paper,
              "references": {r.name: r.reference for r in rows if r.reference}}
    report["statistics"] = table_statistics(report)
    return report


def table_statistics(report: dict) -> dict:
    """Per row: mean, std and 95 % interval of each metric over seeds; per row with a
    reference: the same for the paired difference row - reference (seeds in both);
    per fused row: the metrics with events zeroed and with frames zeroed."""
    by_row: dict[str, dict[int, dict]] = {}
    for run in report["runs"]:
        by_row.setdefault(run["row"], {})[run["seed"]] = run
    rows = {row: {m: summarize([r[m] for r in runs.values()]).to_dict()
                  for m in METRICS if all(m in r for r in runs.values())}
            for row, runs in by_row.items()}
    differences = {}
    for row, ref in (report.get("references") or {}).items():
        if row in by_row and ref in by_row:
            differences[row] = {"reference": ref, **{
                m: paired_summary({s: r[m] for s, r in by_row[row].items()},
                                  {s: r[m] for s, r in by_row[ref].items()})
                for m in METRICS if m in rows[row] and m in rows[ref]}}
    diagnostics = {}
    for row, runs in by_row.items():
        with_diag = {s: r for s, r in runs.items() if "diagnostics" in r}
        if not with_diag:
            continue
        entry = {"full": {m: summarize([r[m] for r in with_diag.values()]).to_dict()
                          for m in ("rank1", "mAP")}}
        for ablation in ("events_zeroed", "frames_zeroed"):
            entry[ablation] = {m: summarize([r["diagnostics"][ablation][m]
                                             for r in with_diag.values()]).to_dict()
                               for m in ("rank1", "mAP")}
            entry[f"drop_{ablation}"] = {
                m: paired_summary({s: r[m] for s, r in with_diag.items()},
                                  {s: r["diagnostics"][ablation][m]
                                   for s, r in with_diag.items()})
                for m in ("rank1", "mAP")}
        diagnostics[row] = entry
    return {"confidence": 0.95, "interval": "Student t over seeds", "rows": rows,
            "differences": differences, "diagnostics": diagnostics}


def _fmt(summary: dict, signed: bool = False) -> str:
    """``mean ± std [low, high]`` of a summary dict (the mean alone for one seed)."""
    sign = "+" if signed else ""
    text = f"{summary['mean']:{sign}.1f}"
    if summary.get("std") is None:
        return text
    return (f"{text} ± {summary['std']:.1f} "
            f"[{summary['ci_low']:{sign}.1f}, {summary['ci_high']:{sign}.1f}]")


def markdown(report: dict) -> str:
    """The report's statistics as markdown: rows (mean ± std [95 % interval], percent),
    paired differences against each row's reference, and the modality diagnostics."""
    stats = report.get("statistics") or table_statistics(report)
    seeds = report["seeds"]
    paper = report.get("paper") or {}
    data_seed = report.get("data_seed", "run seed")
    header = "| row | rank-1 | mAP | mINP | seeds |" + (" paper (mAP / R1) |" if paper else "")
    lines = [f"### {report['title']}", "",
             f"dataset {report['dataset']} ({report['preset']}), protocol "
             f"{report.get('protocol', 'per row')}, seeds {seeds} (data seed: {data_seed}). "
             f"Percent; mean ± std [95 % t-interval of the mean] over seeds.", ""]
    if len(seeds) < CLAIM_SEEDS:
        lines += [f"Only {len(seeds)} seed(s): these figures describe these runs; a claim "
                  f"needs at least {CLAIM_SEEDS}.", ""]
    lines += [header, "|" + " --- |" * (header.count("|") - 1)]
    for row, metrics in stats["rows"].items():
        line = (f"| {row} | {_fmt(metrics['rank1'])} | {_fmt(metrics['mAP'])} | "
                f"{_fmt(metrics['mINP'])} | {metrics['mAP']['n']} |")
        if paper:
            line += f" {paper.get(row, '')} |"
        lines.append(line)
    if stats["differences"]:
        lines += ["", "Paired differences, row minus its reference on the same seeds "
                  "(percent points):", "",
                  "| row − reference | Δ rank-1 | Δ mAP | Δ mINP | seeds with Δ mAP > 0 |",
                  "| --- | --- | --- | --- | --- |"]
        for row, diff in stats["differences"].items():
            lines.append(f"| {row} − {diff['reference']} | {_fmt(diff['rank1'], True)} | "
                         f"{_fmt(diff['mAP'], True)} | {_fmt(diff['mINP'], True)} | "
                         f"{diff['mAP']['positive']} / {diff['mAP']['n']} |")
    if stats["diagnostics"]:
        lines += ["", "Modality diagnostics of the fused rows: mAP of the trained model with "
                  "one input zeroed at test time, and the drop from the full mAP:", "",
                  "| row | mAP | events zeroed | drop | frames zeroed | drop |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row, diag in stats["diagnostics"].items():
            lines.append(f"| {row} | {_fmt(diag['full']['mAP'])} | "
                         f"{_fmt(diag['events_zeroed']['mAP'])} | "
                         f"{_fmt(diag['drop_events_zeroed']['mAP'], True)} | "
                         f"{_fmt(diag['frames_zeroed']['mAP'])} | "
                         f"{_fmt(diag['drop_frames_zeroed']['mAP'], True)} |")
    return "\n".join(lines) + "\n"
