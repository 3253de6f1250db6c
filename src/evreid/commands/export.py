"""Export a trained model for deployment.

  evreid export onnx --checkpoint runs/demo/sdcl/best.pth --out sdcl.onnx

The ONNX graph maps frames [B, T, 3, H, W] (normalised) and, for event models,
events [B, T, bins, 2, H, W] to the embedding [B, D]. With onnxruntime
installed the export is checked: same embedding as PyTorch within 1e-4.
Needs `pip install 'evreid[export]'`.
"""

from __future__ import annotations

import argparse

from evreid.commands._config_args import TRUST_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=("onnx",), help="export format")
    parser.add_argument("--checkpoint", required=True, help="checkpoint from evreid train")
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime check")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)


def run(args: argparse.Namespace) -> int:
    import json

    from evreid.api import model_from_checkpoint
    from evreid.export import export_onnx

    model, cfg = model_from_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    report = export_onnx(model, cfg, args.out, opset=args.opset, check=not args.no_check)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        checked = (f"checked with onnxruntime: max |diff| {report['max_abs_diff']:.2e}"
                   if report.get("checked") else report.get("note", "not checked"))
        print(f"wrote {report['path']} (inputs {', '.join(report['inputs'])}); {checked}")
    return 0
