"""Report panels: the smaller of lossy WebP and lossless PNG, faithful to the grid, read from a run's PNG."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as photos

from vaelens.report.images import encode_panel, reconstruction_panel
from vaelens.training.images import grid_array, save_png
from vaelens.training.sweepdir import RunRecord


def natural_grid() -> np.ndarray:
    """32 RGB 64-pixel patches of a bundled photograph in a 16-wide grid: a natural-image run's panel."""
    photo = photos.astronaut()
    patches = [photo[row:row + 64, column:column + 64] for row in range(0, 256, 64) for column in range(0, 512, 64)]
    return grid_array(torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float() / 255, per_row=16)


def sprites(count: int = 16) -> torch.Tensor:
    """One-channel 64-pixel images of a white square at varying places, as dSprites draws them."""
    images = torch.zeros(count, 1, 64, 64)
    for index in range(count):
        top, left = 8 + (5 * index) % 40, 4 + (11 * index) % 48
        images[index, 0, top:top + 10, left:left + 10] = 1.0
    return images


def sprite_grid() -> np.ndarray:
    """Sprites above blurred copies (what a briefly trained VAE reconstructs): a dSprites run's panel."""
    originals = sprites()
    blurred = torch.nn.functional.avg_pool2d(originals, 9, stride=1, padding=4, count_include_pad=False)
    return grid_array(torch.cat([originals, blurred]), per_row=16)


def decoded(panel) -> np.ndarray:
    with Image.open(io.BytesIO(panel.data)) as image:
        assert Image.MIME[image.format] == panel.mime
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def psnr(restored: np.ndarray, original: np.ndarray) -> float:
    reference = np.asarray(Image.fromarray(original).convert("RGB"), dtype=np.float64)
    assert restored.shape == reference.shape
    error = np.mean((restored - reference) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def test_a_natural_panel_is_lossy_small_and_faithful():
    array = natural_grid()
    panel = encode_panel(array)
    lossless = io.BytesIO()
    Image.fromarray(array).save(lossless, format="PNG", optimize=True)
    assert panel.mime == "image/webp" and len(panel.data) <= 20_000 and lossless.tell() > 150_000
    assert psnr(decoded(panel), array) >= 32.0


def test_crisp_sprites_stay_lossless_png_where_that_is_smaller():
    array = grid_array(sprites(), per_row=16)
    panel = encode_panel(array)
    assert panel.mime == "image/png" and len(panel.data) <= 4_000
    assert psnr(decoded(panel), array) == float("inf")


def test_a_sprite_panel_is_small_whichever_format_wins():
    array = sprite_grid()
    panel = encode_panel(array)
    assert len(panel.data) <= 4_000 and psnr(decoded(panel), array) >= 40.0


def _record(run_dir: Path) -> RunRecord:
    return RunRecord("r", run_dir, {}, "finished", None)


def test_reconstruction_panel_reads_the_runs_png(tmp_path):
    assert reconstruction_panel(_record(tmp_path)) is None
    images = torch.from_numpy(photos.chelsea()[100:164, 100:292]).permute(2, 0, 1).reshape(3, 64, 3, 64)
    images = images.permute(2, 0, 1, 3).float() / 255  # three 64-pixel RGB patches of a photograph
    save_png(images, tmp_path / "analysis" / "reconstructions.png", rows_of=3)
    panel = reconstruction_panel(_record(tmp_path))
    assert psnr(decoded(panel), grid_array(images, 3)) >= 32.0
    save_png(torch.zeros(4, 1, 16, 16), tmp_path / "images" / "reconstructions.png", rows_of=4)
    assert decoded(reconstruction_panel(_record(tmp_path))).max() < 130, "images/ is read before analysis/"


def test_an_unreadable_reconstruction_png_is_named(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "reconstructions.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="reconstructions.png is not a readable PNG.*delete it.*vaelens analyze"):
        reconstruction_panel(_record(tmp_path))
