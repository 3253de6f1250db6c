"""The embedded synthetic benchmark (made by ``evreid synth``), laid out like PRID-2011.

Layout (``root`` is the generated folder itself)::

    <root>/dataset_card.json            every generation parameter (written last)
    <root>/splits_synthetic.json        [{"train": ["person_0001", ...], "test": [...]}, x10]
    <root>/cam_a/person_0001/0001.png   video frames, one folder per tracklet
    <root>/cam_b/person_0001/...        (cam_c too for the ``full`` preset)
    <root>/events/cam_a/person_0001.evs events of each tracklet (pixel- and time-aligned)

Query = cam_a tracklets of the test identities, gallery = their tracklets in
the other cameras; train = all cameras of the train identities (pids
relabelled). Presets with several visits per camera (``medium``) name their
tracklet folders ``person_NNNN_V`` and list them in the card; their distractor
identities (the card's ``distractors``) join the gallery only. The degradation
protocol, preset and seed are in
``dataset.extra`` (``synthetic_protocol``, ``preset``, ``seed``); each
protocol is its own folder (see docs/SYNTHETIC.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from evreid.data.datasets.base import (
    DatasetError,
    Tracklet,
    VideoDataset,
    list_images,
    load_camera_pair_dataset,
    read_splits_json,
    relabel,
    require_paths,
)

CARD_NAME = "dataset_card.json"
SPLITS_NAME = "splits_synthetic.json"
EVENTS_DIR = "events"
LAYOUT = """
<root>/dataset_card.json  (written last by evreid synth; its absence means an incomplete folder)
<root>/splits_synthetic.json  (list of {"train": [...], "test": [...]})
<root>/cam_a/person_NNNN/NNNN.png  <root>/cam_b/person_NNNN/NNNN.png
<root>/events/cam_a/person_NNNN.evs  (make the folder with: evreid synth --out <root>)
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
    if card["preset"].get("tracklets_per_camera", 1) > 1 or card.get("distractors"):
        dataset = _load_visits(base, card, cameras, splits, split_id, min_seq_len)
    else:
        dataset = load_camera_pair_dataset("synthetic", base, base, cameras, splits, split_id,
                                           min_seq_len, float(card["preset"]["fps"]))
    dataset.extra.update({"synthetic_protocol": card["protocol"],
                          "preset": card["preset"]["name"], "seed": card["seed"]})
    return dataset


def _load_visits(base: Path, card: dict, cameras: list[str], splits: list[dict], split_id: int,
                 min_seq_len: int) -> VideoDataset:
    """Tracklets listed by the card: several per identity and camera, plus distractors.

    Query: the first camera's tracklets of the test identities; gallery: the
    other cameras' tracklets of the test identities and of the distractors.
    """
    if not 0 <= split_id < len(splits):
        raise DatasetError(f"synthetic: split_id {split_id} out of range 0..{len(splits) - 1}")
    fps = float(card["preset"]["fps"])
    by_person: dict[str, list[tuple[int, int, str]]] = {}
    try:
        for entry in card["tracklets"]:
            folder = entry.get("tracklet", entry["person"])
            by_person.setdefault(entry["person"], []).append(
                (int(entry["cam"]), int(entry.get("visit", 0)), folder))
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"synthetic: {base / CARD_NAME}: bad 'tracklets' entry ({exc})") \
            from None

    def collect(persons: list[str], cams: set[int]) -> list[Tracklet]:
        out = []
        for person in sorted(persons):
            pid = int("".join(ch for ch in person if ch.isdigit()))
            for cam, _, name in sorted(by_person.get(person, [])):
                if cam not in cams:
                    continue
                folder = base / cameras[cam] / name
                frames = list_images(folder) if folder.is_dir() else ()
                if not frames:
                    raise DatasetError(f"synthetic: no frames in {folder} (listed in the card)")
                if len(frames) >= min_seq_len:
                    out.append(Tracklet(frames=frames, pid=pid, camid=cam,
                                        key=f"{cameras[cam]}/{name}", fps=fps))
        return out

    split = splits[split_id]
    every, gallery_cams = set(range(len(cameras))), set(range(1, len(cameras)))
    return VideoDataset(
        name="synthetic", root=str(base),
        train=relabel(collect(split["train"], every)),
        query=collect(split["test"], {0}),
        gallery=collect(split["test"], gallery_cams)
        + collect(list(card.get("distractors", [])), gallery_cams),
        extra={"split_id": split_id, "num_splits": len(splits)})
