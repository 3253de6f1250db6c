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

from pathlib import Path

from evreid.data.datasets.base import (
    VideoDataset,
    load_camera_pair_dataset,
    read_splits_json,
    require_paths,
)

LAYOUT = """
prid2011/prid_2011/multi_shot/cam_a/person_NNNN/*.png
prid2011/prid_2011/multi_shot/cam_b/person_NNNN/*.png
prid2011/splits_prid2011.json  (list of {"train": [...], "test": [...]})
"""
FPS = 25.0


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
