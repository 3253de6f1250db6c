"""benchmarks/bench_ops.py: what it counts (on the CPU preset, not paper scale)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evreid.config import preset_path

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bench_ops():
    spec = importlib.util.spec_from_file_location("bench_ops_under_test",
                                                  ROOT / "benchmarks" / "bench_ops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_non_view_calls_and_the_lif_operator_once_per_layer():
    bench = _bench_ops()
    cfg = preset_path("sdcl_cpu")
    sdcl = bench.count_step("sdcl", cfg, batch=2, num_classes=5, density=0.05, opts=[])
    frames = bench.count_step("frames_only", cfg, batch=2, num_classes=5, density=0.05,
                              opts=[])
    assert sdcl["total"] == sdcl["forward"] + sdcl["backward"]
    assert sdcl["total"] == sum(sdcl["by_op_forward"].values()) + sum(
        sdcl["by_op_backward"].values())
    # one operator call per spiking layer each way, whatever T x bins
    assert sdcl["by_op_forward"]["evreid.lif_multistep"] == 2
    assert sdcl["by_op_backward"]["evreid.lif_multistep_backward"] == 2
    assert "evreid.lif_multistep" not in frames["by_op_forward"]
    # views and metadata calls launch nothing and are not counted
    for name in ("aten.view", "aten.permute", "aten.detach", "aten.transpose", "aten.expand"):
        assert name not in sdcl["by_op_forward"] and name not in sdcl["by_op_backward"]
    assert 0 < frames["total"] < sdcl["total"]
