"""EvReID (TriPro-ReID): a generated tree in the release layout; rendered event pictures."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from evreid.data import build_dataset
from evreid.data.clips import ClipDataset, EventOptions
from evreid.data.datasets.base import DatasetError
from evreid.events.images import event_image_channels


def _tree(root, zero_based: bool = True):
    """2 train ids, 2 test ids (+ junk), 2 cameras, 3-frame tracklets; info as released."""
    import cv2

    rng = np.random.default_rng(0)
    split_ids = {"train": (1, 3), "test": (2, 4, -1)}
    for split, ids in split_ids.items():
        names, rows = [], []
        for pid in ids:
            folder = "00-1" if pid == -1 else f"{pid:04d}"
            for cam in (1, 2):
                start = len(names)
                for f in range(3):
                    name = f"{folder}C{cam}T0001F{f + 1:03d}.jpg"
                    names.append(name)
                    for modality in ("rgb", "rgb_degrade", "event"):
                        path = root / modality / split / folder / name
                        path.parent.mkdir(parents=True, exist_ok=True)
                        img = np.full((32, 16, 3), 255, np.uint8)
                        if modality == "event":    # red ON / blue OFF on white
                            img[rng.integers(0, 32, 20), rng.integers(0, 16, 20)] = (230, 30, 30)
                            img[rng.integers(0, 32, 20), rng.integers(0, 16, 20)] = (20, 60, 230)
                        else:
                            img[:] = rng.integers(0, 255, 3)
                        cv2.imwrite(str(path), img[..., ::-1])
                off = 0 if zero_based else 1
                rows.append([start + off, len(names) - 1 + off, pid, cam])
        for modality in ("rgb", "rgb_degrade"):
            info = root / modality / "info"
            info.mkdir(parents=True, exist_ok=True)
            (info / f"{split}_name.txt").write_text("\n".join(names) + "\n")
            arr = np.array(rows).T
            scipy.io.savemat(info / f"tracks_{split}_info.mat",
                             {k: arr[i][None, :] for i, k in enumerate(
                                 ("start_frame", "end_frame", "person_id", "cam_id"))})
            scipy.io.savemat(info / "query_IDX.mat", {"query_IDX": np.array([[1, 3]])})
    return root


@pytest.mark.parametrize("zero_based", [True, False])
def test_layout_and_protocol(tmp_path, zero_based):
    ds = build_dataset("evreid_aer", _tree(tmp_path / "aer", zero_based))
    assert [len(s) for s in (ds.train, ds.query, ds.gallery)] == [4, 2, 2]
    assert sorted({t.pid for t in ds.train}) == [0, 1]
    assert [(t.pid, t.camid) for t in ds.query] == [(2, 0), (4, 0)]
    assert [(t.pid, t.camid) for t in ds.gallery] == [(2, 1), (4, 1)]     # junk dropped
    q = ds.query[0]
    assert q.key == "test/0002/0002C1T0001" and len(q) == 3
    assert q.frames[0].endswith("rgb/test/0002/0002C1T0001F001.jpg")
    assert q.event_frames[0].endswith("event/test/0002/0002C1T0001F001.jpg")
    degraded = build_dataset("evreid_aer", tmp_path / "aer", modality="rgb_degrade")
    assert "rgb_degrade/test" in degraded.query[0].frames[0]


def test_every_arch_gets_its_inputs(tmp_path):
    ds = build_dataset("evreid_aer", _tree(tmp_path / "aer"))
    for frames, events in ((True, None), (False, EventOptions("count", 2)),
                           (True, EventOptions("count", 2))):
        item = ClipDataset(ds.train, 2, "evenly", None, events, frames=frames)[0]
        assert ("frames" in item) == frames and ("events" in item) == (events is not None)
        if events is not None:
            assert item["events"].shape == (1, 2, 2, 2, 32, 16)
            assert float(item["events"][:, :, :, 0].sum()) > 0        # ON from red
            assert float(item["events"][:, :, :, 1].sum()) > 0        # OFF from blue


def test_event_picture_decoding():
    white = np.full((4, 4, 3), 255, np.uint8)
    white[0, 0] = (230, 30, 30)
    white[1, 1] = (20, 60, 230)
    maps = event_image_channels(white)
    assert maps[0, 0, 0] > 0.8 and maps[1, 0, 0] == 0
    assert maps[1, 1, 1] > 0.7 and maps[0, 1, 1] == 0
    assert maps.sum() == pytest.approx(maps[0, 0, 0] + maps[1, 1, 1])
    grey = np.full((4, 4, 3), 128, np.uint8)       # white ON / black OFF on grey
    grey[2, 2], grey[3, 3] = 255, 0
    maps = event_image_channels(grey)
    assert maps[0, 2, 2] == pytest.approx(127 / 255) and maps[1, 3, 3] == pytest.approx(128 / 255)
    assert maps[0, 3, 3] == 0 and maps[1, 2, 2] == 0


def test_missing_parts(tmp_path):
    root = _tree(tmp_path / "aer")
    (root / "rgb" / "info" / "query_IDX.mat").unlink()
    with pytest.raises(DatasetError, match=r"evreid_aer: missing .*query_IDX\.mat"):
        build_dataset("evreid_aer", root)
    with pytest.raises(DatasetError, match="modality must be one of"):
        build_dataset("evreid_aer", root, modality="event")
