"""The data model every dataset produces: Tracklets in train / query / gallery.

A dataset class only turns a folder into Tracklets. It checks its required
files up front and raises one :class:`DatasetError` naming what is missing and
the layout it expected.

Event hook: every tracklet has a ``key``, a relative path that identifies it
inside its dataset (``bbox_train/0003/0003C4T0003``, ``cam_a/person_0001``).
Events for it live at ``<events_dir>/<key>.npz`` (the simulator's cache) or in
a folder ``<events_dir>/<key>/`` of per-frame ``.mat`` files (the SDCL
reference release). ``*_event`` variants require them; plain variants attach
them when present.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from evreid.errors import EvreidError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
EVENT_FILE_SUFFIXES = (".evs", ".npz", ".h5", ".hdf5", ".aedat", ".aedat4")


class DatasetError(EvreidError):
    """A dataset folder is missing files or does not match its documented layout."""


@dataclass(frozen=True)
class Tracklet:
    """One person seen by one camera: an ordered list of frame files.

    ``events`` is the path of this tracklet's event file or per-frame event
    folder, or None when the dataset has no events for it. An event-only
    tracklet (a real event camera, no video) has no ``frames``; ``length`` is
    then its number of event windows, which stand in for frames.
    ``event_frames``: rendered event images, one per frame (datasets released
    as event pictures, not streams); they replace a stream when present.
    """

    frames: tuple[str, ...]
    pid: int
    camid: int
    events: str | None = None
    key: str = ""
    fps: float = 25.0
    length: int = 0
    event_frames: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frames) or self.length

    def with_events(self, events: str | None) -> Tracklet:
        return replace(self, events=events)


_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str | Path) -> tuple:
    """Sort key that orders ``f2.png`` before ``f10.png`` (numeric, not raw glob order)."""
    name = Path(path).name
    return tuple(int(tok) if tok.isdigit() else tok.lower() for tok in _DIGITS.split(name))


def sorted_frames(paths: Iterable[str | Path]) -> tuple[str, ...]:
    return tuple(str(p) for p in sorted(paths, key=natural_key))


def list_images(folder: Path) -> tuple[str, ...]:
    return sorted_frames(p for p in folder.iterdir()
                         if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def require_paths(dataset: str, root: Path, required: Sequence[Path], layout: str) -> None:
    """Raise one DatasetError listing every missing required path and the expected layout."""
    expected = "; ".join(" ".join(line.split()) for line in layout.strip().splitlines()
                         if line.strip())
    if not root.exists():
        raise DatasetError(f"{dataset}: root folder {root} does not exist; expected layout: "
                           f"{expected}")
    missing = [p for p in required if not p.exists()]
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise DatasetError(f"{dataset}: missing {names} (root {root}); expected layout: "
                           f"{expected}")


def relabel(tracklets: list[Tracklet]) -> list[Tracklet]:
    """Map training pids to 0..N-1 (in sorted pid order) for the classifier."""
    mapping = {pid: i for i, pid in enumerate(sorted({t.pid for t in tracklets}))}
    return [replace(t, pid=mapping[t.pid]) for t in tracklets]


@dataclass
class SplitStats:
    ids: int
    tracklets: int
    frames: int
    cameras: int
    min_len: int
    median_len: float
    max_len: int

    @classmethod
    def of(cls, tracklets: Sequence[Tracklet]) -> SplitStats:
        lengths = [len(t) for t in tracklets] or [0]
        return cls(
            ids=len({t.pid for t in tracklets}),
            tracklets=len(tracklets),
            frames=sum(len(t) for t in tracklets),
            cameras=len({t.camid for t in tracklets}),
            min_len=min(lengths),
            median_len=float(statistics.median(lengths)),
            max_len=max(lengths),
        )


@dataclass
class VideoDataset:
    """train / query / gallery lists of Tracklets plus what produced them."""

    name: str
    root: str
    train: list[Tracklet]
    query: list[Tracklet]
    gallery: list[Tracklet]
    protocol: str = "standard"
    extra: dict = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        return len({t.pid for t in self.train})

    def summary(self) -> dict[str, dict]:
        """Statistics per split: ids, tracklets, frames, cameras, min/median/max length."""
        return {split: vars(SplitStats.of(getattr(self, split)))
                for split in ("train", "query", "gallery")}

    def format_summary(self) -> str:
        rows = self.summary()
        header = (f"{'split':<8} {'ids':>6} {'tracklets':>10} {'frames':>10} {'cams':>5} "
                  f"{'min len':>8} {'median':>8} {'max len':>8}")
        lines = [f"dataset {self.name} ({self.protocol}) at {self.root}", header,
                 "-" * len(header)]
        for split, s in rows.items():
            lines.append(f"{split:<8} {s['ids']:>6} {s['tracklets']:>10,} {s['frames']:>10,} "
                         f"{s['cameras']:>5} {s['min_len']:>8} {s['median_len']:>8g} "
                         f"{s['max_len']:>8}")
        return "\n".join(lines)


def find_event_source(events_dir: Path, key: str) -> str | None:
    """The event file or per-frame folder of one tracklet, or None."""
    for suffix in EVENT_FILE_SUFFIXES:
        candidate = events_dir / f"{key}{suffix}"
        if candidate.is_file():
            return str(candidate)
    folder = events_dir / key
    if folder.is_dir():
        return str(folder)
    return None


def attach_events(dataset: VideoDataset, events_dir: Path, required: bool) -> VideoDataset:
    """Set ``Tracklet.events`` for every tracklet from ``events_dir``.

    With ``required`` (the ``*_event`` variants), a tracklet without events is an
    error naming its expected path and the command that makes it.
    """
    def attach(tracklets: list[Tracklet]) -> list[Tracklet]:
        out = []
        for t in tracklets:
            source = find_event_source(events_dir, t.key)
            if source is None and required:
                raise DatasetError(
                    f"{dataset.name}: no events for tracklet {t.key}: expected "
                    f"{events_dir / (t.key + '.evs')} (make them with: evreid simulate "
                    f"--dataset {dataset.name.removesuffix('_event')} --root {dataset.root})")
            out.append(t.with_events(source))
        return out

    dataset.train = attach(dataset.train)
    dataset.query = attach(dataset.query)
    dataset.gallery = attach(dataset.gallery)
    dataset.extra["events_dir"] = str(events_dir)
    return dataset


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
