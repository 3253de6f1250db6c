"""Python API for using a trained model: embed clips, search a gallery.

    from evreid.api import Embedder, GallerySearch
    embedder = Embedder("runs/demo/sdcl/best.pth")
    feats = embedder.embed(frames, events)          # [B, D]
    search = GallerySearch(gallery_feats)           # exact (torch); faiss if asked
    distances, indices = search.search(feats, k=10)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from evreid.errors import EvreidError


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                          trust: bool = False):
    """(model in eval mode, its config) from an evreid checkpoint; nothing else needed.

    The file is read as plain data (``weights_only=True``); ``trust=True`` also
    accepts old checkpoints that need full unpickling (which can run code)."""
    import yaml

    from evreid.config import get_cfg, validate_config
    from evreid.engine.checkpoint import load_checkpoint, load_model_weights
    from evreid.models import build_model

    state = load_checkpoint(path, trust=trust)
    if not isinstance(state.get("config"), str) or "num_classes" not in state:
        raise EvreidError(f"checkpoint {path} carries no config; it was not written by "
                          f"evreid train")
    cfg = get_cfg()
    try:
        embedded = yaml.safe_load(state["config"]) or {}
    except yaml.YAMLError as exc:
        raise EvreidError(f"checkpoint {path}: embedded config is not valid YAML: "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(embedded, dict):
        raise EvreidError(f"checkpoint {path}: embedded config is not a mapping")
    cfg.merge_from_dict(embedded, source=f"{path} (embedded config)")
    validate_config(cfg)
    model = build_model(cfg, int(state["num_classes"]))
    load_model_weights(model, state, str(path))
    return model.to(device).eval(), cfg


class Embedder:
    """Embeddings of clips with the model and test preprocessing of a checkpoint."""

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device = "cpu",
                 trust: bool = False) -> None:
        from evreid.data.transforms import build_transforms

        try:
            self.device = torch.device(device)
        except RuntimeError:
            raise EvreidError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
        self.model, self.cfg = model_from_checkpoint(checkpoint, self.device, trust=trust)
        self.transform = build_transforms(self.cfg, is_train=False)
        self.uses_events = bool(getattr(self.model, "uses_events", True))

    @torch.no_grad()
    def embed(self, frames: torch.Tensor | np.ndarray,
              events: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """frames: uint8 [B, T, H, W, 3] or float [B, T, 3, H, W] in [0, 1];
        events: counts [B, T, bins, 2, H, W] (required by event models). -> [B, D]."""
        frames = torch.as_tensor(frames)
        if frames.ndim != 5:
            raise EvreidError(f"frames must be 5-D [B, T, ...]; got shape {tuple(frames.shape)}")
        if frames.dtype == torch.uint8:
            frames = frames.permute(0, 1, 4, 2, 3).float() / 255.0
        if self.uses_events and events is None:
            raise EvreidError(f"{self.cfg.MODEL.ARCH} needs events [B, T, bins, 2, H, W]")
        clips = []
        for b in range(frames.shape[0]):
            clip = {"frames": frames[b].float()}
            if self.uses_events:
                clip["events"] = torch.as_tensor(events[b]).float()
            clips.append(self.transform(clip, np.random.default_rng(0)))
        batch_frames = torch.stack([c["frames"] for c in clips]).to(self.device)
        batch_events = (torch.stack([c["events"] for c in clips]).to(self.device)
                        if self.uses_events else None)
        return self.model(batch_frames, batch_events).float().cpu()

    def embed_tracklets(self, tracklets: Sequence, batch_size: int = 16) -> torch.Tensor:
        """One embedding per Tracklet with the config's test clip sampler."""
        from evreid.engine.data import build_test_loader, feeds_events
        from evreid.engine.evaluator import extract_features

        cfg = self.cfg.clone()
        cfg.TEST.IMS_PER_BATCH = batch_size
        loader = build_test_loader(cfg, tracklets, feeds_events(self.model, cfg))
        return extract_features(self.model, loader, self.device, "embed", progress=False)


class GallerySearch:
    """Nearest gallery items by cosine or euclidean distance.

    ``backend="torch"`` is exact (one matrix product and top-k); ``"faiss"``
    uses a flat faiss index when the faiss package is installed (also exact,
    faster for very large galleries).
    """

    def __init__(self, gallery: torch.Tensor | np.ndarray, metric: str = "cosine",
                 backend: str = "torch") -> None:
        if metric not in ("cosine", "euclidean"):
            raise EvreidError(f"unknown metric {metric!r}; choose cosine or euclidean")
        if backend not in ("torch", "faiss"):
            raise EvreidError(f"unknown backend {backend!r}; choose torch or faiss")
        self.metric, self.backend = metric, backend
        self.gallery = self._prepare(torch.as_tensor(gallery, dtype=torch.float32))
        self.index = None
        if backend == "faiss":
            try:
                import faiss
            except ImportError:
                raise EvreidError("backend faiss needs the faiss package: pip install "
                                  "faiss-cpu") from None
            self.index = (faiss.IndexFlatIP if metric == "cosine" else faiss.IndexFlatL2)(
                self.gallery.shape[1])
            self.index.add(self.gallery.numpy())

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2:
            raise EvreidError(f"features must be [N, D]; got shape {tuple(x.shape)}")
        return torch.nn.functional.normalize(x, dim=1) if self.metric == "cosine" else x

    def search(self, query: torch.Tensor | np.ndarray, k: int = 10
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(distances [Q, k], gallery indices [Q, k]), closest first, ties by index."""
        q = self._prepare(torch.as_tensor(query, dtype=torch.float32))
        k = min(k, self.gallery.shape[0])
        if self.index is not None:
            scores, indices = self.index.search(q.numpy(), k)
            scores, indices = torch.from_numpy(scores), torch.from_numpy(indices)
            if self.metric == "cosine":
                return 1.0 - scores, indices
            return scores.clamp_min(0).sqrt(), indices
        dist = (1.0 - q @ self.gallery.T if self.metric == "cosine"
                else torch.cdist(q, self.gallery))
        order = torch.argsort(dist, dim=1, stable=True)[:, :k]
        return torch.gather(dist, 1, order), order
