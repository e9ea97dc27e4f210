"""The perceptual-validation distortions do what they say, and the ImageNet distance passes two of the checks on
chelsea at 32 px: monotone in blur, and a 1-px shift judged closer than noise of the same pixel MSE."""

import pytest
import torch

from vaelens.data.natural import TEST_PHOTOS
from vaelens.distances.efficientnet import efficientnet_distance
from vaelens.distances.validation import (
    CONTEXT_MARGIN,
    LADDERS,
    RIVALS,
    Ladder,
    central_crop,
    contrast,
    elastic_warp,
    equal_mse_comparison,
    gaussian_blur,
    gaussian_noise,
    jpeg,
    markdown_tables,
    monotonicity,
    noise_of_equal_mse,
    photo_contexts,
    pixel_mse,
    property_table,
    translate,
)


@pytest.fixture(scope="module")
def chelsea():
    contexts, _ = photo_contexts(32, 8, seed=0, photos=("chelsea.png",))
    return contexts


def test_contexts_come_from_the_held_out_photos_reproducibly():
    contexts, sources = photo_contexts(32, 10, seed=3)
    assert contexts.shape == (10, 3, 32 + 2 * CONTEXT_MARGIN, 32 + 2 * CONTEXT_MARGIN)
    assert set(sources) == set(TEST_PHOTOS) and sum(sources.values()) >= 10
    assert torch.equal(contexts, photo_contexts(32, 10, seed=3)[0])
    assert not torch.equal(contexts, photo_contexts(32, 10, seed=4)[0])
    assert float(contexts.min()) >= 0 and float(contexts.max()) <= 1
    with pytest.raises(ValueError, match="32 or 64"):
        photo_contexts(48, 4, seed=0)


def test_a_translation_moves_real_content_into_the_patch(chelsea):
    moved = central_crop(translate(chelsea, 2))
    assert torch.equal(moved[..., 2:, 2:], central_crop(chelsea)[..., :-2, :-2])
    assert torch.equal(moved[..., :2, :2], chelsea[..., CONTEXT_MARGIN - 2:CONTEXT_MARGIN,
                                                        CONTEXT_MARGIN - 2:CONTEXT_MARGIN])
    with pytest.raises(ValueError, match="context margin"):
        translate(chelsea, CONTEXT_MARGIN + 1)


def test_blur_noise_jpeg_and_contrast_keep_shape_and_range_and_grow_with_their_level(chelsea):
    reference = central_crop(chelsea)
    for ladder in LADDERS:
        errors = []
        for level in (ladder.levels[0], ladder.levels[-1]):
            distorted = ladder.apply(chelsea, level, 0)
            assert distorted.shape == chelsea.shape and distorted.dtype == chelsea.dtype, ladder.name
            assert float(distorted.min()) >= 0 and float(distorted.max()) <= 1 + 1e-12, ladder.name
            errors.append(float(pixel_mse(reference, central_crop(distorted)).mean()))
        assert 0 < errors[0] < errors[1], ladder.name
    torch.testing.assert_close(gaussian_blur(chelsea, 0.05), chelsea)
    torch.testing.assert_close(jpeg(chelsea, 95), chelsea, atol=0.2, rtol=0)
    torch.testing.assert_close(contrast(chelsea, 0.5).mean(dim=(2, 3)), chelsea.mean(dim=(2, 3)), atol=0.05, rtol=0)
    assert torch.equal(gaussian_noise(chelsea, 0.1, seed=1), gaussian_noise(chelsea, 0.1, seed=1))


def test_a_warp_moves_no_pixel_further_than_its_amplitude():
    ramp = torch.linspace(0, 1, 48, dtype=torch.float64).view(1, 1, 1, 48).expand(1, 3, 48, 48)
    torch.testing.assert_close(elastic_warp(ramp, 0.0, seed=0), ramp)
    # On a horizontal ramp a pixel's value records where it was sampled from: its horizontal displacement.
    displacement = (central_crop(elastic_warp(ramp, 1.5, seed=0)) - central_crop(ramp)) * 47
    assert 0.2 < float(displacement.abs().max()) <= 1.5 + 1e-9


def test_noise_of_equal_mse_has_the_target_mse_after_clipping(chelsea):
    target = pixel_mse(central_crop(chelsea), central_crop(translate(chelsea, 1)))
    noisy = noise_of_equal_mse(chelsea, target, seed=0)
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1
    torch.testing.assert_close(pixel_mse(central_crop(chelsea), central_crop(noisy)), target, rtol=1e-6, atol=0)


def test_the_imagenet_distance_grows_with_blur_on_chelsea(chelsea):
    rows = monotonicity({"effnet": efficientnet_distance}, chelsea.float(), LADDERS[0], seed=0)
    assert rows[0]["monotone"] == rows[0]["images"] == len(chelsea)


def test_the_imagenet_distance_judges_a_1px_shift_closer_than_noise_pixel_mse_cannot(chelsea):
    distances = {"effnet": efficientnet_distance, "mse": pixel_mse}
    rows = {row["distance"]: row for row in equal_mse_comparison(distances, chelsea.float(), RIVALS[0], seed=0)}
    assert rows["effnet"]["closer"] == len(chelsea) and rows["effnet"]["median_ratio"] < 0.7
    assert rows["mse"]["median_ratio"] == pytest.approx(1.0, abs=1e-3)


def test_a_distance_that_ignores_the_distortion_is_not_counted_monotone(chelsea):
    constant = {"constant": lambda x, y: torch.ones(len(x))}
    ladder = Ladder("blur", "sigma", (0.5, 1.0), lambda contexts, level, seed: gaussian_blur(contexts, level))
    assert monotonicity(constant, chelsea, ladder, seed=0)[0]["monotone"] == 0


def test_the_tables_have_a_column_per_distance_and_a_row_per_distortion(chelsea):
    table = property_table({"mse": pixel_mse, "twice mse": lambda x, y: 2 * pixel_mse(x, y)}, chelsea[:2], seed=0,
                           ladders=LADDERS[:2], rivals=RIVALS[:1])
    monotone, equal_mse = markdown_tables(table, ["mse", "twice mse"])
    assert monotone.splitlines()[0] == "| distortion | mse | twice mse |"
    assert len(monotone.splitlines()) == 2 + 2 and len(equal_mse.splitlines()) == 2 + 1
    assert "2/2" in monotone.splitlines()[2] and "1-px translation" in equal_mse
