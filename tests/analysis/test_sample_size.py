"""analysis.sample_size: "auto" encodes enough images that log N clears the rate, within documented caps."""

import math

import numpy as np
import pytest
import torch

from vaelens.analysis.sample_size import AUTO_MAX_IMAGES, AUTO_MIN_IMAGES, check_image_count, encode_for_analysis
from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.data.gaussian import write_gaussian_source
from vaelens.models.mlp import LinearVAE
from vaelens.sampling import random_subset

UNITS = 4


def gaussian_data(tmp_path, num_samples):
    source = write_gaussian_source(tmp_path / "source.npz", np.eye(4), num_samples=num_samples)
    config = resolve(None, None, ["data.name=gaussian", f"data.path={source}", "data.test_fraction=0.0"])
    return load_dataset(config.data, split="test")


def encoder_with_rate(log_variance: float) -> tuple[LinearVAE, float]:
    """A linear VAE whose posterior is N(0, exp(log_variance)) for every input: rate = 4 * 0.5 (e^c - 1 - c)."""
    model = LinearVAE((1, 2, 2), UNITS)
    with torch.no_grad():
        model.encoder_mean.weight.zero_()
        model.encoder_mean.bias.zero_()
        model.posterior_logvar.fill_(log_variance)
    c = float(model.posterior_logvar.detach()[0])
    return model, UNITS * 0.5 * (math.exp(c) - 1 - c)


def test_auto_encodes_enough_images_for_log_n_to_clear_the_rate(tmp_path):
    data = gaussian_data(tmp_path, 6000)
    model, rate = encoder_with_rate(1.9)
    needed = math.ceil(math.exp(rate + 1))
    assert AUTO_MIN_IMAGES < needed < data.num_images
    encoded, keys = encode_for_analysis(model, data, "auto", seed=4, device="cpu", progress=False)
    assert len(encoded.indices) == needed and math.log(needed) >= rate + 1
    assert keys["sample_size.rule"] == "auto" and keys["sample_size.pilot_images"] == AUTO_MIN_IMAGES
    assert keys["sample_size.pilot_rate"] == pytest.approx(rate, rel=1e-6)
    assert keys["sample_size.target_log_num_images"] == pytest.approx(rate + 1, rel=1e-6)
    assert f"{needed} images" in keys["sample_size.reason"]
    # The draw is the analysis' seeded draw over the whole split, reproducible from (split, N, seed).
    assert torch.equal(encoded.indices, random_subset(data.num_images, needed, 4))


@pytest.mark.parametrize("log_variance, samples, expected, reason", [
    (0.0, 6000, AUTO_MIN_IMAGES, "the minimum of 2000"),
    (0.0, 500, 500, "the whole split of 500"),
    (3.0, 6000, 6000, "the split holds 6000"),
    (3.0, AUTO_MAX_IMAGES + 5000, AUTO_MAX_IMAGES, f"capped at the maximum of {AUTO_MAX_IMAGES}"),
])
def test_auto_is_bounded_by_its_minimum_the_split_and_its_maximum(tmp_path, log_variance, samples, expected, reason):
    data = gaussian_data(tmp_path, samples)
    model, _ = encoder_with_rate(log_variance)
    encoded, keys = encode_for_analysis(model, data, "auto", seed=0, device="cpu", progress=False)
    assert len(encoded.indices) == expected and reason in keys["sample_size.reason"]


def test_a_fixed_count_is_used_as_given(tmp_path):
    data = gaussian_data(tmp_path, 300)
    model, _ = encoder_with_rate(3.0)
    encoded, keys = encode_for_analysis(model, data, 100, seed=0, device="cpu", progress=False)
    assert len(encoded.indices) == 100 and keys == {"sample_size.rule": "fixed", "sample_size.requested": 100}


@pytest.mark.parametrize("value", [1, True, "all", 2.5])
def test_image_counts_must_be_auto_or_at_least_two(value):
    with pytest.raises(ValueError, match='at least 2 or "auto"'):
        check_image_count(value)


def test_auto_encodes_each_image_once_and_gets_the_codes_of_a_direct_encoding(tmp_path):
    from vaelens.analysis.encode import encode_images

    data = gaussian_data(tmp_path, 6000)
    model, _ = encoder_with_rate(1.9)
    with torch.no_grad():
        model.encoder_mean.weight.copy_(0.05 * torch.randn(model.encoder_mean.weight.shape,
                                                           generator=torch.Generator().manual_seed(0)))
    seen = []
    encode = model.encode
    model.encode = lambda x: seen.append(len(x)) or encode(x)
    encoded, _ = encode_for_analysis(model, data, "auto", seed=4, device="cpu", progress=False)
    assert AUTO_MIN_IMAGES < len(encoded.indices) == sum(seen), "the pilot's images are not encoded again"
    direct = encode_images(model, data, len(encoded.indices), seed=4, progress=False)
    assert torch.equal(direct.indices, encoded.indices)
    torch.testing.assert_close(encoded.mu, direct.mu, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(encoded.logvar, direct.logvar)
