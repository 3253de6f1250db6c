"""Export the embedding model to ONNX and check it against PyTorch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from evreid.errors import EvreidError


class EmbeddingGraph(torch.nn.Module):
    """The eval-mode model as a graph of (frames[, events]) -> embedding."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        self.uses_events = bool(getattr(model, "uses_events", True))

    def forward(self, frames: torch.Tensor, events: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(frames, events if self.uses_events else None)


def example_inputs(cfg, batch: int = 1, seed: int = 0,
                   event_rate: float = 0.3) -> tuple[torch.Tensor, ...]:
    height, width = cfg.INPUT.SIZE_TEST
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randn(batch, cfg.INPUT.SEQ_LEN, 3, height, width, generator=generator)
    events = torch.poisson(torch.full((batch, cfg.INPUT.SEQ_LEN, cfg.EVENTS.BINS, 2, height,
                                       width), event_rate), generator=generator)
    return frames, events


def export_onnx(model: torch.nn.Module, cfg, path: str | os.PathLike,
                opset: int = 18, check: bool = True, atol: float = 1e-4) -> dict:
    """Write ``path`` (atomically) and, when onnxruntime is installed, compare its
    embedding with PyTorch's on example inputs. Returns a report."""
    path = Path(path)
    graph = EmbeddingGraph(model).eval()
    frames, events = example_inputs(cfg, batch=2)
    inputs = (frames, events) if graph.uses_events else (frames,)
    names = ["frames", "events"] if graph.uses_events else ["frames"]
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    # the dynamo exporter keeps the batch size symbolic; the TorchScript tracer
    # would freeze it into the temporal aggregation's shapes
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with torch.no_grad():
            torch.onnx.export(graph, inputs, str(tmp), input_names=names,
                              output_names=["embedding"], opset_version=opset, dynamo=True,
                              dynamic_shapes={n: {0: batch} for n in names}, verbose=False,
                              external_data=False)  # one self-contained file
        os.replace(tmp, path)
    except ImportError as exc:
        raise EvreidError(f"ONNX export needs the onnx and onnxscript packages ({exc}); "
                          f"pip install 'evreid[export]'") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    report: dict = {"path": str(path), "inputs": names, "opset": opset}
    if not check:
        return report
    try:
        import onnxruntime
    except ImportError:
        report["checked"] = False
        report["note"] = "onnxruntime not installed; output not checked"
        return report
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # also another batch size with other events: the batch must be dynamic and the
    # event-guided offsets computed in the graph, not frozen from the tracing input
    other = example_inputs(cfg, batch=3, seed=1, event_rate=0.05)
    diff = 0.0
    for sample in (inputs, other[:len(inputs)]):
        with torch.no_grad():
            expected = graph(*sample).numpy()
        got = session.run(None, {n: t.numpy() for n, t in zip(names, sample, strict=True)})[0]
        diff = max(diff, float(np.abs(got - expected).max()))
    report.update(checked=True, max_abs_diff=diff, atol=atol)
    if not diff <= atol:
        raise EvreidError(f"ONNX model {path} differs from PyTorch by {diff:.2e} > {atol}")
    return report
