"""Smoke tests of the benchmark scripts (CPU, smallest sizes) and the MFU arithmetic."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


# the scripts import their helper as the top-level module ``_device``; load it
# under that name so the tests and the scripts share one module object
device_mod = sys.modules.get("_device") or _load("_device", "_device")
bench_model = _load("bench_model", "bench_model_under_test")
bench_engine = _load("bench_engine", "bench_engine_under_test")

SMALL_CPU = ["--opts", "DATALOADER.IMS_PER_BATCH", "4", "DATALOADER.NUM_INSTANCE", "2",
             "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]",
             "TEST.IMS_PER_BATCH", "8"]
SMALL_PAPER = ["--paper-opts", "MODEL.BACKBONE", "resnet18", "MODEL.WIDTH_MULT", "0.125",
               "MODEL.FEAT_DIM", "64", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SEQ_LEN", "2"]


def _markdown_rows(text: str, first_column: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose header starts with ``first_column``."""
    lines = text.splitlines()
    rows, header = [], None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_column:
            header = cells
        elif header and line.startswith("|") and not cells[0].startswith("---"):
            rows.append(dict(zip(header, cells, strict=True)))
        elif not line.startswith("|"):
            header = None
    return rows


# ------------------------------------------------------------------ MFU arithmetic
def test_mfu_arithmetic_exact():
    # 1 GMAC per clip at 100 clips/s: training = 6 FLOPs per MAC -> 0.6 TFLOP/s
    train = device_mod.mfu(1e9, 100.0, 1.0, train=True)
    assert train["flops_per_clip"] == 6e9
    assert train["achieved_tflops"] == pytest.approx(0.6, rel=1e-12)
    assert train["mfu"] == pytest.approx(0.6, rel=1e-12)
    # inference = 2 FLOPs per MAC; against a 989.4 TFLOP/s peak
    infer = device_mod.mfu(2.5e9, 4000.0, 989.4, train=False)
    assert infer["flops_per_clip"] == 5e9
    assert infer["achieved_tflops"] == pytest.approx(20.0, rel=1e-12)
    assert infer["mfu"] == pytest.approx(20.0 / 989.4, rel=1e-12)
    no_peak = device_mod.mfu(1e9, 100.0, None, train=True)
    assert no_peak["mfu"] is None and no_peak["achieved_tflops"] == pytest.approx(0.6)
    assert device_mod.fmt_mfu(None) == "n/a"
    assert device_mod.fmt_mfu(0.1234) == "12.34 %"


class _Conv(nn.Module):
    """One 3x3 convolution per frame: MACs = T * H * W * C_out * C_in * 9 (analytic)."""

    uses_events = False

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)

    def forward(self, frames, events=None):
        return self.conv(frames.flatten(0, 1))


def test_clip_macs_and_mfu_on_an_analytic_model():
    seq_len, height, width = 2, 8, 4
    macs = device_mod.count_clip_macs(_Conv(), seq_len, 1, height, width,
                                      torch.device("cpu"), events=False)
    assert macs == seq_len * height * width * 4 * 3 * 9 == 6912
    # 1e9 clips/s of training: 6 * 6912 * 1e9 FLOP/s = 41.472 TFLOP/s; peak 82.944 -> 50 %
    figures = device_mod.mfu(macs, 1e9, 82.944, train=True)
    assert figures["achieved_tflops"] == pytest.approx(41.472, rel=1e-12)
    assert figures["mfu"] == pytest.approx(0.5, rel=1e-12)


def test_peak_table_lookup():
    lookup = device_mod.lookup_peak
    assert lookup("NVIDIA H100 80GB HBM3", "bf16")[0] == 989.4
    assert lookup("NVIDIA H100 80GB HBM3", "fp32")[0] == 66.9
    assert lookup("NVIDIA H100 PCIe", "bf16")[0] == 756.5
    assert lookup("NVIDIA H100 NVL", "bf16")[0] == 835.5
    assert lookup("NVIDIA H200", "bf16")[0] == 989.4
    assert lookup("NVIDIA H200 NVL", "bf16")[0] == 835.5
    assert lookup("NVIDIA A100-SXM4-80GB", "tf32")[0] == 156.0
    assert lookup("NVIDIA L40S", "bf16")[0] == 362.1   # not L4
    assert lookup("NVIDIA L4", "bf16")[0] == 121.0
    peak, source = lookup("NVIDIA H100 80GB HBM3", "bf16")
    assert "vendor datasheet, dense" in source
    peak, source = lookup("Some Future GPU", "bf16")
    assert peak is None and "--peak-tflops" in source


def _setup(argv: list[str]):
    parser = argparse.ArgumentParser()
    device_mod.add_device_arguments(parser)
    return device_mod.resolve_setup(parser.parse_args(argv), parser)


def test_cpu_setup_peak_and_flags():
    setup = _setup(["--device", "cpu"])
    assert setup.peak()[0] is None
    assert setup.label.startswith("CPU (")
    assert setup.flags() == "fp32, contiguous, eager, warm-up 1"
    setup = _setup(["--amp", "--channels-last", "--compile", "--warmup", "2",
                    "--peak-tflops", "2.5"])
    assert setup.peak() == (2.5, "--peak-tflops")
    assert setup.flags() == "amp bf16, channels_last, compile, warm-up 2"
    assert setup.flags("boom") == "amp bf16, channels_last, compile FAILED, eager, warm-up 2"


def test_gpu_setup_peak_follows_precision(monkeypatch):
    """The GPU-mode bookkeeping without a GPU: the name is faked."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    cuda = torch.device("cuda", 0)
    assert device_mod.Setup(cuda, amp=True).peak() == (
        989.4, "H100 SXM bf16, vendor datasheet, dense")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert device_mod.Setup(cuda).peak()[0] == 494.7
    assert device_mod.Setup(cuda).flags() == (
        "fp32 (tf32 convs), contiguous, eager, cudnn.benchmark, warm-up 1")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert device_mod.Setup(cuda).peak()[0] == 66.9
    assert device_mod.Setup(cuda, peak_override=100.0).peak() == (100.0, "--peak-tflops")
    assert device_mod.device_label(cuda) == "NVIDIA H100 80GB HBM3 (GPU)"


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-GPU case")
def test_device_auto_and_missing_cuda():
    assert _setup(["--device", "auto"]).device.type == "cpu"
    with pytest.raises(SystemExit):
        _setup(["--device", "cuda"])
    with pytest.raises(SystemExit):
        bench_model.main(["--device", "cuda", "--tables", "cpu"])


# ------------------------------------------------------------------ bench_model
def test_bench_model_cpu_smoke(tmp_path, one_torch_thread):
    out = tmp_path / "model.md"
    assert bench_model.main(["--threads", "1", "--tables", "cpu", "--archs", "sdcl,frames_only",
                             "--cpu-batch", "2", "--repeats", "1", "--peak-tflops", "1",
                             "--out", str(out)]) == 0
    text = out.read_text()
    assert "Timed on **CPU (1 thread)**" in text
    rows = _markdown_rows(text, "arch")
    assert [r["arch"] for r in rows] == ["sdcl", "frames_only"]
    for r in rows:
        assert {"train clips/s", "train MFU", "eval clips/s", "eval MFU", "device",
                "flags"} <= set(r)
        assert float(r["train clips/s"]) > 0 and float(r["eval clips/s"]) > 0
        assert float(r["GMACs / clip"]) > 0
        assert r["device"] == "CPU (1 thread)"
        assert r["flags"] == "fp32, contiguous, eager, warm-up 1"
        # peak 1 TFLOP/s: MFU in percent = 100 x achieved TFLOP/s
        assert float(r["train MFU"].rstrip(" %")) == pytest.approx(
            100 * float(r["train TFLOP/s"]), abs=0.01)
        assert r["note"] == "-"
    assert rows[0]["firing rates"] != "-" and rows[1]["firing rates"] == "-"


def test_bench_model_flags_and_failed_compile_fall_back(tmp_path, one_torch_thread,
                                                        monkeypatch):
    def broken_compile(model, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("inductor: no C++ compiler\nmore detail")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    out = tmp_path / "model.md"
    assert bench_model.main(["--threads", "1", "--tables", "cpu", "--archs", "frames_only",
                             "--cpu-batch", "2", "--repeats", "1", "--amp", "--channels-last",
                             "--compile", "--out", str(out)]) == 0
    (row,) = _markdown_rows(out.read_text(), "arch")
    assert row["flags"] == "amp bf16, channels_last, compile FAILED, eager, warm-up 1"
    assert "RuntimeError: inductor: no C++ compiler" in row["note"]
    assert "more detail" not in row["note"]
    assert float(row["train clips/s"]) > 0
    assert row["train MFU"] == "n/a" and row["eval MFU"] == "n/a"


# ------------------------------------------------------------------ bench_engine
def test_bench_engine_cpu_smoke(tmp_path, capsys, one_torch_thread):
    from evreid.data.synthetic import ensure_synthetic

    data = tmp_path / "data"
    ensure_synthetic(data, "tiny", "clean", 0, workers=1)
    assert bench_engine.main(["--threads", "1", "--data", str(data), "--preset", "tiny",
                              "--steps", "1", "--output-dir", str(tmp_path / "run"),
                              "--paper", "--paper-steps", "1", "--paper-batch", "2",
                              "--peak-tflops", "1", "--json", *SMALL_CPU, *SMALL_PAPER]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "CPU (1 thread)"
    assert report["peak_tflops"] == 1.0
    keys = [(r["scale"], r["arch"], r["measure"]) for r in report["rows"]]
    assert keys == [("demo", "sdcl", "training"), ("demo", "sdcl", "extraction"),
                    ("demo", "frames_only", "training"), ("demo", "frames_only", "extraction"),
                    ("paper", "sdcl", "training"), ("paper", "frames_only", "training")]
    for r in report["rows"]:
        assert r["throughput"] > 0 and r["gmacs_per_clip"] > 0
        assert r["device"] == "CPU (1 thread)"
        assert r["flags"] == "fp32, contiguous, eager, warm-up 1"
        assert r["mfu"] == pytest.approx(r["achieved_tflops"], rel=1e-12)  # peak 1
        assert r["note"] == ""
    train = report["rows"][0]
    assert train["unit"] == "clips/s" and train["clips"] == 4
    assert train["flops_per_clip"] == pytest.approx(6e9 * train["gmacs_per_clip"])
    extract = report["rows"][1]
    assert extract["unit"] == "tracklets/s" and extract["tracklets"] > 0
    assert extract["flops_per_clip"] == pytest.approx(2e9 * extract["gmacs_per_clip"])


def test_bench_engine_text_table(capsys, one_torch_thread):
    assert bench_engine.main(["--threads", "1", "--no-demo-scale", "--paper", "--archs",
                              "frames_only", "--paper-steps", "1", "--paper-batch", "2",
                              "--amp", "--channels-last", *SMALL_PAPER]) == 0
    text = capsys.readouterr().out
    assert "device: CPU (1 thread)" in text
    (row,) = _markdown_rows(text, "scale")
    assert row["scale"] == "paper" and row["arch"] == "frames_only"
    assert float(row["throughput"].split()[0]) > 0
    assert row["MFU"] == "n/a"
    assert row["flags"] == "amp bf16, channels_last, eager, warm-up 1"
