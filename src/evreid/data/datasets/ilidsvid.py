"""iLIDS-VID (Wang et al., ECCV 2014).

Statistics: 300 identities, 2 cameras, 600 tracklets of 23-192 frames
(median 73), 10 random train/test splits of 150/150 identities.

Layout (``root`` is the ``ilids-vid`` folder itself or a folder holding it)::

    ilids-vid/
      i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png ...
                           cam2/person001/...
      train-test people splits/train_test_splits_ilidsvid.mat   ls_set: 10 x 300

``ls_set`` rows hold 1-based indices into the sorted list of cam1 person
folders; the first 150 of a row are the training identities, the rest test.
(torchreid uses the opposite halves; pass ``train_half="second"`` to match it.)
Query = cam1 tracklets of the test identities, gallery = their cam2 tracklets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evreid.data.datasets.base import (
    DatasetError,
    VideoDataset,
    load_camera_pair_dataset,
    require_paths,
)

LAYOUT = """
ilids-vid/i-LIDS-VID/sequences/cam1/personNNN/*.png
ilids-vid/i-LIDS-VID/sequences/cam2/personNNN/*.png
ilids-vid/train-test people splits/train_test_splits_ilidsvid.mat  (ls_set, 10 x 300)
"""
SPLIT_FILE = Path("train-test people splits") / "train_test_splits_ilidsvid.mat"
FPS = 25.0
NUM_SPLITS = 10


def read_ilidsvid_splits(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:
        raise DatasetError(f"ilidsvid: cannot read {path}: {exc}") from None
    if "ls_set" not in mat:
        raise DatasetError(f"ilidsvid: {path} has no variable 'ls_set'")
    ls_set = np.asarray(mat["ls_set"]).astype(np.int64)
    if ls_set.ndim != 2 or ls_set.shape[1] % 2:
        raise DatasetError(f"ilidsvid: ls_set in {path} must be splits x (2 * ids); "
                           f"got {ls_set.shape}")
    return ls_set


def load_ilidsvid(root: str | Path, split_id: int = 0, train_half: str = "first",
                  min_seq_len: int = 0) -> VideoDataset:
    root = Path(root)
    base = root / "ilids-vid" if (root / "ilids-vid").is_dir() else root
    seq = base / "i-LIDS-VID" / "sequences"
    split_path = base / SPLIT_FILE
    require_paths("ilidsvid", base, [seq / "cam1", seq / "cam2", split_path], LAYOUT)
    if train_half not in ("first", "second"):
        raise DatasetError(f"ilidsvid: train_half must be 'first' or 'second'; "
                           f"got {train_half!r}")
    ls_set = read_ilidsvid_splits(split_path)
    persons = sorted(p.name for p in (seq / "cam1").iterdir() if p.is_dir())
    if ls_set.max() > len(persons) or ls_set.min() < 1:
        raise DatasetError(f"ilidsvid: {split_path} refers to person index "
                           f"{int(ls_set.max())} but {seq / 'cam1'} has {len(persons)} "
                           f"person folders")
    half = ls_set.shape[1] // 2
    splits = []
    for row in ls_set:
        first, second = row[:half].tolist(), row[half:].tolist()
        train, test = (first, second) if train_half == "first" else (second, first)
        splits.append({"train": [persons[i - 1] for i in train],
                       "test": [persons[i - 1] for i in test]})
    return load_camera_pair_dataset("ilidsvid", base, seq, ["cam1", "cam2"], splits, split_id,
                                    min_seq_len, FPS)
