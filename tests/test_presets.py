"""The config presets live inside the package: found by name from any working folder
(no repository needed), listed by `evreid configs`, shipped in the wheel."""

from __future__ import annotations

import fnmatch
import re
from importlib import resources
from pathlib import Path

import pytest

from evreid.cli import main
from evreid.config import list_presets, load_config, load_preset, preset_path
from evreid.errors import EvreidError

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["demo", "eventreid_events_only", "sdcl_cpu", "sdcl_paper"]
PACKAGE_FOLDER = Path(str(resources.files("evreid.config") / "presets"))


def test_every_preset_file_loads_by_name_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sorted(p.stem for p in PACKAGE_FOLDER.glob("*.yaml")) == NAMES
    assert list(list_presets()) == NAMES
    for name in NAMES:
        assert preset_path(name) == PACKAGE_FOLDER / f"{name}.yaml"
        by_name = load_config(name).dump()
        assert by_name == load_config(f"{name}.yaml").dump()
        assert by_name == load_config(PACKAGE_FOLDER / f"{name}.yaml").dump()
        assert by_name == load_preset(name).dump()
        # the seed code's command lines name the repository's former configs/ folder
        assert by_name == load_config(f"configs/{name}.yaml").dump()
    # _BASE_ resolves beside the preset: the event-only preset inherits sdcl_cpu
    events_only, cpu = load_config("eventreid_events_only"), load_config("sdcl_cpu")
    assert events_only.MODEL.ARCH == "events_only" and cpu.MODEL.ARCH == "sdcl"
    assert events_only.MODEL.WIDTH_MULT == cpu.MODEL.WIDTH_MULT == 0.25


def test_a_file_in_the_working_folder_wins_over_the_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sdcl_cpu.yaml").write_text("SEED: 7\n")
    assert load_config("sdcl_cpu.yaml").SEED == 7
    assert load_config("sdcl_cpu.yaml").MODEL.ARCH == load_config(None).MODEL.ARCH
    assert load_config("sdcl_cpu").MODEL.WIDTH_MULT == 0.25     # no file named sdcl_cpu


def test_unknown_names_and_missing_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EvreidError) as info:
        load_config("sdcl_papr")
    assert str(info.value) == ("config file not found: sdcl_papr (nor a preset: demo, "
                               "eventreid_events_only, sdcl_cpu, sdcl_paper)")
    with pytest.raises(EvreidError) as info:
        load_config("runs/sdcl_cpu.yaml")      # a folder other than configs/: a path
    assert str(info.value) == "config file not found: runs/sdcl_cpu.yaml"
    with pytest.raises(EvreidError) as info:
        load_preset("../node")
    assert str(info.value) == ("unknown config preset '../node'; presets: demo, "
                               "eventreid_events_only, sdcl_cpu, sdcl_paper")


def test_configs_command_lists_and_prints(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["configs"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "demo                   The embedded demo",
        "eventreid_events_only  Event-only re-ID on real event cameras",
        "sdcl_cpu               SDCL at CPU scale",
        "sdcl_paper             SDCL at paper scale (CVPR 2023, §4.2 and Fig. 2)",
    ]
    assert main(["configs", "sdcl_paper"]) == 0
    assert capsys.readouterr().out == (PACKAGE_FOLDER / "sdcl_paper.yaml").read_text()
    assert main(["configs", "eventreid_events_only", "--resolved"]) == 0
    assert capsys.readouterr().out == load_preset("eventreid_events_only").dump()
    assert main(["configs", "nope"]) == 2
    assert capsys.readouterr().err == ("evreid configs: error: unknown config preset 'nope'; "
                                       "presets: demo, eventreid_events_only, sdcl_cpu, "
                                       "sdcl_paper\n")


def test_the_wheel_ships_every_preset_and_the_repository_holds_no_copy():
    # [tool.setuptools.package-data] evreid = [...] (no tomllib on Python 3.10)
    section = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    package_data = re.findall(r'"([^"]+)"', re.search(r"^evreid = \[(.*)\]$", section,
                                                      re.M).group(1))
    for name in NAMES:
        relative = (PACKAGE_FOLDER / f"{name}.yaml").relative_to(PACKAGE_FOLDER.parents[1])
        assert any(fnmatch.fnmatch(relative.as_posix(), glob) for glob in package_data), name
    assert not list(ROOT.glob("configs/*.y*ml"))
