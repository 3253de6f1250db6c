"""PRID-2011 multi-shot (Hirzer et al., SCIA 2011).

Statistics: 385 identities in camera A, 749 in camera B, 200 in both; the
standard protocol uses the 178 two-camera identities with more than 27 frames,
in 10 splits of 89 train / 89 test (``splits_prid2011.json``). Tracklets have
5-675 frames (median about 100).

Layout (``root`` is the ``prid2011`` folder itself or a folder holding it)::

    prid2011/
      prid_2011/multi_shot/cam_a/person_0001/0001.png ...
                           cam_b/person_0001/...
      splits_prid2011.json   [{"train": ["person_0004", ...], "test": [...]}, x10]

Query = cam_a tracklets of the test identities, gallery = their cam_b tracklets.
``min_seq_len`` drops shorter tracklets (the usual filter is 27 frames; the
standard splits already respect it).
"""

from __future__ import annotations

import json
from pathlib import Path

from evreid.data.datasets.base import (
    DatasetError,
    Tracklet,
    VideoDataset,
    list_images,
    relabel,
    require_paths,
)

LAYOUT = """
prid2011/prid_2011/multi_shot/cam_a/person_NNNN/*.png
prid2011/prid_2011/multi_shot/cam_b/person_NNNN/*.png
prid2011/splits_prid2011.json  (list of {"train": [...], "test": [...]})
"""
FPS = 25.0


def read_splits_json(path: Path, dataset: str) -> list[dict[str, list[str]]]:
    """Read a list of {"train": [names], "test": [names]} splits, checking its shape."""
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{dataset}: cannot read splits file {path}: {exc}") from None
    if not isinstance(splits, list) or not splits:
        raise DatasetError(f"{dataset}: {path} must hold a non-empty list of splits")
    for i, split in enumerate(splits):
        if (not isinstance(split, dict) or not isinstance(split.get("train"), list)
                or not isinstance(split.get("test"), list)):
            raise DatasetError(f"{dataset}: split {i} of {path} must have 'train' and "
                               f"'test' lists")
        overlap = set(split["train"]) & set(split["test"])
        if overlap:
            raise DatasetError(f"{dataset}: split {i} of {path} puts {sorted(overlap)[:3]} "
                               f"in both train and test")
    return splits


def load_camera_pair_dataset(name: str, base: Path, cams_dir: Path, cameras: list[str],
                             splits: list[dict], split_id: int, min_seq_len: int,
                             fps: float) -> VideoDataset:
    """Identities split by name; query from the first camera, gallery from the others."""
    if not 0 <= split_id < len(splits):
        raise DatasetError(f"{name}: split_id {split_id} out of range 0..{len(splits) - 1}")
    split = splits[split_id]

    def tracklet(person: str, cam_index: int) -> Tracklet | None:
        folder = cams_dir / cameras[cam_index] / person
        if not folder.is_dir():
            raise DatasetError(f"{name}: missing folder {folder} (named in split {split_id})")
        frames = list_images(folder)
        if not frames:
            raise DatasetError(f"{name}: no images in {folder}")
        if len(frames) < min_seq_len:
            return None
        pid = int("".join(ch for ch in person if ch.isdigit()))
        return Tracklet(frames=frames, pid=pid, camid=cam_index,
                        key=f"{cameras[cam_index]}/{person}", fps=fps)

    def collect(persons: list[str], cam_indices: range | list[int]) -> list[Tracklet]:
        found = (tracklet(p, c) for p in sorted(persons) for c in cam_indices)
        return [t for t in found if t is not None]

    all_cams = range(len(cameras))
    return VideoDataset(
        name=name, root=str(base),
        train=relabel(collect(split["train"], all_cams)),
        query=collect(split["test"], [0]),
        gallery=collect(split["test"], list(all_cams)[1:]),
        extra={"split_id": split_id, "num_splits": len(splits)})


def load_prid2011(root: str | Path, split_id: int = 0, min_seq_len: int = 0) -> VideoDataset:
    root = Path(root)
    base = root / "prid2011" if (root / "prid2011").is_dir() else root
    cams_dir = base / "prid_2011" / "multi_shot"
    split_path = base / "splits_prid2011.json"
    require_paths("prid2011", base, [cams_dir / "cam_a", cams_dir / "cam_b", split_path],
                  LAYOUT)
    splits = read_splits_json(split_path, "prid2011")
    return load_camera_pair_dataset("prid2011", base, cams_dir, ["cam_a", "cam_b"], splits,
                                    split_id, min_seq_len, FPS)
