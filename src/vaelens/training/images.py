"""Reconstruction and prior-sample grids as PNG files, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from vaelens.io import atomic_path


def grid_array(images: torch.Tensor, per_row: int) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] as one uint8 grid, `per_row` images per row with grey 2-pixel gaps:
    (height, width) for one channel, (height, width, 3) for colour. The one place grids are drawn."""
    grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=per_row, padding=2, pad_value=0.5)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    # make_grid repeats a single channel three times; keep it one channel so PNGs stay greyscale.
    return array[:, :, 0] if images.shape[1] == 1 else array


def save_png(images: torch.Tensor, path: Path, rows_of: int) -> None:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid with `rows_of` images per row (atomically)."""
    with atomic_path(path) as temporary:
        Image.fromarray(grid_array(images, rows_of)).save(temporary, format="PNG", optimize=True)


@torch.no_grad()
def save_image_grids(model, objective, images: torch.Tensor, folder: Path, seed: int,
                     count: int = 16) -> dict[str, torch.Tensor]:
    """reconstructions.png (originals above their posterior-mean reconstructions) and samples.png (prior);
    returns the images of each grid by name, (N, C, H, W) in [0, 1]."""
    was_training = model.training
    model.eval()
    originals = images[:count]
    reconstructions = objective.likelihood.mean(model.decode(model.encode(originals)[0]))
    save_png(torch.cat([originals, reconstructions.to(originals.dtype)]), Path(folder) / "reconstructions.png",
             rows_of=len(originals))
    generator = torch.Generator(images.device).manual_seed(seed + 3)
    z = torch.randn((count, *model.latent_shape), generator=generator, device=images.device)
    samples = objective.likelihood.mean(model.decode(z))
    save_png(samples, Path(folder) / "samples.png", rows_of=int(count**0.5))
    model.train(was_training)
    return {"reconstructions": torch.cat([originals, reconstructions.to(originals.dtype)]), "samples": samples}
