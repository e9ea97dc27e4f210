"""Image panels of the report: each run's reconstruction grid, and latent traversals of its top-KL units.

Panels are embedded as the smaller of lossy WebP and lossless PNG. WebP at quality 80 holds a grid of
32 natural 64-pixel RGB patches in ~17 KB (34 dB PSNR) where the PNG takes ~215 KB, and a dSprites
grid or a traversal in ~4 KB (45 dB) against 6-50 KB; PNG wins on grids of a few flat shades (crisp
sprites, an untrained model's blur), which it stores exactly in less. This keeps a 108-run report one mailable file
(BENCHMARKS.md, Report size).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaelens.analysis.encode import reconstruction_function
from vaelens.data import load_dataset
from vaelens.runs import load_run
from vaelens.training.images import grid_array
from vaelens.training.sweepdir import RunRecord

TRAVERSAL_RANGE = 2.5
"""Traversals move mu_j by t in [-2.5, 2.5]: the prior's +-2.5 standard deviations."""
WEBP_QUALITY = 80
"""Quality of lossy panels: ~34 dB PSNR on natural patches, ~45 dB on sprites, edges of 64-pixel shapes intact."""


@dataclass(frozen=True)
class Panel:
    """One encoded image of the page."""

    data: bytes
    """The encoded image."""
    mime: str
    """Its media type: image/webp or image/png."""


def encode_panel(array: np.ndarray) -> Panel:
    """A uint8 grid, (H, W) or (H, W, 3), as the smaller of lossy WebP and lossless PNG."""
    image = Image.fromarray(array)
    lossy, lossless = io.BytesIO(), io.BytesIO()
    image.convert("RGB").save(lossy, format="WEBP", quality=WEBP_QUALITY, method=6)
    image.save(lossless, format="PNG", optimize=True)
    if lossless.tell() <= lossy.tell():
        return Panel(lossless.getvalue(), "image/png")
    return Panel(lossy.getvalue(), "image/webp")


def reconstruction_panel(record: RunRecord) -> Panel | None:
    """The run's reconstruction grid (originals above reconstructions), from images/ or its analysis
    folder, re-encoded for the page; None when the run saved none."""
    for path in (record.run_dir / "images" / "reconstructions.png",
                 record.run_dir / "analysis" / "reconstructions.png"):
        if path.is_file():
            return png_panel(path, f"delete it (`vaelens analyze {record.run_dir}` draws analysis/reconstructions.png "
                                   "anew)")
    return None


def png_panel(path: Path, advice: str) -> Panel:
    """A PNG file re-encoded for the page; a ValueError ending in `advice` when it cannot be read."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if image.mode in ("L", "1") else "RGB"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable PNG ({error}); {advice}") from error
    return encode_panel(array)


def top_kl_units(record: RunRecord, count: int) -> list[int]:
    """Indices of the `count` units with the largest rate E_x KL_j (from analysis.json)."""
    per_unit = record.analysis.get("rate_per_unit")
    if not isinstance(per_unit, list) or not per_unit:
        raise ValueError(f"{record.run_dir / 'analysis.json'} has no rate_per_unit; run `vaelens analyze` on it")
    return [int(i) for i in np.argsort(per_unit)[::-1][:count]]


@torch.no_grad()
def traversal_panel(record: RunRecord, units: int = 4, steps: int = 7, image_index: int = 0) -> Panel:
    """Decode mu(x) + t e_j for the top-KL units j (rows) and t across [-2.5, 2.5] (columns), as a panel.

    x is image `image_index` of the run's test split; vector latents only (spatial latents have no
    single unit to move)."""
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
    return encode_panel(grid_array(decoded, per_row=steps))


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

