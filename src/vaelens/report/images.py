"""Image panels of the report: each run's reconstruction grid, and latent traversals of its top-KL units."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from vaelens.report.collect import RunRecord

TRAVERSAL_RANGE = 2.5
"""Traversals move mu_j by t in [-2.5, 2.5]: the prior's +-2.5 standard deviations."""


def grid_png(images: torch.Tensor, per_row: int) -> bytes:
    """(N, C, H, W) images in [0, 1] as one PNG grid (bytes)."""
    grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=per_row, padding=2, pad_value=0.5)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def reconstruction_png(record: RunRecord) -> bytes | None:
    """The run's reconstruction grid (originals above reconstructions), from images/ or its analysis folder."""
    for path in (record.run_dir / "images" / "reconstructions.png",
                 record.run_dir / "analysis" / "reconstructions.png"):
        if path.is_file():
            return path.read_bytes()
    return None


def top_kl_units(record: RunRecord, count: int) -> list[int]:
    """Indices of the `count` units with the largest rate E_x KL_j (from analysis.json)."""
    per_unit = record.analysis.get("rate_per_unit")
    if not isinstance(per_unit, list) or not per_unit:
        raise ValueError(f"{record.run_dir / 'analysis.json'} has no rate_per_unit; run `vaelens analyze` on it")
    return [int(i) for i in np.argsort(per_unit)[::-1][:count]]


@torch.no_grad()
def traversal_png(record: RunRecord, units: int = 4, steps: int = 7, image_index: int = 0) -> bytes:
    """Decode mu(x) + t e_j for the top-KL units j (rows) and t across [-2.5, 2.5] (columns).

    x is image `image_index` of the run's test split; vector latents only (spatial latents have no
    single unit to move)."""
    from vaelens.analysis.encode import reconstruction_function
    from vaelens.data import load_dataset
    from vaelens.runs import load_run

    loaded = load_run(record.run_dir, "cpu")
    data = load_dataset(loaded.config.data, split="test")
    image = data.images(torch.tensor([image_index]))
    mu = loaded.model.encode(image)[0]
    if mu.ndim != 2:
        raise ValueError(f"{record.run_dir} has spatial latents {tuple(mu.shape[1:])}; traversals need vector latents")
    chosen = top_kl_units(record, min(units, mu.shape[1]))
    offsets = torch.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, steps)
    codes = mu.repeat(len(chosen) * steps, 1)
    for row, unit in enumerate(chosen):
        codes[row * steps:(row + 1) * steps, unit] += offsets
    decoded = reconstruction_function(loaded.model, loaded.objective)(codes)
    return grid_png(decoded, per_row=steps)


def traversal_runs(records: list[RunRecord]) -> list[RunRecord]:
    """One run per data set, loss family and convention: the middle beta, the lowest seed."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        if record.usable and (record.run_dir / "checkpoints").is_dir():
            groups.setdefault((record.dataset, record.loss_family, record.convention), []).append(record)
    chosen = []
    for key in sorted(groups):
        runs = groups[key]
        betas = sorted({run.beta for run in runs if run.beta is not None})
        middle = betas[len(betas) // 2] if betas else None
        candidates = sorted((run for run in runs if run.beta == middle), key=lambda run: (run.seed or 0))
        chosen.append(candidates[0] if candidates else runs[0])
    return chosen

