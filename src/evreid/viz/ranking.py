"""Ranked-list grids like torchreid's: a query tracklet, then its top-k gallery
tracklets with green (same identity) or red (other identity) borders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evreid.data.clips import read_image
from evreid.data.datasets.base import Tracklet
from evreid.viz.png import write_png

GREEN, RED, GREY = (0, 170, 0), (0, 0, 220), (140, 140, 140)


def _thumb(tracklet: Tracklet, height: int, width: int, border: tuple[int, int, int],
           frames: int) -> np.ndarray:
    """``frames`` frames of the tracklet side by side, framed by ``border``."""
    import cv2

    picks = np.round(np.linspace(0, len(tracklet) - 1, frames)).astype(int)
    tiles = [cv2.resize(cv2.cvtColor(read_image(tracklet.frames[i]), cv2.COLOR_RGB2BGR),
                        (width, height)) for i in picks]
    strip = np.concatenate(tiles, axis=1)
    return cv2.copyMakeBorder(strip, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=border)


def ranked_list_grid(distmat: np.ndarray, query: Sequence[Tracklet], gallery: Sequence[Tracklet],
                     path: str | os.PathLike, num_queries: int = 6, topk: int = 5,
                     frames_per_tracklet: int = 1, thumb: tuple[int, int] = (96, 48),
                     query_indices: Sequence[int] | None = None) -> Path:
    """One row per query: query (grey border) then the top-k gallery items, skipping
    same-identity same-camera items as the evaluation does."""
    import cv2

    height, width = thumb
    rows = []
    chosen = (list(query_indices) if query_indices is not None
              else np.round(np.linspace(0, len(query) - 1, min(num_queries, len(query))))
              .astype(int).tolist())
    for qi in chosen:
        q = query[qi]
        order = np.argsort(distmat[qi], kind="stable")
        shown = [j for j in order
                 if not (gallery[j].pid == q.pid and gallery[j].camid == q.camid)][:topk]
        tiles = [_thumb(q, height, width, GREY, frames_per_tracklet)]
        gap = np.full((tiles[0].shape[0], 12, 3), 255, dtype=np.uint8)
        tiles.append(gap)
        for j in shown:
            colour = GREEN if gallery[j].pid == q.pid else RED
            tiles.append(_thumb(gallery[j], height, width, colour, frames_per_tracklet))
            tiles.append(np.full((tiles[0].shape[0], 4, 3), 255, dtype=np.uint8))
        row = np.concatenate(tiles, axis=1)
        rows.append(cv2.copyMakeBorder(row, 3, 3, 3, 3, cv2.BORDER_CONSTANT,
                                       value=(255, 255, 255)))
    full_width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 0, 0, full_width - r.shape[1], cv2.BORDER_CONSTANT,
                               value=(255, 255, 255)) for r in rows]
    return write_png(path, np.concatenate(rows, axis=0))


def ranked_list_of_run(run_dir: str | os.PathLike, path: str | os.PathLike,
                       num_queries: int = 6, topk: int = 5,
                       frames_per_tracklet: int = 2) -> Path:
    """:func:`ranked_list_grid` of a trained run: its config.yaml names the dataset,
    its features.npz (``evreid test``) the distances."""
    from evreid.config import load_config
    from evreid.data import build_dataset_from_cfg
    from evreid.errors import EvreidError
    from evreid.metrics.features import load_features, stored_distances

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    data = load_features(run_dir / "features.npz")
    dataset = build_dataset_from_cfg(cfg)
    if (len(dataset.query), len(dataset.gallery)) != (len(data["query_pids"]),
                                                      len(data["gallery_pids"])):
        raise EvreidError(f"{run_dir / 'features.npz'} does not match the dataset of "
                          f"{run_dir / 'config.yaml'} (re-run evreid test)")
    distmat = stored_distances(data, cfg.TEST.DISTANCE)
    return ranked_list_grid(distmat, dataset.query, dataset.gallery, path,
                            num_queries=num_queries, topk=topk,
                            frames_per_tracklet=frames_per_tracklet)
