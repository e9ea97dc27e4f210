from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelens.data import dsprites_render as render
from vaelens.data.dsprites_render import (
    dsprites_classes,
    dsprites_factor_values,
    dsprites_index,
    pack_images,
    render_classes,
    render_indices,
    unpack_images,
)


def test_grid_has_the_exact_factor_sizes_and_strides():
    assert render.FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert render.NUM_IMAGES == 737_280 == math.prod(render.FACTOR_SIZES)
    np.testing.assert_allclose(render.SCALES, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert render.ORIENTATIONS[0] == 0.0 and render.ORIENTATIONS[-1] == pytest.approx(2 * math.pi)
    assert render.POSITIONS[0] == 0.0 and render.POSITIONS[-1] == 1.0 and len(render.POSITIONS) == 32


def test_index_and_classes_are_inverse_over_the_whole_index_space():
    indices = torch.arange(render.NUM_IMAGES)
    classes = dsprites_classes(indices)
    for factor, size in enumerate(render.FACTOR_SIZES):
        counts = torch.bincount(classes[:, factor], minlength=size)
        assert len(counts) == size
        assert bool((counts == render.NUM_IMAGES // size).all())
    assert torch.equal(dsprites_index(classes), indices)
    assert torch.equal(classes[1], torch.tensor([0, 0, 0, 0, 1]))
    assert torch.equal(classes[32], torch.tensor([0, 0, 0, 1, 0]))
    assert torch.equal(classes[245760], torch.tensor([1, 0, 0, 0, 0]))


def test_factor_values_follow_the_grid():
    classes = torch.tensor([[0, 0, 0, 0, 0], [2, 5, 39, 31, 16]])
    values = dsprites_factor_values(classes)
    expected = torch.tensor([[1.0, 0.5, 0.0, 0.0, 0.0], [3.0, 1.0, 2 * math.pi, 1.0, 16 / 31]])
    torch.testing.assert_close(values, expected)


@pytest.mark.parametrize("bad, error", [
    (torch.tensor([[3, 0, 0, 0, 0]]), ValueError),
    (torch.tensor([[0, 0, 0, 32, 0]]), ValueError),
    (torch.tensor([[0, 0, 0, 0]]), ValueError),
    (torch.zeros(1, 5), TypeError),
])
def test_invalid_classes_are_rejected(bad, error):
    with pytest.raises(error, match="classes"):
        dsprites_index(bad)


def test_out_of_range_indices_are_rejected():
    with pytest.raises(ValueError, match="737280"):
        dsprites_classes(torch.tensor([render.NUM_IMAGES]))


def _image(shape=0, scale=5, orientation=0, pos_x=16, pos_y=16) -> torch.Tensor:
    return render_classes(torch.tensor([[shape, scale, orientation, pos_x, pos_y]]))[0]


def test_images_are_binary_64x64_with_one_sprite():
    images = render_indices(torch.tensor([0, 300_000, 737_279]))
    assert images.shape == (3, 64, 64) and images.dtype == torch.bool
    assert all(0 < int(image.sum()) < 64 * 64 // 4 for image in images)


def test_square_size_and_centre_match_the_documented_geometry():
    square = _image(shape=0, scale=5, orientation=0, pos_x=0, pos_y=31)
    rows, columns = square.nonzero(as_tuple=True)
    # Side 19.2 px centred at (0.25 + 0.5 pos) * 64: x centre 16, y centre 48.
    assert int(columns.max() - columns.min() + 1) in (19, 20)
    assert float(columns.float().mean() + 0.5) == pytest.approx(16.0, abs=0.6)
    assert float(rows.float().mean() + 0.5) == pytest.approx(48.0, abs=0.6)
    small = _image(shape=0, scale=0, orientation=0)
    assert int(small.sum()) == pytest.approx(0.25 * int(_image(shape=0, scale=5).sum()), rel=0.2)


def test_shapes_are_mirror_symmetric_where_the_shape_is():
    # posX = posY = 0 puts the centre at (16, 16) px, a pixel corner, so the 32 x 32 corner is symmetric.
    square, ellipse, heart = (_image(shape=shape, pos_x=0, pos_y=0)[:32, :32] for shape in range(3))
    for image in (square, ellipse, heart):
        assert torch.equal(image, image.flip(1)), "left-right symmetry about x = 16"
    assert torch.equal(square, square.flip(0)) and torch.equal(ellipse, ellipse.flip(0))
    assert not torch.equal(heart, heart.flip(0)), "a heart is not up-down symmetric"


def test_heart_differs_from_square_and_ellipse():
    square, ellipse, heart = (_image(shape=shape) for shape in range(3))
    assert (heart ^ square).sum() > 20 and (heart ^ ellipse).sum() > 20 and (square ^ ellipse).sum() > 20
    rows = heart.nonzero(as_tuple=True)[0]
    widths = heart.sum(dim=1)
    # The heart's lobes are at the top and its tip at the bottom: wide rows above, narrow below.
    top, bottom = int(rows.min()), int(rows.max())
    assert widths[top + 3] > widths[bottom - 2]


def test_rotation_changes_the_image_and_the_grid_endpoints_coincide():
    for shape in range(3):
        upright = _image(shape=shape, orientation=0)
        assert (upright ^ _image(shape=shape, orientation=5)).sum() > 10
        assert torch.equal(upright, _image(shape=shape, orientation=39))
    quarter_turn = _image(shape=1, orientation=0, pos_x=0, pos_y=0).T
    rotated = _image(shape=1, orientation=10, pos_x=0, pos_y=0)
    # Orientation 10 of 39 steps is 92.3 degrees: nearly the transposed ellipse.
    assert (quarter_turn ^ rotated).sum() < 0.2 * quarter_turn.sum()


def test_rendering_is_deterministic_and_independent_of_batching():
    generator = torch.Generator().manual_seed(0)
    indices = torch.randint(0, render.NUM_IMAGES, (40,), generator=generator)
    together = render_indices(indices, chunk_size=16)
    assert torch.equal(together, render_indices(indices, chunk_size=16))
    one_by_one = torch.stack([render_indices(index[None])[0] for index in indices])
    assert torch.equal(together, one_by_one)
    # Inside a contiguous block of the grid, as the full-grid renderer sees them.
    block_start = int(indices[0]) - int(indices[0]) % 64
    block = render_indices(torch.arange(block_start, block_start + 64))
    assert torch.equal(block[int(indices[0]) - block_start], together[0])


def test_translation_moves_the_sprite_by_the_grid_step():
    left, right = _image(pos_x=0), _image(pos_x=31)
    shift = right.nonzero(as_tuple=True)[1].float().mean() - left.nonzero(as_tuple=True)[1].float().mean()
    assert float(shift) == pytest.approx(32.0, abs=0.5)


def test_bit_packing_round_trips():
    images = render_indices(torch.arange(100, 110))
    packed = pack_images(images)
    assert packed.shape == (10, 512) and packed.dtype == np.uint8
    unpacked = unpack_images(torch.from_numpy(packed))
    assert unpacked.shape == (10, 1, 64, 64) and unpacked.dtype == torch.float32
    assert torch.equal(unpacked[:, 0].bool(), images)
