"""EvReID / TriPro-ReID (Wang et al., AAAI 2026; github Event-AHU/Neuromorphic_ReID).

Statistics (authors): 1,200 identities of paired RGB and event recordings in a
MARS-style layout, with a degraded-RGB copy; events are released as rendered
event pictures (JPG), not streams.

Layout (``root`` holds the three modality folders)::

    rgb/{train,test}/<pid>/<pid>C<cam>T<track>F<frame>.jpg
    rgb_degrade/... (same names)
    event/...       (same names: the event picture of each frame)
    <modality>/info/train_name.txt, test_name.txt, tracks_train_info.mat,
                    tracks_test_info.mat, query_IDX.mat

Track info: rows [start, end, pid, cam] -- as MARS' single N x 4 variable or
as the release's variables ``start_frame``, ``end_frame``, ``person_id``,
``cam_id``. The authors' loader indexes names 0-based (``names[start:end+1]``)
where MARS is 1-based: the base is taken as the one under which every
tracklet's names share one ``<pid>C<cam>T<track>`` prefix (0-based when both
do, as the authors' code reads it). ``query_IDX`` is 1-based; pid -1 (junk)
is dropped; gallery = test tracklets minus the queries.

Frames come from ``modality`` (``rgb`` or ``rgb_degrade``); the events of frame
k are its event picture, decoded into ON / OFF activity maps
(:mod:`evreid.events.images`), so ``frames_only``, ``events_only`` and the
fused archs all run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from evreid.data.datasets.base import (
    DatasetError,
    Tracklet,
    VideoDataset,
    relabel,
    require_paths,
)

MODALITIES = ("rgb", "rgb_degrade")
INFO_FILES = ("train_name.txt", "test_name.txt", "tracks_train_info.mat",
              "tracks_test_info.mat", "query_IDX.mat")
LAYOUT = """
{rgb, rgb_degrade, event}/{train,test}/<pid>/<pid>C<cam>T<track>F<frame>.jpg;
<modality>/info/{train_name.txt, test_name.txt, tracks_train_info.mat,
tracks_test_info.mat, query_IDX.mat}
"""
_NAME = re.compile(r"^(?P<pid>00-1|-?\d+)C(?P<cam>\d+)T(?P<track>\d+)F(?P<frame>\d+)\.\w+$")
_FIELDS = ("start_frame", "end_frame", "person_id", "cam_id")


def _tracks(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:   # scipy raises several types for corrupt files
        raise DatasetError(f"evreid_aer: cannot read {path}: {exc}") from None
    if all(k in mat for k in _FIELDS):
        arr = np.stack([np.asarray(mat[k]).ravel() for k in _FIELDS], axis=1)
    else:
        arrays = [np.asarray(v) for k, v in mat.items() if not k.startswith("__")]
        if len(arrays) != 1 or arrays[0].ndim != 2 or arrays[0].shape[1] != 4:
            raise DatasetError(f"evreid_aer: {path} must hold variables {', '.join(_FIELDS)} "
                               f"or one N x 4 array [start, end, pid, cam]")
        arr = arrays[0]
    return arr.astype(np.int64)


def _prefix(name: str) -> str | None:
    match = _NAME.match(name)
    return None if match is None else name[:name.rindex("F")]


def _base(names: list[str], tracks: np.ndarray, path: Path) -> int:
    """0 or 1: the index base under which every tracklet is one prefix (0 preferred)."""
    for base in (0, 1):
        ok = True
        for start, end, _, _ in tracks.tolist():
            lo, hi = start - base, end - base + 1
            if lo < 0 or hi > len(names) or hi <= lo:
                ok = False
                break
            if len({_prefix(n) for n in names[lo:hi]}) != 1 or _prefix(names[lo]) is None:
                ok = False
                break
        if ok:
            return base
    raise DatasetError(f"evreid_aer: {path} does not index the name list as tracklets "
                       f"(neither 0- nor 1-based ranges give one <pid>C<cam>T<track> each)")


def _split(root: Path, modality: str, split: str, names: list[str], tracks: np.ndarray,
           info: Path) -> list[Tracklet | None]:
    base = _base(names, tracks, info)
    out: list[Tracklet | None] = []
    for start, end, pid, cam in tracks.tolist():
        if pid == -1:
            out.append(None)          # junk, as in MARS
            continue
        frame_names = names[start - base:end - base + 1]
        folder = frame_names[0][:4]
        frames = tuple(str(root / modality / split / folder / n) for n in frame_names)
        events = tuple(str(root / "event" / split / folder / n) for n in frame_names)
        key = f"{split}/{folder}/{_prefix(frame_names[0])}"
        out.append(Tracklet(frames=frames, pid=int(pid), camid=int(cam) - 1,
                            events=str(root / "event" / split / folder), key=key,
                            event_frames=events))
    return out


def load_evreid_aer(root: str | Path, modality: str = "rgb",
                    check_files: bool = True) -> VideoDataset:
    """EvReID train / query / gallery (see the module docstring)."""
    if modality not in MODALITIES:
        raise DatasetError(f"evreid_aer: modality must be one of {MODALITIES}, got "
                           f"{modality!r}")
    root = Path(root)
    info = root / modality / "info"
    require_paths("evreid_aer", root, [root / modality / "train", root / modality / "test",
                                       root / "event" / "train", root / "event" / "test"]
                  + [info / f for f in INFO_FILES], LAYOUT)

    def names(file: str) -> list[str]:
        return [ln.strip() for ln in (info / file).read_text().splitlines() if ln.strip()]

    train = [t for t in _split(root, modality, "train", names("train_name.txt"),
                               _tracks(info / "tracks_train_info.mat"),
                               info / "tracks_train_info.mat") if t is not None]
    test = _split(root, modality, "test", names("test_name.txt"),
                  _tracks(info / "tracks_test_info.mat"), info / "tracks_test_info.mat")
    from scipy.io import loadmat

    try:
        query_rows = np.asarray(loadmat(str(info / "query_IDX.mat"))["query_IDX"]).ravel() - 1
    except Exception as exc:
        raise DatasetError(f"evreid_aer: cannot read {info / 'query_IDX.mat'} (variable "
                           f"query_IDX): {exc}") from None
    if query_rows.size and (query_rows.min() < 0 or query_rows.max() >= len(test)):
        raise DatasetError(f"evreid_aer: {info / 'query_IDX.mat'} indexes rows outside "
                           f"1..{len(test)}")
    picked = set(query_rows.tolist())
    query = [test[i] for i in query_rows.tolist() if test[i] is not None]
    gallery = [t for i, t in enumerate(test) if i not in picked and t is not None]
    if check_files:
        for t in (train[:1] + query[:1] + gallery[:1]):
            for path in (t.frames[0], t.event_frames[0]):
                if not Path(path).is_file():
                    raise DatasetError(f"evreid_aer: missing image {path} (named by {info})")
    return VideoDataset(name="evreid_aer", root=str(root), train=relabel(train), query=query,
                        gallery=gallery, extra={"modality": modality})
