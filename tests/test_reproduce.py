"""Reproduction tables: every row names a real arch and valid config overrides."""

from __future__ import annotations

import pytest

from evreid.config import load_preset
from evreid.engine.reproduce import TABLES, markdown
from evreid.models import list_models


@pytest.mark.parametrize("name", list(TABLES))
def test_rows_are_buildable_configs(name):
    for row in TABLES[name].rows:
        assert row.arch in list_models(), row
        cfg = load_preset("demo", ["MODEL.ARCH", row.arch, *row.overrides])
        assert row.arch == cfg.MODEL.ARCH
        assert row.protocol in ("clean", "blur", "occlusion", "lowlight")


def test_fig6_covers_one_to_four():
    rows = TABLES["fig6"].rows
    layers = sorted(int(r.overrides[1]) for r in rows if r.overrides[0] == "MODEL.SNN.LAYERS")
    maps = sorted(int(r.overrides[1]) for r in rows if r.overrides[0] == "MODEL.DEFORM.MAPPINGS")
    assert layers == maps == [1, 2, 3, 4]


def test_markdown_mean_and_std():
    report = {"title": "T", "dataset": "synthetic", "preset": "small", "seeds": [0, 1],
              "paper": {"a": "1 / 2"},
              "runs": [{"row": "a", "rank1": 50.0, "mAP": 40.0, "mINP": 10.0},
                       {"row": "a", "rank1": 70.0, "mAP": 60.0, "mINP": 30.0}]}
    text = markdown(report)
    assert "| a | 60.0 ± 10.0 | 50.0 ± 10.0 | 20.0 ± 10.0 | 2 | 1 / 2 |" in text
