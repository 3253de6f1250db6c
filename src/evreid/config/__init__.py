"""Configuration: defaults, YAML files with ``_BASE_`` inheritance, the presets shipped in
the package (``evreid configs``), KEY VALUE overrides."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from evreid.config.defaults import get_cfg
from evreid.config.node import CfgNode, load_yaml_with_base
from evreid.config.validate import validate_config
from evreid.errors import EvreidError
from evreid.utils import atomic_write_text

__all__ = ["CfgNode", "get_cfg", "load_config", "load_preset", "list_presets", "preset_path",
           "resolve_config_file", "save_config", "config_hash", "load_yaml_with_base",
           "validate_config"]

# where the repository kept the presets before they moved into the package: the seed
# code's command lines (``--config_file configs/sdcl_paper.yaml``) still find them
FORMER_FOLDER = "configs"


def load_config(config_file: str | os.PathLike | None = None,
                opts: Iterable[str] = ()) -> CfgNode:
    """Defaults, then ``config_file`` (a YAML path or a preset name, see
    :func:`resolve_config_file`), then ``KEY VALUE`` overrides."""
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(resolve_config_file(config_file))
    cfg.merge_from_list(list(opts))
    return validate_config(cfg)


def load_preset(name: str, opts: Iterable[str] = ()) -> CfgNode:
    """A preset shipped inside the package, then ``KEY VALUE`` overrides."""
    return load_config(preset_path(name), opts)


def _presets_folder() -> Path:
    # an installed package is a folder on disk (pip unpacks wheels), so the presets
    # are plain files and a preset's _BASE_ finds its sibling
    return Path(str(resources.files("evreid.config") / "presets"))


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description (the first comment line, up to a colon)."""
    found = {}
    for path in sorted(_presets_folder().glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        line = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        found[path.stem] = line.split(":")[0].strip()
    return found


def preset_path(name: str) -> Path:
    """The file of the preset ``name`` (``sdcl_paper`` or ``sdcl_paper.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    path = _presets_folder() / f"{stem}.yaml"
    if "/" in stem or not path.is_file():
        raise EvreidError(f"unknown config preset {name!r}; presets: "
                          f"{', '.join(list_presets())}")
    return path


def resolve_config_file(spec: str | os.PathLike) -> Path:
    """A config file's path: ``spec`` itself when it is a file, else the preset it
    names: a bare name (``sdcl_paper``, ``sdcl_paper.yaml``) or the repository's
    former ``configs/<preset>.yaml``. A file of that name in the working folder wins."""
    path = Path(spec)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    folder = path.parent.as_posix()
    if folder in (".", FORMER_FOLDER) and stem in list_presets():
        return preset_path(stem)
    if folder == ".":
        raise EvreidError(f"config file not found: {spec} (nor a preset: "
                          f"{', '.join(list_presets())})")
    raise EvreidError(f"config file not found: {spec}")


def save_config(cfg: CfgNode, output_dir: str | os.PathLike,
                name: str = "config.yaml") -> Path:
    """Write the resolved config into a run folder (atomically)."""
    path = Path(output_dir) / name
    atomic_write_text(path, cfg.dump())
    return path


def config_hash(cfg: CfgNode) -> str:
    """A short stable hash of the resolved config, for result tables and caches."""
    return hashlib.sha256(cfg.dump().encode("utf-8")).hexdigest()[:12]
