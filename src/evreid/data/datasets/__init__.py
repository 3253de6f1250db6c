"""Dataset registry: ``build_dataset(name, root, **options)``.

Names: ``mars``, ``ilidsvid``, ``prid2011``, ``synthetic`` and their
``*_event`` variants (same splits, events required for every tracklet);
``eventreid`` (real event cameras, events only); ``evreid_aer`` (EvReID:
RGB + rendered event pictures).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from evreid.data.datasets.base import (
    DatasetError,
    Tracklet,
    VideoDataset,
    attach_events,
    natural_key,
)
from evreid.data.datasets.eventreid import load_eventreid
from evreid.data.datasets.evreid_aer import load_evreid_aer
from evreid.data.datasets.ilidsvid import load_ilidsvid
from evreid.data.datasets.mars import load_mars
from evreid.data.datasets.prid2011 import load_prid2011
from evreid.data.datasets.synthetic import load_synthetic

__all__ = ["DATASETS", "DatasetError", "Tracklet", "VideoDataset", "build_dataset",
           "build_dataset_from_cfg",
           "dataset_names", "natural_key", "register_dataset"]

DATASETS: dict[str, Callable[..., VideoDataset]] = {
    "mars": load_mars,
    "ilidsvid": load_ilidsvid,
    "prid2011": load_prid2011,
    "synthetic": load_synthetic,
    "eventreid": load_eventreid,
    "evreid_aer": load_evreid_aer,
}
# names used by the seed paper's scripts
ALIASES = {"prid": "prid2011", "ilids": "ilidsvid", "ilids-vid": "ilidsvid",
           "ilids_vid": "ilidsvid", "event_reid": "eventreid", "event-reid": "eventreid",
           "tripro": "evreid_aer", "evreid-aer": "evreid_aer"}
EVENT_SUFFIX = "_event"


def register_dataset(name: str, loader: Callable[..., VideoDataset]) -> None:
    DATASETS[name] = loader


def dataset_names() -> list[str]:
    return sorted(DATASETS) + sorted(n + EVENT_SUFFIX for n in DATASETS)


def build_dataset_from_cfg(cfg, **overrides) -> VideoDataset:
    """``build_dataset`` from ``DATASETS.*``: options the loader does not take are
    left out, unless the config sets them away from their default (an error)."""
    from evreid.config import get_cfg

    defaults = get_cfg().DATASETS
    wanted = {"split_id": "SPLIT_ID", "protocol": "PROTOCOL", "min_seq_len": "MIN_SEQ_LEN"}
    base_name = ALIASES.get(cfg.DATASETS.NAME.lower().removesuffix(EVENT_SUFFIX),
                            cfg.DATASETS.NAME.lower().removesuffix(EVENT_SUFFIX))
    loader = DATASETS.get(base_name)
    accepted = inspect.signature(loader).parameters if loader else {}
    options = {}
    for option, key in wanted.items():
        value = cfg.DATASETS[key]
        if option in accepted:
            options[option] = value
        elif value != defaults[key]:
            raise DatasetError(f"DATASETS.{key} = {value!r} does not apply to dataset "
                               f"{cfg.DATASETS.NAME!r}")
    options.update(overrides)
    return build_dataset(cfg.DATASETS.NAME, cfg.DATASETS.ROOT_DIR,
                         events_dir=cfg.DATASETS.EVENTS_DIR or None, **options)


def build_dataset(name: str, root: str | Path, events_dir: str | Path | None = None,
                  **options) -> VideoDataset:
    """Load a dataset by name.

    ``options`` go to the dataset's loader (``split_id``, ``protocol``,
    ``min_seq_len``, ...); an option the loader does not take is an error naming
    it. Events are attached from ``events_dir`` (default ``<dataset folder>/events``)
    when present; ``*_event`` names require them for every tracklet.
    """
    key = name.lower()
    require_events = key.endswith(EVENT_SUFFIX)
    base_name = key.removesuffix(EVENT_SUFFIX)
    base_name = ALIASES.get(base_name, base_name)
    if base_name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {dataset_names()}")
    loader = DATASETS[base_name]
    accepted = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = sorted(p for p in accepted if p != "root")
        raise DatasetError(f"dataset {base_name} does not take option(s) {unknown}; "
                           f"it takes {valid}")
    dataset = loader(root, **options)
    if require_events:
        dataset.name = base_name + EVENT_SUFFIX
    events_path = Path(events_dir) if events_dir else Path(dataset.root) / "events"
    if require_events and not events_path.is_dir():
        raise DatasetError(
            f"{dataset.name}: events folder {events_path} not found (make it with: evreid "
            f"simulate --dataset {base_name} --root {root})")
    if events_path.is_dir():
        attach_events(dataset, events_path, required=require_events)
    return dataset
