"""Configuration: defaults, YAML files with ``_BASE_`` inheritance, KEY VALUE overrides."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from evreid.config.defaults import get_cfg
from evreid.config.node import CfgNode, load_yaml_with_base
from evreid.config.validate import validate_config
from evreid.utils import atomic_write_text

__all__ = ["CfgNode", "get_cfg", "load_config", "load_preset", "save_config", "config_hash",
           "load_yaml_with_base", "validate_config"]


def load_config(config_file: str | os.PathLike | None = None,
                opts: Iterable[str] = ()) -> CfgNode:
    """Defaults, then ``config_file`` (if any), then ``KEY VALUE`` overrides."""
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return validate_config(cfg)


def load_preset(name: str, opts: Iterable[str] = ()) -> CfgNode:
    """A preset shipped inside the package (``evreid/config/presets/<name>.yaml``),
    then ``KEY VALUE`` overrides; works from an installed wheel, no repository needed."""
    from importlib import resources

    from evreid.errors import EvreidError

    preset = resources.files("evreid.config") / "presets" / f"{name}.yaml"
    if not preset.is_file():
        raise EvreidError(f"unknown config preset {name!r}")
    with resources.as_file(preset) as path:
        return load_config(path, opts)


def save_config(cfg: CfgNode, output_dir: str | os.PathLike,
                name: str = "config.yaml") -> Path:
    """Write the resolved config into a run folder (atomically)."""
    path = Path(output_dir) / name
    atomic_write_text(path, cfg.dump())
    return path


def config_hash(cfg: CfgNode) -> str:
    """A short stable hash of the resolved config, for result tables and caches."""
    return hashlib.sha256(cfg.dump().encode("utf-8")).hexdigest()[:12]
