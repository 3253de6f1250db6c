"""MARS (Zheng et al., ECCV 2016).

Statistics (official): 1,261 identities, 6 cameras, 20,478 tracklets
(train: 625 ids, 8,298 tracklets, 509,914 frames; test: 636 ids incl. junk and
distractors, 12,180 tracklets, 681,089 frames; 1,980 queries).

Layout (``root`` is the ``mars`` folder itself or a folder holding ``mars/``)::

    mars/
      bbox_train/0001/0001C1T0001F001.jpg ...
      bbox_test/0002/... and 00-1/ (junk), 0000/ (distractors)
      info/train_name.txt, test_name.txt       one image name per line
           tracks_train_info.mat, tracks_test_info.mat   rows [start, end, pid, cam],
                                                         1-based, inclusive, into the name list
           query_IDX.mat                          1-based rows of tracks_test_info

Protocols:
- ``standard``: gallery = test tracklets minus the queries; junk (pid -1)
  tracklets are dropped, as torchreid does. Evaluation removes gallery items with
  the query's pid AND camera.
- ``mars_official``: gallery = the whole test set, as the official MATLAB
  evaluation does. Evaluate it with ``protocol="mars_official"``: per query,
  pid -1 junk and same-pid same-camera items (the query itself included) are
  ignored; pid 0 distractors stay as negatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evreid.data.datasets.base import (
    DatasetError,
    Tracklet,
    VideoDataset,
    relabel,
    require_paths,
    sorted_frames,
)

LAYOUT = """
mars/bbox_train/<pid>/<pid>C<cam>T<track>F<frame>.jpg
mars/bbox_test/<pid>/...
mars/info/{train_name.txt, test_name.txt, tracks_train_info.mat, tracks_test_info.mat,
query_IDX.mat}
"""

INFO_FILES = ("train_name.txt", "test_name.txt", "tracks_train_info.mat",
              "tracks_test_info.mat", "query_IDX.mat")
PROTOCOLS = ("standard", "mars_official")
FPS = 25.0
_NAME = re.compile(r"^(?P<pid>-?\d+|00-1)C(?P<cam>\d)T(?P<track>\d+)F(?P<frame>\d+)\.\w+$")


@dataclass
class MarsInfo:
    """The official split files, parsed and checked (no images needed)."""

    train_names: list[str]
    test_names: list[str]
    train_tracks: np.ndarray  # [N, 4] start, end, pid, cam (1-based, inclusive)
    test_tracks: np.ndarray
    query_rows: np.ndarray    # 0-based rows of test_tracks


def _load_mat_array(path: Path, preferred: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for corrupt files
        raise DatasetError(f"mars: cannot read {path}: {exc}") from None
    if preferred in mat:
        return np.asarray(mat[preferred])
    arrays = [k for k in mat if not k.startswith("__")]
    if len(arrays) != 1:
        raise DatasetError(f"mars: {path} should hold the variable {preferred!r}; "
                           f"found {arrays}")
    return np.asarray(mat[arrays[0]])


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_mars_info(info_dir: str | Path, train_names: list[str] | None = None,
                   test_names: list[str] | None = None) -> MarsInfo:
    """Parse ``info/``; the name lists may be passed in when only the .mat files exist."""
    info_dir = Path(info_dir)
    train_tracks = _load_mat_array(info_dir / "tracks_train_info.mat", "track_train_info")
    test_tracks = _load_mat_array(info_dir / "tracks_test_info.mat", "track_test_info")
    query_idx = _load_mat_array(info_dir / "query_IDX.mat", "query_IDX").ravel()
    for path, tracks in (("tracks_train_info.mat", train_tracks),
                         ("tracks_test_info.mat", test_tracks)):
        if tracks.ndim != 2 or tracks.shape[1] != 4:
            raise DatasetError(f"mars: {info_dir / path} must be an N x 4 array "
                               f"[start, end, pid, cam]; got shape {tracks.shape}")
        if np.any(tracks[:, 0] < 1) or np.any(tracks[:, 1] < tracks[:, 0]):
            raise DatasetError(f"mars: {info_dir / path} has rows with start < 1 or end < start")
    query_rows = query_idx.astype(np.int64) - 1
    if query_rows.size and (query_rows.min() < 0 or query_rows.max() >= len(test_tracks)):
        raise DatasetError(f"mars: {info_dir / 'query_IDX.mat'} indexes rows outside "
                           f"1..{len(test_tracks)} of tracks_test_info.mat")
    if train_names is None and (info_dir / "train_name.txt").is_file():
        train_names = _read_names(info_dir / "train_name.txt")
    if test_names is None and (info_dir / "test_name.txt").is_file():
        test_names = _read_names(info_dir / "test_name.txt")
    for label, names, tracks in (("train_name.txt", train_names, train_tracks),
                                 ("test_name.txt", test_names, test_tracks)):
        if names is not None and len(tracks) and tracks[:, 1].max() > len(names):
            raise DatasetError(
                f"mars: {info_dir / label} lists {len(names)} images but the track info "
                f"refers to image {int(tracks[:, 1].max())}")
    return MarsInfo(train_names or [], test_names or [], train_tracks.astype(np.int64),
                    test_tracks.astype(np.int64), query_rows)


def _tracklets(split_dir: Path, names: list[str], tracks: np.ndarray, subdir: str,
               check_folders: bool) -> list[Tracklet]:
    out = []
    seen_folders: set[str] = set()
    for start, end, pid, cam in tracks.tolist():
        frame_names = names[start - 1:end]
        first = frame_names[0]
        match = _NAME.match(first)
        if match is None:
            raise DatasetError(f"mars: image name {first!r} in info/{subdir}_name.txt does "
                               f"not follow <pid>C<cam>T<track>F<frame>.jpg")
        folder = first[:4]
        if check_folders and folder not in seen_folders:
            if not (split_dir / folder).is_dir():
                raise DatasetError(f"mars: missing folder {split_dir / folder} "
                                   f"(needed by {first})")
            seen_folders.add(folder)
        key = f"{split_dir.name}/{folder}/{first[:first.index('F', 4)]}"
        frames = sorted_frames(split_dir / folder / n for n in frame_names)
        out.append(Tracklet(frames=frames, pid=int(pid), camid=int(cam) - 1, key=key, fps=FPS))
    return out


def load_mars(root: str | Path, protocol: str = "standard",
              check_folders: bool = True) -> VideoDataset:
    """Build train / query / gallery from the official MARS files."""
    if protocol not in PROTOCOLS:
        raise DatasetError(f"mars: unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    root = Path(root)
    base = root / "mars" if (root / "mars").is_dir() and not (root / "info").exists() else root
    info = base / "info"
    require_paths("mars", base, [base / "bbox_train", base / "bbox_test"]
                  + [info / f for f in INFO_FILES], LAYOUT)
    parsed = read_mars_info(info)
    train = relabel(_tracklets(base / "bbox_train", parsed.train_names, parsed.train_tracks,
                               "train", check_folders))
    test = _tracklets(base / "bbox_test", parsed.test_names, parsed.test_tracks, "test",
                      check_folders)
    query_set = set(parsed.query_rows.tolist())
    query = [test[i] for i in parsed.query_rows.tolist()]
    if protocol == "mars_official":
        gallery = test
    else:
        gallery = [t for i, t in enumerate(test) if i not in query_set and t.pid != -1]
    return VideoDataset(name="mars", root=str(base), train=train, query=query,
                        gallery=gallery, protocol=protocol)
