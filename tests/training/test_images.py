"""Image grids: one grid drawing for PNG files and the report, greyscale kept greyscale, the umask's mode."""

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from vaelens.training.images import grid_array, save_png


def test_grid_array_lays_images_out_in_rows_with_grey_gaps():
    images = torch.stack([torch.full((1, 4, 4), value) for value in (0.0, 0.25, 0.5, 1.0, 1.0, 0.0)])
    grid = grid_array(images, per_row=3)
    assert grid.dtype == np.uint8 and grid.shape == (2 + 2 * 6, 2 + 3 * 6)
    assert grid[0, 0] == 128, "the padding is grey"
    assert grid[2, 2] == 0 and grid[2, 8] == 64 and grid[2, 14] == 128 and grid[8, 2] == 255 and grid[8, 14] == 0


def test_grid_array_keeps_colour_and_clamps():
    images = torch.zeros(2, 3, 4, 4)
    images[0, 0] = 2.0  # out of range: clamped to 1
    grid = grid_array(images, per_row=2)
    assert grid.shape == (8, 14, 3)
    assert tuple(grid[2, 2]) == (255, 0, 0) and tuple(grid[2, 8]) == (0, 0, 0)


def test_save_png_writes_a_greyscale_grid_with_the_umask_mode(tmp_path):
    images = torch.rand(4, 1, 8, 8)
    previous = os.umask(0o022)
    try:
        save_png(images, tmp_path / "grid.png", rows_of=2)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "grid.png").stat().st_mode) == 0o644
    with Image.open(tmp_path / "grid.png") as image:
        assert image.mode == "L" and image.size == (22, 22)
        np.testing.assert_array_equal(np.asarray(image), grid_array(images, 2))


@pytest.mark.parametrize("mask,expected", [(0o077, 0o600), (0o002, 0o664)])
def test_save_png_mode_follows_other_umasks(tmp_path, mask, expected):
    previous = os.umask(mask)
    try:
        save_png(torch.rand(1, 3, 4, 4), tmp_path / "one.png", rows_of=1)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "one.png").stat().st_mode) == expected
