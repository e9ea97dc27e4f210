"""A vaelens model as its state dict in safetensors (model.safetensors), keys as `model.state_dict()` names
them; the config that rebuilds the model is in the export's vaelens_export.json."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vaelens.export.check import compare
from vaelens.models import VAE


@torch.no_grad()
def write_safetensors(model: VAE, folder: Path, images: torch.Tensor) -> dict:
    """Write model.safetensors into `folder`, load it back into a copy of `model` and compare the copy's
    posterior and decoded image on `images` with the model's."""
    path = folder / "model.safetensors"
    save_file({key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}, str(path),
              metadata={"format": "pt"})
    written = copy.deepcopy(model)
    written.load_state_dict(load_file(str(path)), strict=True)
    outputs = {}
    for name, network in (("vaelens", model), ("written", written)):
        mu, logvar = network.encode(images)
        outputs[name] = {"mean": mu, "logvar": logvar, "decode": network.decode(mu)}
    return compare(outputs["vaelens"], outputs["written"], "safetensors")
