"""A vaelens model as two ONNX graphs: encoder.onnx (image -> mean, logvar) and decoder.onnx (latent -> decoded).

The graphs keep vaelens's conventions: `image` is in [0, 1] (N, C, H, W), `mean` and `logvar` are the posterior's,
`decoded` is `model.decode(latent)`, the raw decoder output (the image for Gaussian and Laplace likelihoods,
the logits for Bernoulli). The batch size is free. Exported with torch's dynamo-based exporter, which needs
onnx and onnxscript; onnxruntime, where installed, checks the graphs against the model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vaelens.errors import MissingDependency
from vaelens.export.check import compare
from vaelens.models import VAE

EXTERNAL_DATA_BYTES = 1 << 30
"""Weights beyond this go to a .data file beside the graph; ONNX's protobuf cannot hold more than 2 GiB."""


class EncoderGraph(nn.Module):
    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(image)


class DecoderGraph(nn.Module):
    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.model.decode(latent)


def _export(graph: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_names: list[str]) -> None:
    external = sum(p.numel() * p.element_size() for p in graph.parameters()) > EXTERNAL_DATA_BYTES
    torch.onnx.export(graph, (example,), str(path), input_names=[input_name], output_names=output_names,
                      dynamic_shapes={input_name: {0: torch.export.Dim("batch")}}, dynamo=True,
                      external_data=external, verbose=False)


def _check_with_onnxruntime(model: VAE, folder: Path, images: torch.Tensor, mu: torch.Tensor) -> dict:
    try:
        import onnxruntime
    except ImportError:
        return {"checked": False, "reason": "onnxruntime is not installed (pip install 'vaelens[onnx]')"}
    providers = ["CPUExecutionProvider"]
    encoder = onnxruntime.InferenceSession(str(folder / "encoder.onnx"), providers=providers)
    decoder = onnxruntime.InferenceSession(str(folder / "decoder.onnx"), providers=providers)
    mean, logvar = encoder.run(["mean", "logvar"], {"image": images.numpy()})
    (decoded,) = decoder.run(["decoded"], {"latent": mu.numpy()})
    reference_mu, reference_logvar = model.encode(images)
    check = compare({"mean": reference_mu, "logvar": reference_logvar, "decode": model.decode(mu)},
                    {"mean": mean, "logvar": logvar, "decode": decoded}, "onnx")
    return {"checked": True, "with": f"onnxruntime {onnxruntime.__version__}", **check}


@torch.no_grad()
def write_onnx(model: VAE, folder: Path, images: torch.Tensor) -> dict:
    """Write encoder.onnx and decoder.onnx for `model` into `folder`; returns the onnxruntime check on `images`
    in [0, 1] (or why there was none)."""
    try:
        import onnx  # noqa: F401  (the exporter needs both: asked here so that a missing one is one line)
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise MissingDependency("--format onnx needs onnx and onnxscript: pip install 'vaelens[onnx]'") from error
    mu, _ = model.encode(images)
    _export(EncoderGraph(model).eval(), images, folder / "encoder.onnx", "image", ["mean", "logvar"])
    _export(DecoderGraph(model).eval(), mu, folder / "decoder.onnx", "latent", ["decoded"])
    return _check_with_onnxruntime(model, folder, images, mu)
