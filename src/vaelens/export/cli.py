"""`vaelens export`: a run's model written for use outside vaelens.

    vaelens export runs/sd --format diffusers sd-vae/     # AutoencoderKL.from_pretrained("sd-vae/")
    vaelens export runs/b4 --format onnx b4-onnx/          # encoder.onnx + decoder.onnx
    vaelens export runs/b4 --format safetensors b4-weights/

Torch is imported only when the command runs, so `vaelens --help` stays fast.
"""

from __future__ import annotations

import argparse

FORMAT_NAMES = ("diffusers", "onnx", "safetensors")


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `export` command on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "export", help="write a run's model as a diffusers AutoencoderKL, ONNX graphs or safetensors",
        description="Write the model of a run directory (its newest checkpoint) into a new folder, checked "
                    "against vaelens on the same images, with vaelens_export.json (run id, step, config, the "
                    "check). diffusers: an AutoencoderKL folder (resnet models only). onnx: encoder.onnx and "
                    "decoder.onnx. safetensors: model.safetensors, the model's state dict.")
    parser.add_argument("run_dir", metavar="RUN", help="the run directory")
    parser.add_argument("out", metavar="OUT", help="the folder to create (an existing one must be empty)")
    parser.add_argument("--format", required=True, choices=FORMAT_NAMES, dest="export_format",
                        help="diffusers | onnx | safetensors")
    parser.add_argument("--step", type=int, default=None, help="export the checkpoint of this step (default: newest)")
    parser.add_argument("--force", action="store_true", help="replace OUT when it exists and is not empty")
    parser.set_defaults(handler=command_export)
    return parser


def command_export(args) -> int:
    from vaelens.export import export_run

    out, record = export_run(args.run_dir, args.export_format, args.out, force=args.force, step=args.step)
    check = record["check"]
    errors = ", ".join(f"{name} {value:.2g}" for name, value in check.get("max_abs_error", {}).items())
    checked = f"largest difference from vaelens: {errors}" if errors else f"not checked: {check.get('reason')}"
    print(f"wrote {out} ({args.export_format}, run {record['run_id']} at step {record['step']}); {checked}")
    return 0
