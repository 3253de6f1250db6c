"""A nested configuration node in the yacs / fast-reid conventions.

Keys are upper case and dotted (``MODEL.ARCH``). Every key must exist in the
defaults: a YAML file or a ``KEY VALUE`` override that names an unknown key is
an error naming it and the closest valid key. A YAML file may inherit another
with ``_BASE_: relative/path.yaml``.
"""

from __future__ import annotations

import ast
import copy
import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from evreid.errors import EvreidError

BASE_KEY = "_BASE_"


class CfgNode(dict):
    """A dict with attribute access, type-checked merges and freezing."""

    _FROZEN = "__frozen__"

    def __init__(self, init: dict | None = None) -> None:
        super().__init__()
        object.__setattr__(self, self._FROZEN, False)
        for key, value in (init or {}).items():
            self[key] = CfgNode(value) if isinstance(value, dict) else value

    # attribute access -------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, self._FROZEN):
            raise EvreidError(f"config is frozen; cannot set {name!r}")
        self[name] = CfgNode(value) if isinstance(value, dict) and not isinstance(
            value, CfgNode) else value

    def __deepcopy__(self, memo: dict) -> CfgNode:
        return CfgNode({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def clone(self) -> CfgNode:
        return copy.deepcopy(self)

    def freeze(self) -> CfgNode:
        for value in self.values():
            if isinstance(value, CfgNode):
                value.freeze()
        object.__setattr__(self, self._FROZEN, True)
        return self

    def is_frozen(self) -> bool:
        return getattr(self, self._FROZEN)

    # flat views ---------------------------------------------------------------
    def flat_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for key, value in self.items():
            full = f"{prefix}{key}"
            if isinstance(value, CfgNode):
                keys.extend(value.flat_keys(full + "."))
            else:
                keys.append(full)
        return keys

    def get_key(self, dotted: str) -> Any:
        node: Any = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, CfgNode) else copy.deepcopy(v)
                for k, v in self.items()}

    def dump(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    # merging ------------------------------------------------------------------
    def _unknown_key(self, dotted: str, source: str) -> EvreidError:
        valid = self.flat_keys()
        close = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.5)
        if not close:
            # compare leaf names too: "SOLVER.BASE_RL" vs "SOLVER.BASE_LR"
            leaf = dotted.split(".")[-1]
            by_leaf = {k.split(".")[-1]: k for k in valid}
            close = [by_leaf[m] for m in difflib.get_close_matches(leaf, list(by_leaf), n=1)]
        hint = f"; did you mean {close[0]}?" if close else ""
        return EvreidError(f"unknown config key {dotted} in {source}{hint}")

    def _set_checked(self, dotted: str, value: Any, source: str) -> None:
        if self.is_frozen():
            raise EvreidError(f"config is frozen; cannot set {dotted} from {source}")
        parts = dotted.split(".")
        node: Any = self
        for i, part in enumerate(parts):
            if not isinstance(node, CfgNode) or part not in node:
                raise self._unknown_key(dotted, source)
            if i < len(parts) - 1:
                node = node[part]
        old = node[parts[-1]]
        if isinstance(old, CfgNode):
            if not isinstance(value, dict):
                raise EvreidError(
                    f"config key {dotted} in {source} is a section; got {value!r}")
            for sub, subval in value.items():
                self._set_checked(f"{dotted}.{sub}", subval, source)
            return
        node[parts[-1]] = _coerce(old, value, dotted, source)

    def merge_from_dict(self, values: dict, source: str = "dict") -> CfgNode:
        for key, value in values.items():
            self._set_checked(key, value, source)
        return self

    def merge_from_file(self, path: str | os.PathLike) -> CfgNode:
        self.merge_from_dict(load_yaml_with_base(path), source=str(path))
        return self

    def merge_from_list(self, opts: Iterable[str]) -> CfgNode:
        opts = list(opts)
        if len(opts) % 2:
            raise EvreidError(
                f"config overrides must be KEY VALUE pairs; {opts[-1]!r} has no value")
        for key, raw in zip(opts[0::2], opts[1::2], strict=True):
            self._set_checked(key, _parse_literal(raw), source="command line")
        return self


def _parse_literal(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        lowered = raw.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return raw


def _coerce(old: Any, value: Any, key: str, source: str) -> Any:
    """Cast ``value`` to the type of the default ``old``, or fail naming the key."""
    if old is None or value is None:
        return value
    if isinstance(old, bool):
        if isinstance(value, bool):
            return value
        raise EvreidError(f"config key {key} in {source} expects true/false; got {value!r}")
    if isinstance(old, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise EvreidError(f"config key {key} in {source} expects an integer; got {value!r}")
    if isinstance(old, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise EvreidError(f"config key {key} in {source} expects a number; got {value!r}")
    if isinstance(old, str):
        if isinstance(value, str):
            return value
        raise EvreidError(f"config key {key} in {source} expects a string; got {value!r}")
    if isinstance(old, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
        raise EvreidError(f"config key {key} in {source} expects a list; got {value!r}")
    return value


def load_yaml_with_base(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML config; a ``_BASE_`` entry names a file (relative to this one)
    whose values this file overrides, recursively."""
    path = Path(path)
    if path.resolve() in _seen:
        raise EvreidError(f"config file {path} inherits itself through _BASE_")
    if not path.is_file():
        raise EvreidError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise EvreidError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise EvreidError(f"config file {path} must hold a mapping at the top level")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    merged = load_yaml_with_base(path.parent / base, _seen + (path.resolve(),))
    _deep_update(merged, data)
    return merged


def _deep_update(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value
