"""Cost report (params, MACs, SynOps, timing) and the `evreid bench model` command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from evreid.cli import main
from evreid.config import load_config, preset_path
from evreid.models import build_model
from evreid.models.cost import count_macs, count_parameters, model_cost, sampling_macs
from evreid.models.resnet import build_resnet

CONFIGS = preset_path("sdcl_cpu").parent   # the presets shipped in the package


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, frames, events=None):
        return self.conv(frames.flatten(0, 1))


def test_macs_are_half_the_counted_flops_and_per_module():
    model = _OneConv()
    macs, by_module = count_macs(model, torch.randn(2, 3, 3, 8, 8), None)
    assert macs == 4 * 3 * 9 * 64 * 6          # cout * cin * k * k * pixels * frames
    assert by_module == {"conv": macs}
    assert count_parameters(model) == {"total": 112, "trainable": 112,
                                       "by_module": {"conv": 112}}


@pytest.mark.parametrize("last_stride,gmacs", [(1, 4.05), (2, 2.67)])
def test_resnet50_macs_per_frame_match_the_reference(last_stride, gmacs):
    # REFERENCE_RESULTS.md: ResNet-50 at 256x128 is about 2.7 GMACs (last stride 2)
    # or 4.1 GMACs (last stride 1) per frame
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = build_resnet("resnet50", last_stride=last_stride)

        def forward(self, frames, events=None):
            return self.backbone(frames.flatten(0, 1))

    macs, by_module = count_macs(Wrap(), torch.randn(1, 1, 3, 256, 128), None)
    assert macs / 1e9 == pytest.approx(gmacs, abs=0.01)
    assert by_module["backbone"] == macs


def test_model_report_on_cpu_preset():
    cfg = load_config(CONFIGS / "sdcl_cpu.yaml")
    torch.manual_seed(0)
    report = model_cost(lambda: build_model(cfg, 10), seq_len=4, bins=3, height=128, width=64,
                        batch=2, repeats=1, event_density=0.05)
    model = build_model(cfg, 10)
    assert report["params"]["total"] == sum(p.numel() for p in model.parameters())
    assert sum(report["params"]["by_module"].values()) == report["params"]["total"]
    # every convolution and matmul belongs to one top-level part
    assert sum(report["macs_by_module"].values()) == report["macs_per_clip"]
    assert report["flops_per_clip"] == 2 * report["macs_per_clip"]
    assert report["macs_per_frame"] * 4 == report["macs_per_clip"]
    assert set(report["macs_by_module"]) >= {"backbone", "event_branch", "event_head", "fusion",
                                            "aggregation"}
    # 4 heads x 2 points of 8 channels each at every query position; E2F: 4 frames of
    # 32x16 queries reading the event voxel (8 corners + weighting); F2E: 4 frames x 3
    # bins of 32x16 queries reading the frame map (4 corners + weighting). Same grid and
    # identity homography: P at the reference is the pixel itself (no sampling).
    a = cfg.MODEL.ALIGN
    assert (a.HEADS, a.POINTS, a.EMBED_DIM) == (4, 2, 32)
    e2f = 4 * 512 * 4 * 2 * 8 * 9
    f2e = 4 * 3 * 512 * 4 * 2 * 8 * 5
    assert report["uncounted"]["alignment_bilinear_macs_per_clip"] == e2f + f2e
    assert report["synops_per_clip"] > 0
    assert all(0 < r < 1 for r in report["firing_rates"].values())
    assert report["timing"]["forward_s"] > 0 and report["timing"]["backward_s"] > 0


def test_sampling_macs_zero_without_events():
    cfg = load_config(CONFIGS / "sdcl_cpu.yaml", ["MODEL.ARCH", "frames_only"])
    extra = sampling_macs(build_model(cfg, 3), torch.randn(1, 4, 3, 128, 64), None)
    assert extra == {"alignment_bilinear": 0, "deform_gathered_values": 0}


def test_bench_model_cli_json(capsys):
    rc = main(["bench", "model", "--config-file", str(CONFIGS / "sdcl_cpu.yaml"),
               "MODEL.ARCH", "events_only", "--json", "--no-timing", "--num-classes", "5"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "events_only"
    assert report["overrides"] == ["MODEL.ARCH", "events_only"]
    assert report["macs_per_clip"] > 0 and "timing" not in report
    assert list(report["firing_rates"]) == ["snn.layer0", "snn.layer1"]


def test_bench_model_cli_text_and_errors(capsys):
    rc = main(["bench", "model", "--config-file", str(CONFIGS / "sdcl_cpu.yaml"),
               "MODEL.ARCH", "frames_only", "--batch", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "parameters" in out and "MACs / clip" in out and "time / clip" in out
    assert main(["bench", "model", "MODEL.ARCH", "nope"]) == 2
    assert "unknown MODEL.ARCH 'nope'" in capsys.readouterr().err
    assert main(["bench"]) == 2
