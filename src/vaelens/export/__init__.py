"""Export a trained vaelens model for use outside vaelens: a diffusers AutoencoderKL folder (resnet), ONNX
encoder and decoder graphs, or the model's safetensors state dict; each with its provenance."""

from vaelens.export.run import FORMATS, PROVENANCE, export_run

__all__ = ["FORMATS", "PROVENANCE", "export_run"]
