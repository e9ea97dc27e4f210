"""Every export is checked against the vaelens model it came from, on the same images, before it is kept."""

from __future__ import annotations

import torch

from vaelens.errors import VaelensError

TOLERANCE = 1e-4
"""Largest accepted difference, relative to the output's largest magnitude (at least 1). Float32 rounding
in a different order of the same operations gives about 1e-6; a wrongly mapped weight gives about 0.1."""
CHECK_IMAGES = 4
"""Images an export is checked on."""


def check_images(image_shape, count: int = CHECK_IMAGES, seed: int = 0) -> torch.Tensor:
    """Seeded uniform images in [0, 1] of `image_shape`: the same for every export, and independent of data
    the exporting machine may not have. The check compares two implementations of one function; it does not
    need images the model was trained on."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((count, *image_shape), generator=generator)


def compare(reference: dict[str, torch.Tensor], exported: dict[str, torch.Tensor], what: str) -> dict:
    """{"max_abs_error": {output: error}, "tolerance": ...} of the exported outputs against vaelens's; a
    difference beyond TOLERANCE is an error (the export is not written)."""
    errors, failed = {}, []
    for name, expected in reference.items():
        got = torch.as_tensor(exported[name], dtype=expected.dtype)
        errors[name] = float((got - expected).abs().max())
        if not errors[name] <= TOLERANCE * max(1.0, float(expected.abs().max())):
            failed.append(f"{name} differs by up to {errors[name]:.3g}")
    if failed:
        raise VaelensError(f"the {what} export does not reproduce the vaelens model ({'; '.join(failed)}); nothing "
                           "was written: this is a bug, please report it with the run's config.yaml")
    return {"max_abs_error": errors, "tolerance": TOLERANCE}
