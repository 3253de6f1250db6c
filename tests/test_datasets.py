"""Dataset loaders: real MARS files from the fixtures, generated iLIDS-VID / PRID trees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from conftest import write_png
from evreid.data import build_dataset
from evreid.data.datasets import DatasetError, natural_key
from evreid.data.datasets.mars import read_mars_info
from evreid.metrics import evaluate


# --- MARS -------------------------------------------------------------------
def mars_valid_queries(dataset, protocol):
    q = dataset.query
    g = dataset.gallery
    # distances that rank nothing in particular: validity is what is tested
    distmat = np.zeros((len(q), len(g)))
    return evaluate(distmat, [t.pid for t in q], [t.pid for t in g], [t.camid for t in q],
                    [t.camid for t in g], protocol=protocol)["num_valid_queries"]


def test_mini_mars_statistics(fixtures_dir):
    dataset = build_dataset("mars", fixtures_dir / "mini_mars")
    stats = dataset.summary()
    assert stats["train"]["ids"] == 16
    assert stats["train"]["tracklets"] == 32
    assert stats["train"]["frames"] == 1719
    assert stats["query"]["tracklets"] == 32
    assert sorted({t.pid for t in dataset.train}) == list(range(16))


@pytest.mark.parametrize("protocol, valid", [("standard", 23), ("mars_official", 32)])
def test_mini_mars_valid_queries(fixtures_dir, protocol, valid):
    dataset = build_dataset("mars", fixtures_dir / "mini_mars", protocol=protocol)
    expected_gallery = 32 if protocol == "standard" else 64
    assert len(dataset.gallery) == expected_gallery
    assert mars_valid_queries(dataset, protocol) == valid


def test_mini_mars_tracklet_content(fixtures_dir):
    dataset = build_dataset("mars", fixtures_dir / "mini_mars")
    first = dataset.train[0]
    assert first.key == "bbox_train/0003/0003C4T0003"
    assert first.camid == 3 and len(first) == 117
    assert all(Path(f).is_file() for f in first.frames)
    assert list(first.frames) == sorted(first.frames, key=natural_key)


def test_full_mars_split_files(fixtures_dir):
    info = read_mars_info(fixtures_dir / "mars_info")
    assert len(info.train_tracks) == 8298 and len(info.test_tracks) == 12180
    assert len(info.query_rows) == 1980
    assert len(np.unique(info.train_tracks[:, 2])) == 625
    assert int((info.train_tracks[:, 1] - info.train_tracks[:, 0] + 1).sum()) == 509914
    assert int((info.test_tracks[:, 1] - info.test_tracks[:, 0] + 1).sum()) == 681089
    assert len(np.unique(info.test_tracks[info.query_rows, 2])) == 626


def copy_mini_mars(fixtures_dir, tmp_path) -> Path:
    root = tmp_path / "mars"
    (root / "info").mkdir(parents=True)
    for name in ("train_name.txt", "test_name.txt", "tracks_train_info.mat",
                 "tracks_test_info.mat", "query_IDX.mat"):
        shutil.copy(fixtures_dir / "mini_mars" / "info" / name, root / "info" / name)
    for split in ("bbox_train", "bbox_test"):
        (root / split).symlink_to(fixtures_dir / "mini_mars" / split)
    return root


def test_mars_root_may_hold_mars_folder(fixtures_dir, tmp_path):
    copy_mini_mars(fixtures_dir, tmp_path)
    assert len(build_dataset("mars", tmp_path).train) == 32


def test_mars_missing_info_file(fixtures_dir, tmp_path):
    root = copy_mini_mars(fixtures_dir, tmp_path)
    (root / "info" / "query_IDX.mat").unlink()
    with pytest.raises(DatasetError, match=r"mars: missing .*query_IDX\.mat.*expected layout"):
        build_dataset("mars", root)


def test_mars_corrupt_mat(fixtures_dir, tmp_path):
    root = copy_mini_mars(fixtures_dir, tmp_path)
    (root / "info" / "tracks_test_info.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match=r"cannot read .*tracks_test_info\.mat"):
        build_dataset("mars", root)


def test_mars_name_list_too_short(fixtures_dir, tmp_path):
    root = copy_mini_mars(fixtures_dir, tmp_path)
    names = (root / "info" / "train_name.txt").read_text().splitlines()
    (root / "info" / "train_name.txt").write_text("\n".join(names[:100]))
    with pytest.raises(DatasetError, match=r"train_name\.txt lists 100 images"):
        build_dataset("mars", root)


def test_mars_query_out_of_range(fixtures_dir, tmp_path):
    root = copy_mini_mars(fixtures_dir, tmp_path)
    savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array([[1, 65]])})
    with pytest.raises(DatasetError, match=r"query_IDX\.mat indexes rows outside 1\.\.64"):
        build_dataset("mars", root)


def test_mars_bad_track_shape(fixtures_dir, tmp_path):
    root = copy_mini_mars(fixtures_dir, tmp_path)
    savemat(root / "info" / "tracks_train_info.mat", {"track_train_info": np.ones((3, 3))})
    with pytest.raises(DatasetError, match=r"must be an N x 4 array"):
        build_dataset("mars", root)


def test_mars_unknown_protocol(fixtures_dir):
    with pytest.raises(DatasetError, match="unknown protocol 'cuhk'"):
        build_dataset("mars", fixtures_dir / "mini_mars", protocol="cuhk")


# --- PRID-2011 --------------------------------------------------------------------
def make_prid(root: Path, persons: int = 6, frames: int = 5, splits=None) -> Path:
    base = root / "prid2011"
    cams = base / "prid_2011" / "multi_shot"
    for cam in ("cam_a", "cam_b"):
        for p in range(1, persons + 1):
            for f in ((1, 2, 10, 3)[:frames] if frames <= 4 else range(1, frames + 1)):
                write_png(cams / cam / f"person_{p:04d}" / f"{f:04d}.png", value=p)
    names = [f"person_{p:04d}" for p in range(1, persons + 1)]
    half = persons // 2
    splits = splits or [{"train": names[:half], "test": names[half:]},
                        {"train": names[half:], "test": names[:half]}]
    (base / "splits_prid2011.json").write_text(json.dumps(splits))
    return base


def test_prid_loader(tmp_path):
    base = make_prid(tmp_path)
    dataset = build_dataset("prid2011", tmp_path, split_id=1)
    assert [t.pid for t in dataset.query] == [1, 2, 3]
    assert {t.camid for t in dataset.query} == {0} and {t.camid for t in dataset.gallery} == {1}
    assert len(dataset.train) == 6 and {t.pid for t in dataset.train} == {0, 1, 2}
    assert dataset.gallery[0].key == "cam_b/person_0001"
    assert Path(dataset.root) == base


def test_prid_frames_sorted_numerically(tmp_path):
    make_prid(tmp_path, frames=4)
    names = [Path(f).name for f in build_dataset("prid", tmp_path).query[0].frames]
    assert names == ["0001.png", "0002.png", "0003.png", "0010.png"]


def test_prid_min_seq_len(tmp_path):
    make_prid(tmp_path, frames=4)
    cams = tmp_path / "prid2011" / "prid_2011" / "multi_shot"
    for f in cams.glob("cam_a/person_0004/*.png"):
        if f.name != "0001.png":
            f.unlink()
    dataset = build_dataset("prid2011", tmp_path, min_seq_len=3)
    assert 4 not in [t.pid for t in dataset.query]
    assert len(dataset.gallery) == 3


def test_prid_real_splits(fixtures_dir, tmp_path):
    splits = json.loads((fixtures_dir / "prid2011" / "splits_prid2011.json").read_text())
    assert len(splits) == 10
    assert all(len(s["train"]) == 89 and len(s["test"]) == 89 for s in splits)
    needed = sorted({n for s in splits[:1] for n in s["train"] + s["test"]})
    cams = tmp_path / "prid2011" / "prid_2011" / "multi_shot"
    for cam in ("cam_a", "cam_b"):
        for name in needed:
            write_png(cams / cam / name / "0001.png")
    (tmp_path / "prid2011" / "splits_prid2011.json").write_text(json.dumps(splits))
    dataset = build_dataset("prid2011", tmp_path, split_id=0)
    assert len(dataset.query) == 89 and len(dataset.gallery) == 89
    assert dataset.num_train_pids == 89


def test_prid_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"prid2011: missing .*cam_a.*splits_prid2011\.json"):
        build_dataset("prid2011", tmp_path)
    base = make_prid(tmp_path)
    with pytest.raises(DatasetError, match="split_id 5 out of range 0..1"):
        build_dataset("prid2011", tmp_path, split_id=5)
    (base / "splits_prid2011.json").write_text("{broken")
    with pytest.raises(DatasetError, match="cannot read splits file"):
        build_dataset("prid2011", tmp_path)
    (base / "splits_prid2011.json").write_text(json.dumps([{"train": ["person_0001"]}]))
    with pytest.raises(DatasetError, match="must have 'train' and 'test' lists"):
        build_dataset("prid2011", tmp_path)
    (base / "splits_prid2011.json").write_text(
        json.dumps([{"train": ["person_0001"], "test": ["person_0099"]}]))
    with pytest.raises(DatasetError, match=r"missing folder .*person_0099"):
        build_dataset("prid2011", tmp_path)


# --- iLIDS-VID -----------------------------------------------------------------------
def make_ilids(root: Path, persons=(1, 2, 4, 5), splits=2) -> Path:
    base = root / "ilids-vid"
    seq = base / "i-LIDS-VID" / "sequences"
    for cam in (1, 2):
        for p in persons:
            for f in (3, 12, 7):
                name = f"cam{cam}_person{p:03d}_{f:05d}.png"
                write_png(seq / f"cam{cam}" / f"person{p:03d}" / name)
    rng = np.random.default_rng(0)
    ls_set = np.stack([rng.permutation(len(persons)) + 1 for _ in range(splits)])
    (base / "train-test people splits").mkdir(parents=True)
    savemat(base / "train-test people splits" / "train_test_splits_ilidsvid.mat",
            {"ls_set": ls_set.astype(np.float64)})
    return base


def test_ilids_loader(tmp_path):
    make_ilids(tmp_path)
    row = np.random.default_rng(0).permutation(4) + 1  # split 0 of make_ilids
    persons = [1, 2, 4, 5]
    dataset = build_dataset("ilidsvid", tmp_path, split_id=0)
    assert sorted({t.pid for t in dataset.query}) == sorted(persons[i - 1] for i in row[2:])
    assert dataset.num_train_pids == 2 and len(dataset.train) == 4
    assert {t.camid for t in dataset.gallery} == {1}
    names = [Path(f).name for f in dataset.query[0].frames]
    assert [n.split("_")[-1] for n in names] == ["00003.png", "00007.png", "00012.png"]
    swapped = build_dataset("ilidsvid", tmp_path, split_id=0, train_half="second")
    assert sorted({t.pid for t in swapped.query}) == sorted(persons[i - 1] for i in row[:2])


def test_ilids_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"ilidsvid: missing .*cam1.*train_test_splits"):
        build_dataset("ilidsvid", tmp_path)
    base = make_ilids(tmp_path)
    split_file = base / "train-test people splits" / "train_test_splits_ilidsvid.mat"
    savemat(split_file, {"other": np.ones((2, 4))})
    with pytest.raises(DatasetError, match="has no variable 'ls_set'"):
        build_dataset("ilidsvid", tmp_path)
    savemat(split_file, {"ls_set": np.array([[1, 2, 3, 9]])})
    with pytest.raises(DatasetError, match="refers to person index 9 but .*has 4 person"):
        build_dataset("ilidsvid", tmp_path)


# --- registry and events hook -------------------------------------------------------------
def test_unknown_dataset_and_option(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'cuhk03'"):
        build_dataset("cuhk03", tmp_path)
    make_prid(tmp_path)
    with pytest.raises(DatasetError, match=r"does not take option\(s\) \['protocol'\]"):
        build_dataset("prid2011", tmp_path, protocol="standard")


def test_event_variant_requires_events(tmp_path):
    base = make_prid(tmp_path)
    with pytest.raises(DatasetError, match=r"events folder .*events not found.*evreid simulate"):
        build_dataset("prid2011_event", tmp_path)
    (base / "events" / "cam_a").mkdir(parents=True)
    (base / "events" / "cam_a" / "person_0004.npz").write_bytes(b"")
    missing = r"no events for tracklet cam_a/person_0001: expected .*person_0001\.evs"
    with pytest.raises(DatasetError, match=missing):
        build_dataset("prid2011_event", tmp_path)
    # plain variant attaches what exists and leaves the rest None
    dataset = build_dataset("prid2011", tmp_path)
    with_events = [t.key for t in dataset.query if t.events]
    assert with_events == ["cam_a/person_0004"]
