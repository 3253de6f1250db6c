"""The embedded synthetic benchmark (made by ``evreid synth``), laid out like PRID-2011.

Layout (``root`` is the generated folder itself)::

    <root>/dataset_card.json            every generation parameter (written last)
    <root>/splits_synthetic.json        [{"train": ["person_0001", ...], "test": [...]}, x10]
    <root>/cam_a/person_0001/0001.png   video frames, one folder per tracklet
    <root>/cam_b/person_0001/...        (cam_c too for the ``full`` preset)
    <root>/events/cam_a/person_0001.npz events of each tracklet (pixel- and time-aligned)

Query = cam_a tracklets of the test identities, gallery = their tracklets in
the other cameras; train = all cameras of the train identities (pids
relabelled). The degradation protocol, preset and seed are in
``dataset.extra`` (``synthetic_protocol``, ``preset``, ``seed``); each
protocol is its own folder (see docs/SYNTHETIC.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from evreid.data.datasets.base import (
    DatasetError,
    VideoDataset,
    load_camera_pair_dataset,
    read_splits_json,
    require_paths,
)

CARD_NAME = "dataset_card.json"
SPLITS_NAME = "splits_synthetic.json"
EVENTS_DIR = "events"
LAYOUT = """
<root>/dataset_card.json  (written last by evreid synth; its absence means an incomplete folder)
<root>/splits_synthetic.json  (list of {"train": [...], "test": [...]})
<root>/cam_a/person_NNNN/NNNN.png  <root>/cam_b/person_NNNN/NNNN.png
<root>/events/cam_a/person_NNNN.npz  (make the folder with: evreid synth --out <root>)
"""


def read_card(path: Path) -> dict:
    """The dataset card as a dict, or a DatasetError naming the file and what is wrong."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"synthetic: cannot read dataset card {path}: {exc}") from None
    for key in ("cameras", "preset", "protocol", "seed"):
        if key not in card:
            raise DatasetError(f"synthetic: dataset card {path} has no {key!r} entry")
    return card


def load_synthetic(root: str | Path, split_id: int = 0, min_seq_len: int = 0) -> VideoDataset:
    """Load a generated synthetic folder (see the module docstring for the layout)."""
    base = Path(root)
    card_path, split_path = base / CARD_NAME, base / SPLITS_NAME
    require_paths("synthetic", base, [card_path, split_path], LAYOUT)
    card = read_card(card_path)
    cameras = [cam["name"] for cam in card["cameras"]]
    require_paths("synthetic", base, [base / cam for cam in cameras], LAYOUT)
    splits = read_splits_json(split_path, "synthetic")
    dataset = load_camera_pair_dataset("synthetic", base, base, cameras, splits, split_id,
                                       min_seq_len, float(card["preset"]["fps"]))
    dataset.extra.update({"synthetic_protocol": card["protocol"],
                          "preset": card["preset"]["name"], "seed": card["seed"]})
    return dataset
