"""Feature extraction and evaluation of a model on a dataset's query / gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evreid.data.datasets.base import VideoDataset
from evreid.engine.data import batch_to_device, build_test_loader, feeds_events, feeds_frames
from evreid.engine.precision import amp_dtype
from evreid.metrics import evaluate, query_gallery_distances, summary_row
from evreid.metrics.features import save_features
from evreid.parallel import iterate_loader


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, device: torch.device,
                     desc: str = "features", amp: bool = False,
                     progress: bool = True, amp_dtype: torch.dtype = torch.float16
                     ) -> torch.Tensor:
    """One embedding per tracklet; the clips of a tracklet (dense) are averaged.

    ``amp``: autocast to ``amp_dtype`` on CUDA (ignored elsewhere)."""
    model.eval()
    out = []
    for batch in tqdm(iterate_loader(loader), desc=desc, total=len(loader), leave=False,
                      dynamic_ncols=True, disable=not progress):
        moved = batch_to_device(batch, device)   # compact event counts -> float there
        frames, events = moved.get("frames"), moved.get("events")
        with torch.autocast(device.type, dtype=amp_dtype,
                            enabled=amp and device.type == "cuda"):
            feats = model(frames, events).float().cpu()
        counts = batch["clip_counts"]
        owner = torch.repeat_interleave(torch.arange(len(counts)), counts)
        summed = torch.zeros(len(counts), feats.shape[1]).index_add_(0, owner, feats)
        out.append(summed / counts[:, None])
    return torch.cat(out)


def evaluate_model(cfg, model: torch.nn.Module, dataset: VideoDataset, device: torch.device,
                   features_path: str | Path | None = None, progress: bool = True) -> dict:
    """Extract query / gallery features, rank, and return the metrics.

    The MARS ``mars_official`` protocol is taken from the dataset; distance,
    re-ranking and sampler from ``TEST.*``.
    """
    uses_events, uses_frames = feeds_events(model, cfg), feeds_frames(model)
    amp, dtype = cfg.SOLVER.AMP, amp_dtype(cfg)
    qf = extract_features(model, build_test_loader(cfg, dataset.query, uses_events, uses_frames),
                          device, "query", amp, progress, dtype)
    gf = extract_features(model, build_test_loader(cfg, dataset.gallery, uses_events,
                                                   uses_frames),
                          device, "gallery", amp, progress, dtype)
    q_pids = np.array([t.pid for t in dataset.query])
    g_pids = np.array([t.pid for t in dataset.gallery])
    q_cams = np.array([t.camid for t in dataset.query])
    g_cams = np.array([t.camid for t in dataset.gallery])
    distmat = query_gallery_distances(qf, gf, cfg.TEST.DISTANCE, cfg.TEST.RERANKING)
    result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=cfg.TEST.MAX_RANK,
                      protocol=dataset.protocol)
    if features_path is not None:
        save_features(features_path, query_features=qf.numpy(), gallery_features=gf.numpy(),
                      query_pids=q_pids, gallery_pids=g_pids, query_camids=q_cams,
                      gallery_camids=g_cams, protocol=np.array(dataset.protocol))
    result["distmat"] = distmat
    result["summary"] = summary_row(result)
    return result
