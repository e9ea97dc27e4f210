"""`export_run`: a run directory's model, written into a new folder in one of FORMATS with its provenance.

Every format is checked against the vaelens model on the same images before the folder is kept, and the
folder appears whole or not at all (it is filled beside its place and renamed into it).
"""

from __future__ import annotations

from pathlib import Path

import vaelens
from vaelens import config as config_module
from vaelens.errors import VaelensError
from vaelens.export.check import CHECK_IMAGES, check_images
from vaelens.export.diffusers import SCALING_FACTOR, check_diffusers_equivalent, write_diffusers
from vaelens.export.onnx import write_onnx
from vaelens.export.weights import write_safetensors
from vaelens.io import atomic_folder, atomic_write_json
from vaelens.runs import LoadedRun, load_run
from vaelens.training.rundir import RunDirectory

FORMATS = {"diffusers": write_diffusers, "onnx": write_onnx, "safetensors": write_safetensors}
"""Format name -> writer(model, folder, check images) -> the check's record."""
PROVENANCE = "vaelens_export.json"
RECORD_FORMAT = "vaelens-export-1"

INPUTS = {
    "diffusers": "AutoencoderKL convention: images in [-1, 1] (2x - 1 of vaelens's x in [0, 1]); "
                 "encode(...).latent_dist.mean/.logvar are vaelens's mu/logvar; decode(z).sample is "
                 "2 * vaelens decode(z) - 1; scaling_factor is " + f"{SCALING_FACTOR} (latents as they come)",
    "onnx": "vaelens convention: encoder.onnx takes image in [0, 1] (N, C, H, W) and gives mean, logvar; "
            "decoder.onnx takes latent and gives decoded, vaelens's raw decoder output",
    "safetensors": "vaelens convention: build_model(from_dict(config).model, image_shape).load_state_dict(...)",
}
"""What the exported model takes and gives, recorded with it."""


def provenance(loaded: LoadedRun, export_format: str, check: dict) -> dict:
    """What vaelens_export.json says: which run, step and config the export came from and how it was checked."""
    model = loaded.model
    return {"format": RECORD_FORMAT, "exported_as": export_format, "vaelens_version": vaelens.__version__,
            "run_dir": str(Path(loaded.run_dir).resolve()), "run_id": config_module.config_hash(loaded.config),
            "step": loaded.step, "status": loaded.status, "model": loaded.config.model.name,
            "architecture": model.architecture, "image_shape": list(model.image_shape),
            "latent_shape": list(model.latent_shape), "convention": loaded.config.loss.convention,
            "inputs": INPUTS[export_format], "check": {"images": f"{CHECK_IMAGES} seeded uniform images", **check},
            "config": config_module.to_dict(loaded.config)}


def export_run(run_dir, export_format: str, out, *, force: bool = False, step: int | None = None) -> tuple[Path, dict]:
    """Write the model of `run_dir` (its newest checkpoint, or that of `step`) into the new folder `out` as
    `export_format`, with vaelens_export.json; returns (out, the provenance record). An existing non-empty `out`
    is refused unless `force`, which replaces it."""
    if export_format not in FORMATS:
        raise ValueError(f"unknown export format '{export_format}'; choose one of {', '.join(FORMATS)}")
    config = RunDirectory(run_dir).read_config()
    if export_format == "diffusers":
        check_diffusers_equivalent(config)
    out, run = Path(out), Path(run_dir).resolve()
    if out.resolve() == run or out.resolve() in run.parents:
        raise VaelensError(f"{out} holds the run directory {run_dir}, which the export would replace; "
                           "export to another folder")
    with atomic_folder(out, replace=force) as folder:
        loaded = load_run(run_dir, "cpu", step=step)
        check = FORMATS[export_format](loaded.model, folder, check_images(loaded.model.image_shape))
        record = provenance(loaded, export_format, check)
        atomic_write_json(folder / PROVENANCE, record)
    return out, record
