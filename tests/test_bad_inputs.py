"""What every bad input gets: the project's record, one row per case.

Each CLI row runs ``evreid ...`` (in-process) and asserts exit status 2 and the
exact one line ``evreid <cmd>: error: ...`` on stderr, with no traceback.
Python rows assert the exact EvreidError message of a library call. Paths in
the expected lines are filled from the fixture ({tmp}, {ro}, {prid}, ...).

Rows marked [argparse] are refused by argparse, which prints its usage line
first; their row asserts the error line.

When a row's answer changes on purpose, change the row: the list is the
specification of what a user sees.
"""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import TINY_TRAIN_OPTS, make_tiny_reid, write_png
from evreid.cli import main
from evreid.errors import EvreidError

T = TINY_TRAIN_OPTS


def _readonly_folder(tmp: Path) -> tuple[Path, str]:
    """A folder path where nothing can be written, and the reason the OS gives.

    chmod 555 works for ordinary users; root writes anyway, and then a path under
    /sys (read-only for everyone) is used."""
    folder = tmp / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").write_bytes(b"")
    except OSError as exc:
        return folder, exc.strerror
    (folder / "probe").unlink()
    folder = Path("/sys/evreid-readonly")
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        return folder, exc.strerror
    pytest.skip("no read-only folder on this machine")


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, str]:
    """Inputs shared by the rows, by placeholder name."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    root = make_tiny_reid(tmp / "data")
    frames = tmp / "frames"
    for k in range(3):
        write_png(frames / f"{k:04d}.png", value=40 * k)
    (tmp / "empty").mkdir()
    (tmp / "file.txt").write_text("not a folder\n")
    (tmp / "full").mkdir()
    (tmp / "full" / "x.txt").write_text("x")
    ids = dict(query_pids=np.array([1, 2]), gallery_pids=np.array([1, 2, 3]),
               query_camids=np.array([0, 0]), gallery_camids=np.array([1, 1, 1]))
    rng = np.random.default_rng(0)
    np.savez(tmp / "feats.npz", query_features=rng.normal(size=(2, 4)),
             gallery_features=rng.normal(size=(3, 4)), **ids)
    np.savez(tmp / "zeros.npz", query_features=np.zeros((2, 4)),
             gallery_features=np.zeros((3, 4)), **ids)
    np.savez(tmp / "noquery.npz", query_features=np.zeros((0, 4)),
             gallery_features=rng.normal(size=(3, 4)),
             **{**ids, "query_pids": np.zeros(0, int), "query_camids": np.zeros(0, int)})
    np.savez(tmp / "distmat.npz", distmat=rng.random((2, 3)), **ids)
    np.savez(tmp / "nokeys.npz", query_features=np.zeros((2, 4)))
    np.savez(tmp / "objects.npz", query_pids=np.array([{"a": 1}], dtype=object))
    (tmp / "corrupt.npz").write_bytes(b"this is no zip archive")
    (tmp / "garbage.pth").write_bytes(b"PK\x03\x04 truncated")
    from evreid.events.io import write_events
    from evreid.events.types import Events

    n = 200
    t = np.sort(rng.integers(135_700_000, 135_800_000, n))   # a clock that starts late
    write_events(str(tmp / "late.npz"), Events(t, rng.integers(0, 8, n),
                                               rng.integers(0, 16, n),
                                               rng.choice([-1, 1], n), 8, 16))
    write_events(str(tmp / "wide.npz"), Events(t - 135_700_000, rng.integers(0, 128, n),
                                               rng.integers(0, 128, n),
                                               rng.choice([-1, 1], n), 128, 128))
    ro, reason = _readonly_folder(tmp)
    return {"tmp": str(tmp), "data": str(root.parent), "prid": str(root),
            "frames": str(frames), "ro": str(ro), "reason": reason}


def resume_run(place: dict[str, str]) -> str:
    """A run folder whose last.pth was written with SOLVER.BASE_LR 0.001."""
    from evreid.config import load_config
    from evreid.engine.checkpoint import save_checkpoint

    run = Path(place["tmp"]) / "resume_run"
    if not (run / "last.pth").is_file():
        cfg = load_config(None, T + ["DATASETS.ROOT_DIR", place["data"], "OUTPUT_DIR",
                                     str(run)])
        save_checkpoint(run / "last.pth", arch=cfg.MODEL.ARCH, num_classes=4,
                        config=cfg.dump(), model={})
    return str(run)


RO = "is not writable ({reason})"
NO_SNN = ""

# (id, argv, expected line); argv and line are formatted with the fixture's places
CLI_ROWS = [
    # --- read-only output folders: refused before any work -------------------------
    ("simulate_frames_readonly",
     ["simulate", "--frames", "{frames}", "--out", "{ro}/e.npz"],
     "evreid simulate: error: --out {ro} " + RO),
    ("simulate_dataset_readonly",
     ["simulate", "--dataset", "prid2011", "--root", "{data}", "--out", "{ro}/events"],
     "evreid simulate: error: --out {ro}/events " + RO),
    ("evaluate_out_readonly",
     ["evaluate", "{tmp}/feats.npz", "--out", "{ro}/m.json"],
     "evreid evaluate: error: --out's folder {ro} " + RO),
    ("test_out_readonly",
     ["test", "--out", "{ro}/t", *T, "DATASETS.ROOT_DIR", "{data}"],
     "evreid test: error: --out {ro}/t " + RO),
    ("viz_cmc_readonly",
     ["viz", "cmc", "{tmp}/feats.npz", "--out", "{ro}/c.png"],
     "evreid viz: error: --out's folder {ro} " + RO),
    ("viz_events_readonly",
     ["viz", "events", "--frames", "{frames}", "--out", "{ro}/e.png"],
     "evreid viz: error: --out's folder {ro} " + RO),
    ("synth_readonly",
     ["synth", "--out", "{ro}/s", "--preset", "tiny"],
     "evreid synth: error: --out's parent folder {ro} " + RO),
    ("train_readonly",
     ["train", *T, "DATASETS.ROOT_DIR", "{data}", "OUTPUT_DIR", "{ro}/run"],
     "evreid train: error: OUTPUT_DIR {ro}/run " + RO),
    ("reproduce_readonly",
     ["reproduce", "table1", "--out", "{ro}/rep"],
     "evreid reproduce: error: --out {ro}/rep " + RO),
    ("train_output_under_a_file",
     ["train", *T, "DATASETS.ROOT_DIR", "{data}", "OUTPUT_DIR", "{tmp}/file.txt/run"],
     "evreid train: error: OUTPUT_DIR {tmp}/file.txt/run is not writable (Not a directory)"),
    ("train_output_is_a_file",
     ["train", *T, "DATASETS.ROOT_DIR", "{data}", "OUTPUT_DIR", "{tmp}/file.txt"],
     "evreid train: error: OUTPUT_DIR {tmp}/file.txt is a file, not a folder"),
    # --- config values: range-checked when the config is built ----------------------
    ("base_lr_negative", ["train", "SOLVER.BASE_LR", "-1"],
     "evreid train: error: config key SOLVER.BASE_LR must be a number > 0; got -1.0"),
    ("base_lr_nan", ["train", "SOLVER.BASE_LR", "nan"],
     "evreid train: error: config key SOLVER.BASE_LR in command line expects a number; got "
     "'nan'"),
    ("size_train_one_value", ["train", "INPUT.SIZE_TRAIN", "[128]"],
     "evreid train: error: config key INPUT.SIZE_TRAIN must be [height, width], two "
     "integers > 0; got [128]"),
    ("size_test_zero", ["test", "INPUT.SIZE_TEST", "[0, 128]"],
     "evreid test: error: config key INPUT.SIZE_TEST must be [height, width], two "
     "integers > 0; got [0, 128]"),
    ("seq_len_zero", ["train", "INPUT.SEQ_LEN", "0"],
     "evreid train: error: config key INPUT.SEQ_LEN must be an integer >= 1; got 0"),
    ("seq_len_negative", ["train", "--seq_len", "-3"],
     "evreid train: error: config key INPUT.SEQ_LEN must be an integer >= 1; got -3"),
    ("prob_flip", ["train", "INPUT.PROB_FLIP", "1.5"],
     "evreid train: error: config key INPUT.PROB_FLIP must be a probability in [0, 1]; "
     "got 1.5"),
    ("pixel_std_zero", ["train", "INPUT.PIXEL_STD", "[0.0, 0.2, 0.2]"],
     "evreid train: error: config key INPUT.PIXEL_STD must be three numbers > 0 (R, G, B); "
     "got [0.0, 0.2, 0.2]"),
    ("events_bins_zero", ["train", "EVENTS.BINS", "0"],
     "evreid train: error: config key EVENTS.BINS must be an integer >= 1; got 0"),
    ("events_representation", ["train", "EVENTS.REPRESENTATION", "histogram"],
     "evreid train: error: config key EVENTS.REPRESENTATION must be one of count, voxel; "
     "got 'histogram'"),
    ("device_tpu", ["train", "MODEL.DEVICE", "tpu"],
     "evreid train: error: config key MODEL.DEVICE must be auto, cpu, cuda, cuda:N or mps; "
     "got 'tpu'"),
    ("optimizer", ["train", "SOLVER.OPTIMIZER", "rmsprop"],
     "evreid train: error: config key SOLVER.OPTIMIZER must be Adam or SGD; got 'rmsprop'"),
    ("max_epochs_zero", ["train", "SOLVER.MAX_EPOCHS", "0"],
     "evreid train: error: config key SOLVER.MAX_EPOCHS must be an integer >= 1; got 0"),
    ("steps_unsorted", ["train", "SOLVER.STEPS", "[80, 40]"],
     "evreid train: error: config key SOLVER.STEPS must be a list of epochs >= 1 in "
     "increasing order; got [80, 40]"),
    ("warmup_factor_zero", ["train", "SOLVER.WARMUP_FACTOR", "0"],
     "evreid train: error: config key SOLVER.WARMUP_FACTOR must be a number in (0, 1]; "
     "got 0.0"),
    ("label_smooth_one", ["train", "SOLVER.LABEL_SMOOTH", "1"],
     "evreid train: error: config key SOLVER.LABEL_SMOOTH must be a number in [0, 1); "
     "got 1.0"),
    ("eval_period_zero", ["train", "SOLVER.EVAL_PERIOD", "0"],
     "evreid train: error: config key SOLVER.EVAL_PERIOD must be an integer >= 1; got 0"),
    ("test_distance", ["test", "TEST.DISTANCE", "manhattan"],
     "evreid test: error: config key TEST.DISTANCE must be one of cosine, euclidean; "
     "got 'manhattan'"),
    ("test_sampler", ["test", "--test_sampler", "random"],
     "evreid test: error: config key TEST.SAMPLER must be one of begin_interval, evenly, "
     "dense; got 'random'"),
    ("max_rank_zero", ["test", "TEST.MAX_RANK", "0"],
     "evreid test: error: config key TEST.MAX_RANK must be an integer >= 1; got 0"),
    ("seed_negative", ["train", "--seed", "-1"],
     "evreid train: error: config key SEED must be an integer >= 0; got -1"),
    ("split_id_negative", ["train", "DATASETS.SPLIT_ID", "-1"],
     "evreid train: error: config key DATASETS.SPLIT_ID must be an integer >= 0; got -1"),
    ("batch_not_multiple", ["train", "DATALOADER.IMS_PER_BATCH", "6"],
     "evreid train: error: config key DATALOADER.IMS_PER_BATCH (6) must be a multiple of "
     "DATALOADER.NUM_INSTANCE (4)"),
    ("embed_dim_heads", ["train", "MODEL.ALIGN.EMBED_DIM", "60"],
     "evreid train: error: config key MODEL.ALIGN.EMBED_DIM (60) must be a multiple of "
     "MODEL.ALIGN.HEADS (8)"),
    ("num_workers_negative", ["train", "DATALOADER.NUM_WORKERS", "-1"],
     "evreid train: error: config key DATALOADER.NUM_WORKERS must be an integer >= 0; "
     "got -1"),
    ("unknown_key", ["train", "SOLVER.BASE_RL", "0.1"],
     "evreid train: error: unknown config key SOLVER.BASE_RL in command line; did you mean "
     "SOLVER.BASE_LR?"),
    ("wrong_type", ["train", "SOLVER.MAX_EPOCHS", "ten"],
     "evreid train: error: config key SOLVER.MAX_EPOCHS in command line expects an "
     "integer; got 'ten'"),
    ("config_file_missing", ["train", "--config-file", "{tmp}/none.yaml"],
     "evreid train: error: config file not found: {tmp}/none.yaml"),
    ("splits_bad", ["train", "--splits", "x-y"],
     "evreid train: error: --splits must look like 3, 0-9, 0,2,5 or all; got 'x-y'"),
    # --- resume ------------------------------------------------------------------------
    ("resume_no_checkpoint",
     ["train", "--resume", *T, "DATASETS.ROOT_DIR", "{data}", "OUTPUT_DIR", "{tmp}/fresh"],
     "evreid train: error: cannot resume: no checkpoint {tmp}/fresh/last.pth"),
    ("resume_changed_lr",
     ["train", "--resume", "--no-progress", *T, "DATASETS.ROOT_DIR", "{data}",
      "OUTPUT_DIR", "{resume_run}", "SOLVER.BASE_LR", "0.01"],
     "evreid train: error: cannot resume {resume_run}/last.pth: the config differs from the "
     "checkpoint's in SOLVER.BASE_LR 0.001 -> 0.01; restore those values, or pass "
     "--allow-config-change to continue with the new ones"),
    # --- checkpoints -------------------------------------------------------------------
    ("test_checkpoint_missing",
     ["test", "--checkpoint", "{tmp}/none.pth", "--out", "{tmp}/t", *T],
     "evreid test: error: checkpoint not found: {tmp}/none.pth"),
    ("test_checkpoint_garbage",
     ["test", "--checkpoint", "{tmp}/garbage.pth", "--out", "{tmp}/t", *T],
     "evreid test: error: cannot read checkpoint {tmp}/garbage.pth: not a complete torch "
     "checkpoint (its zip archive is truncated or corrupt)"),
    ("export_checkpoint_missing",
     ["export", "onnx", "--checkpoint", "{tmp}/none.pth", "--out", "{tmp}/m.onnx"],
     "evreid export: error: checkpoint not found: {tmp}/none.pth"),
    ("viz_features_checkpoint_missing",
     ["viz", "features", "--checkpoint", "{tmp}/none.pth", "--out", "{tmp}/f.png"],
     "evreid viz: error: checkpoint not found: {tmp}/none.pth"),
    # --- simulate ------------------------------------------------------------------------
    ("simulate_device_tpu",
     ["simulate", "--frames", "{frames}", "--out", "{tmp}/e.npz", "--device", "tpu"],
     "evreid simulate: error: unknown --device 'tpu'; choose numpy, numba or cpu"),
    ("simulate_workers_negative",
     ["simulate", "--dataset", "prid2011", "--root", "{data}", "--workers", "-1"],
     "evreid simulate: error: --workers must be >= 1; got -1"),
    ("simulate_fps_inf",
     ["simulate", "--frames", "{frames}", "--out", "{tmp}/e.npz", "--fps", "inf"],
     "evreid simulate: error: --fps must be a finite number > 0; got inf"),
    ("simulate_fps_zero",
     ["simulate", "--frames", "{frames}", "--out", "{tmp}/e.npz", "--fps", "0"],
     "evreid simulate: error: --fps must be a finite number > 0; got 0.0"),
    ("simulate_frames_is_a_file",
     ["simulate", "--frames", "{tmp}/file.txt", "--out", "{tmp}/e.npz"],
     "evreid simulate: error: --frames {tmp}/file.txt is a file; give the folder of frames"),
    ("simulate_frames_missing",
     ["simulate", "--frames", "{tmp}/nowhere", "--out", "{tmp}/e.npz"],
     "evreid simulate: error: frame folder {tmp}/nowhere does not exist"),
    ("simulate_frames_empty",
     ["simulate", "--frames", "{tmp}/empty", "--out", "{tmp}/e.npz"],
     "evreid simulate: error: {tmp}/empty: no image files (.jpg, .jpeg, .png, .bmp)"),
    ("simulate_no_source", ["simulate", "--out", "{tmp}/e.npz"],
     "evreid simulate: error: give exactly one source: --frames DIR or --dataset NAME "
     "--root DIR"),
    ("simulate_frames_without_out", ["simulate", "--frames", "{frames}"],
     "evreid simulate: error: --frames needs --out FILE (.evs, .npz, .h5, .aedat, or a "
     "folder for .mat)"),
    ("simulate_dataset_without_root", ["simulate", "--dataset", "prid2011"],
     "evreid simulate: error: --dataset needs --root DIR"),
    ("simulate_shard", ["simulate", "--dataset", "prid2011", "--root", "{data}", "--shard",
                        "3/2"],
     "evreid simulate: error: --shard '3/2': need 0 <= i < n"),
    ("simulate_set_unknown",
     ["simulate", "--frames", "{frames}", "--out", "{tmp}/e.npz", "--set", "speed=2"],
     None),   # filled below: the list of settings comes from SimulatorConfig
    ("simulate_set_not_a_number",
     ["simulate", "--frames", "{frames}", "--out", "{tmp}/e.npz", "--set", "cutoff_hz=abc"],
     "evreid simulate: error: --set 'cutoff_hz=abc': cutoff_hz needs a number"),
    ("simulate_workers_not_int [argparse]",
     ["simulate", "--dataset", "prid2011", "--workers", "two"],
     "evreid simulate: error: argument --workers: invalid int value: 'two'"),
    # --- synth -----------------------------------------------------------------------
    ("synth_workers_zero", ["synth", "--out", "{tmp}/s", "--workers", "0"],
     "evreid synth: error: --workers must be >= 1; got 0"),
    ("synth_out_not_empty", ["synth", "--out", "{tmp}/full", "--preset", "tiny"],
     "evreid synth: error: synthetic: {tmp}/full exists and is not empty (and holds no "
     "matching dataset_card.json); choose another --out or pass --force to replace it"),
    ("synth_seed [argparse]", ["synth", "--out", "{tmp}/s", "--seed", "x"],
     "evreid synth: error: argument --seed: invalid int value: 'x'"),
    # --- evaluate / metrics ----------------------------------------------------------
    ("evaluate_zero_queries", ["evaluate", "{tmp}/noquery.npz"],
     "evreid evaluate: error: no queries to evaluate (the query set is empty)"),
    ("viz_cmc_zero_queries", ["viz", "cmc", "{tmp}/noquery.npz", "--out", "{tmp}/c.png"],
     "evreid viz: error: no queries to evaluate (the query set is empty)"),
    ("evaluate_all_zero_features", ["evaluate", "{tmp}/zeros.npz"],
     "evreid evaluate: error: {tmp}/zeros.npz: every query is at the same distance from "
     "every gallery item (degenerate features, e.g. all zero); the ranking would be "
     "arbitrary, so no metrics are reported"),
    ("evaluate_missing", ["evaluate", "{tmp}/none.npz"],
     "evreid evaluate: error: features file not found: {tmp}/none.npz"),
    ("evaluate_corrupt_npz", ["evaluate", "{tmp}/corrupt.npz"],
     "evreid evaluate: error: cannot read features file {tmp}/corrupt.npz: not an .npz "
     "archive of arrays (truncated, or another kind of file)"),
    ("evaluate_object_npz", ["evaluate", "{tmp}/objects.npz"],
     "evreid evaluate: error: cannot read features file {tmp}/objects.npz: it holds Python "
     "objects, not plain arrays (refused: unpickling runs code)"),
    ("evaluate_lacks_keys", ["evaluate", "{tmp}/nokeys.npz"],
     "evreid evaluate: error: features file {tmp}/nokeys.npz lacks ['query_pids', "
     "'gallery_pids', 'query_camids', 'gallery_camids']; it has ['query_features']"),
    ("evaluate_rerank_distmat", ["evaluate", "{tmp}/distmat.npz", "--rerank"],
     "evreid evaluate: error: --rerank needs features; {tmp}/distmat.npz holds a distmat"),
    ("evaluate_max_rank_zero", ["evaluate", "{tmp}/feats.npz", "--max-rank", "0"],
     "evreid evaluate: error: --max-rank must be >= 1; got 0"),
    # --- viz -------------------------------------------------------------------------
    ("viz_events_jpg", ["viz", "events", "--frames", "{frames}", "--out", "{tmp}/x.jpg"],
     "evreid viz: error: --out {tmp}/x.jpg: viz writes PNG images; give a name ending in "
     ".png"),
    ("viz_events_scale_zero",
     ["viz", "events", "--frames", "{frames}", "--out", "{tmp}/x.png", "--scale", "0"],
     "evreid viz: error: --scale must be > 0; got 0.0"),
    ("viz_events_num_frames_zero",
     ["viz", "events", "--frames", "{frames}", "--out", "{tmp}/x.png", "--num-frames", "0"],
     "evreid viz: error: --num-frames must be >= 1; got 0"),
    ("viz_events_recording_clock_offset",
     ["viz", "events", "--frames", "{frames}", "--events", "{tmp}/late.npz", "--out",
      "{tmp}/x.png"],
     "evreid viz: error: {tmp}/late.npz: its events span 135.701-135.8 s but the tracklet's "
     "frame windows span 0-0.08 s, so no frame gets an event (a recording clock offset?); "
     "pass --align-time to shift the events so the first one opens the first frame window"),
    ("viz_events_sensor_size",
     ["viz", "events", "--frames", "{frames}", "--events", "{tmp}/wide.npz", "--out",
      "{tmp}/x.png"],
     "evreid viz: error: {frames}: events are 128x128, frames 8x16"),
    ("viz_events_corrupt_npz",
     ["viz", "events", "--frames", "{frames}", "--events", "{tmp}/corrupt.npz", "--out",
      "{tmp}/x.png"],
     "evreid viz: error: {tmp}/corrupt.npz: truncated or corrupt .npz event file (not an "
     ".npz archive of arrays (truncated, or another kind of file))"),
    ("viz_cmc_labels", ["viz", "cmc", "{tmp}/feats.npz", "--labels", "a,b", "--out",
                        "{tmp}/c.png"],
     "evreid viz: error: --labels names 2 curves for 1 files"),
    ("viz_ranked_queries_zero",
     ["viz", "ranked", "--run", "{tmp}", "--queries", "0", "--out", "{tmp}/r.png"],
     "evreid viz: error: --queries must be >= 1; got 0"),
    ("viz_contact_ids_zero",
     ["viz", "contact", "--root", "{tmp}", "--ids", "0", "--out", "{tmp}/s.png"],
     "evreid viz: error: --ids must be >= 1; got 0"),
    # --- reproduce -------------------------------------------------------------------
    ("reproduce_epochs_zero", ["reproduce", "table1", "--epochs", "0", "--out", "{tmp}/rep"],
     "evreid reproduce: error: --epochs must be >= 1; got 0 (an untrained model's table "
     "would mean nothing)"),
    ("reproduce_seeds_bad", ["reproduce", "table1", "--seeds", "a,b", "--out", "{tmp}/rep"],
     "evreid reproduce: error: --seeds must be comma-separated integers; got 'a,b'"),
    ("reproduce_seeds_empty", ["reproduce", "table1", "--seeds", ",", "--out", "{tmp}/rep"],
     "evreid reproduce: error: --seeds names no seed; got ','"),
    # --- datasets ------------------------------------------------------------------------
    ("datasets_empty_tracklet_folder", ["datasets", "--dataset", "prid2011", "--root",
                                        "{tmp}/emptytracklet"],
     "evreid datasets: error: prid2011: no images in "
     "{tmp}/emptytracklet/prid2011/prid_2011/multi_shot/cam_a/person_0001"),
    ("datasets_truncated_frame", ["datasets", "--dataset", "prid2011", "--root",
                                  "{tmp}/truncated", "--verify"],
     "evreid datasets: error: prid2011: frame {tmp}/truncated/prid2011/prid_2011/multi_shot/"
     "cam_a/person_0001/0002.png of tracklet cam_a/person_0001 is truncated (no end marker)"),
    ("datasets_split_out_of_range", ["datasets", "--dataset", "prid2011", "--root",
                                     "{data}", "--split-id", "5"],
     "evreid datasets: error: prid2011: split_id 5 out of range 0..1"),
]


def _prepare(place: dict[str, str], row_id: str) -> dict[str, str]:
    tmp = Path(place["tmp"])
    if row_id == "resume_changed_lr":
        return {**place, "resume_run": resume_run(place)}
    if row_id == "datasets_empty_tracklet_folder":
        root = tmp / "emptytracklet"
        if not root.exists():
            shutil.copytree(place["prid"], root / "prid2011")
            folder = root / "prid2011/prid_2011/multi_shot/cam_a/person_0001"
            for f in folder.iterdir():
                f.unlink()
    if row_id == "datasets_truncated_frame":
        root = tmp / "truncated"
        if not root.exists():
            shutil.copytree(place["prid"], root / "prid2011")
            frame = root / "prid2011/prid_2011/multi_shot/cam_a/person_0001/0002.png"
            frame.write_bytes(frame.read_bytes()[:-40])
    return place


def _expected_set_unknown() -> str:
    import dataclasses

    from evreid.events.simulator import SimulatorConfig

    names = ", ".join(sorted(f.name for f in dataclasses.fields(SimulatorConfig)))
    return f"evreid simulate: error: --set 'speed=2': expected KEY=VALUE with KEY one of {names}"


@pytest.mark.parametrize("row_id, argv, expected", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_row(place, capsys, row_id, argv, expected):
    place = _prepare(place, row_id)
    if expected is None:
        expected = _expected_set_unknown()
    argv = [a.format(**place) for a in argv]
    expected = expected.format(**place)
    try:
        rc = main(argv)
    except SystemExit as exc:        # argparse
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err
    if "[argparse]" in row_id:
        assert lines[-1] == expected
    else:
        assert lines and lines[0] == expected
        assert len(lines) == 1, err


def test_dataloader_worker_error_is_its_own_line(place, capsys):
    """A corrupt frame read inside a DataLoader worker: the frame's own message, once."""
    from evreid.data.clips import read_image

    root = Path(place["tmp"]) / "corrupt_frame"
    if not root.exists():
        shutil.copytree(place["prid"], root / "prid2011")
    bad = root / "prid2011/prid_2011/multi_shot/cam_a/person_0001/0001.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(EvreidError) as direct:
        read_image(str(bad))
    # every training frame is bad: the first batch fails in a worker, whatever it samples
    for folder in (root / "prid2011/prid_2011/multi_shot").glob("cam_*/person_*"):
        for frame in folder.iterdir():
            frame.write_bytes(b"not a png at all")
    rc = main(["train", "--no-progress", *T, "DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR",
               str(Path(place["tmp"]) / "worker_run"), "DATALOADER.NUM_WORKERS", "2"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("evreid train: error: "), lines
    message = lines[0].removeprefix("evreid train: error: ")
    # the same message as in the main process, about one of the (identical) bad files
    bad_files = {str(f) for f in (root / "prid2011").rglob("*.png")}
    assert any(message == str(direct.value).replace(str(bad), f) for f in bad_files), message
    # the same from Python: Trainer.train raises the worker's one-line EvreidError
    from evreid.config import load_config
    from evreid.data import build_dataset_from_cfg
    from evreid.engine.trainer import Trainer

    cfg = load_config(None, T + ["DATASETS.ROOT_DIR", str(root), "OUTPUT_DIR",
                                 str(Path(place["tmp"]) / "worker_run2"),
                                 "DATALOADER.NUM_WORKERS", "2"])
    trainer = Trainer(cfg, build_dataset_from_cfg(cfg), show_progress=False)
    with pytest.raises(EvreidError) as info:
        trainer.train()
    assert any(str(info.value) == str(direct.value).replace(str(bad), f) for f in bad_files)


# --- Python API rows ---------------------------------------------------------------------
def _tracklet(frame: str, key: str = "cam_a/person_0001") -> SimpleNamespace:
    return SimpleNamespace(frames=(frame,), key=key)


def _whole(width: int = 16, height: int = 32, t0: int = 0, n: int = 50, frames: int = 3):
    from evreid.events.representation import tracklet_from_times
    from evreid.events.types import Events

    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(t0, t0 + 100_000, n))
    events = Events(t, rng.integers(0, width, n), rng.integers(0, height, n),
                    rng.choice([-1, 1], n), width, height)
    return tracklet_from_times(events, np.arange(frames) * 40_000, 40_000, "rec.h5")


def test_api_rows(place):
    from evreid.api import Embedder, GallerySearch
    from evreid.events.checks import NoEventsWarning, check_tracklet_events
    from evreid.events.simulator import simulate
    from evreid.metrics import evaluate

    frame = str(Path(place["frames"]) / "0000.png")        # 16 x 8 (H x W)
    rows = [
        (lambda: simulate(np.zeros((3, 8, 8), np.uint8), [0, 1000, 2000], device="tpu"),
         "unknown simulator device 'tpu'; choose numpy, numba or cpu"),
        (lambda: evaluate(np.zeros((0, 3)), [], [1, 2, 3], [], [0, 0, 0]),
         "no queries to evaluate (the query set is empty)"),
        (lambda: evaluate(np.zeros((2, 0)), [1, 2], [], [0, 0], []),
         "no gallery items to rank (the gallery is empty)"),
        (lambda: Embedder(Path(place["tmp"]) / "none.pth"),
         f"checkpoint not found: {place['tmp']}/none.pth"),
        (lambda: Embedder(Path(place["tmp"]) / "none.pth", device="tpu"),
         "unknown device 'tpu'; use cpu, cuda or cuda:N"),
        (lambda: GallerySearch(np.zeros((3, 4)), metric="cityblock"),
         "unknown metric 'cityblock'; choose cosine or euclidean"),
        # a 128x128 sensor's events attached to 16x8 frames
        (lambda: check_tracklet_events(_whole(128, 128), _tracklet(frame)),
         "rec.h5: events are from a 128x128 sensor but the tracklet's frames are 8x16; set "
         "EVENTS.SCALE_TO_FRAMES True to scale the event coordinates to the frames"),
        # a recording whose clock starts at 135.7 s: no frame window gets an event
        (lambda: check_tracklet_events(_whole(8, 16, t0=135_700_000), _tracklet(frame)),
         "rec.h5: its events span 135.7-135.797 s but the tracklet's frame windows span "
         "-0.04-0.08 s, so no frame gets an event (a recording clock offset?); set "
         "EVENTS.ALIGN_TIME True to shift the events so the first one opens the first "
         "frame window"),
    ]
    for call, expected in rows:
        with pytest.raises(EvreidError) as info:
            call()
        assert str(info.value) == expected

    # asked explicitly: scaled to the frames, aligned to the first window
    scaled = check_tracklet_events(_whole(128, 128), _tracklet(frame),
                                   SimpleNamespace(scale_to_frames=True))
    assert (scaled.width, scaled.height) == (8, 16)
    assert scaled.events.x.max() < 8 and scaled.events.y.max() < 16
    aligned = check_tracklet_events(_whole(8, 16, t0=135_700_000), _tracklet(frame),
                                    SimpleNamespace(align_time=True))
    assert int(aligned.offsets[-1] - aligned.offsets[0]) > 0
    # a silent recording: accepted with a warning naming the tracklet
    with pytest.warns(NoEventsWarning) as caught:
        check_tracklet_events(_whole(8, 16, n=0), _tracklet(frame, "cam_b/person_0007"))
    assert str(caught[0].message) == ("tracklet cam_b/person_0007: none of its 3 frame "
                                      "windows received an event from rec.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # events in the windows: no warning
        check_tracklet_events(_whole(8, 16), _tracklet(frame))


def test_missing_frame_file_found_by_datasets(place, capsys):
    from evreid.data import build_dataset
    from evreid.data.verify import verify_dataset

    root = Path(place["tmp"]) / "missing_frame"
    if not root.exists():
        shutil.copytree(place["prid"], root / "prid2011")
    dataset = build_dataset("prid2011", root)
    gone = Path(dataset.query[0].frames[1])
    gone.unlink()
    with pytest.raises(EvreidError) as info:
        verify_dataset(dataset)
    assert str(info.value) == (f"prid2011: 1 frame file(s) listed by the dataset are missing "
                               f"(first: {gone}, tracklet {dataset.query[0].key})")


def test_table_size():
    assert len(CLI_ROWS) + 8 + 1 + 1 >= 60       # CLI rows, API rows, worker, missing frame


def test_oserror_mid_run_is_one_line(capsys, monkeypatch):
    """Whatever check was missed: an OSError (full disk, ...) is still one line."""
    import evreid.commands.evaluate as evaluate_command

    def full_disk(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out.json")

    monkeypatch.setattr(evaluate_command, "run", full_disk)
    assert main(["evaluate", "x.npz"]) == 2
    assert capsys.readouterr().err == ("evreid evaluate: error: /data/out.json: No space left "
                                       "on device\n")
