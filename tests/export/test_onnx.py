"""ONNX export: encoder.onnx and decoder.onnx, run by onnxruntime, give what the vaelens model gives."""

from __future__ import annotations

import json

import pytest
import torch

from vaelens.data import load_dataset
from vaelens.export import export_run
from vaelens.runs import load_run

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _run_graphs(out, images: torch.Tensor, latents: torch.Tensor):
    encoder = onnxruntime.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    decoder = onnxruntime.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    mean, logvar = encoder.run(["mean", "logvar"], {"image": images.numpy()})
    (decoded,) = decoder.run(["decoded"], {"latent": latents.numpy()})
    return torch.from_numpy(mean), torch.from_numpy(logvar), torch.from_numpy(decoded)


def _check_against_vaelens(run_dir, out, batch_sizes):
    loaded = load_run(run_dir)
    images = load_dataset(loaded.config.data, split="test").all_images(max(batch_sizes))
    for batch in batch_sizes:  # the graphs were traced at another batch size: it is free
        with torch.no_grad():
            mu, logvar = loaded.model.encode(images[:batch])
            expected_decoded = loaded.model.decode(mu)
        mean, onnx_logvar, decoded = _run_graphs(out, images[:batch], mu)
        torch.testing.assert_close(mean, mu, rtol=0, atol=1e-4)
        torch.testing.assert_close(onnx_logvar, logvar, rtol=0, atol=1e-4)
        torch.testing.assert_close(decoded, expected_decoded, rtol=0, atol=1e-4)


def test_an_mlp_run_exports_to_onnx_graphs_that_onnxruntime_runs_as_vaelens_does(mlp_run, tmp_path):
    out, record = export_run(mlp_run, "onnx", tmp_path / "onnx")
    assert sorted(path.name for path in out.iterdir()) == ["decoder.onnx", "encoder.onnx", "vaelens_export.json"]
    _check_against_vaelens(mlp_run, out, batch_sizes=(1, 5))
    saved = json.loads((out / "vaelens_export.json").read_text())
    assert saved["check"]["checked"] is True and saved["model"] == "mlp" and saved["exported_as"] == "onnx"
    assert max(saved["check"]["max_abs_error"].values()) < 1e-4


@pytest.mark.slow
def test_a_resnet_run_exports_to_onnx_with_its_attention(resnet_run, tmp_path):
    out, _ = export_run(resnet_run, "onnx", tmp_path / "onnx")
    _check_against_vaelens(resnet_run, out, batch_sizes=(3,))
