"""safetensors export: the state dict and the config that rebuild the model outside a run directory."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from vaelens.config import from_dict
from vaelens.export import export_run
from vaelens.models import build_model
from vaelens.runs import load_run


def test_the_state_dict_and_its_config_rebuild_the_model(mlp_run, tmp_path):
    out, record = export_run(mlp_run, "safetensors", tmp_path / "weights")
    assert sorted(path.name for path in out.iterdir()) == ["model.safetensors", "vaelens_export.json"]
    saved = json.loads((out / "vaelens_export.json").read_text())
    model = build_model(from_dict(saved["config"]).model, saved["image_shape"])
    model.load_state_dict(load_file(str(out / "model.safetensors")))
    original = load_run(mlp_run).model
    for name, tensor in original.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert saved["check"]["max_abs_error"] == {"mean": 0.0, "logvar": 0.0, "decode": 0.0}
