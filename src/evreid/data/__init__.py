"""Data: datasets (folders -> Tracklets), clip/identity sampling, paired transforms."""

from evreid.data.datasets import (
    Tracklet,
    VideoDataset,
    build_dataset,
    build_dataset_from_cfg,
    dataset_names,
)

__all__ = ["Tracklet", "VideoDataset", "build_dataset", "build_dataset_from_cfg",
           "dataset_names"]
