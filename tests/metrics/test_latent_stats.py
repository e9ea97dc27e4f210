"""Latent-diffusion statistics against closed forms: Gaussian latents with known per-channel moments, the
documented noise reproduced by hand, and the jackknife errors against the iid formulas."""

import math

import pytest
import torch

from vaelens.metrics.latent_stats import SAMPLE_BLOCK_IMAGES, latent_diffusion_statistics

CHANNEL_MEANS = torch.tensor([0.5, -1.0, 2.0])
MEAN_SPREADS = torch.tensor([1.0, 2.0, 0.5])
POSTERIOR_STDS = torch.tensor([0.5, 1.0, 1.5])


def _gaussian_latents(images: int, side: int = 4, seed: int = 0):
    """mu[:, c] ~ N(m_c, a_c^2) independently per element, sigma_c fixed: z[:, c] ~ N(m_c, a_c^2 + sigma_c^2)."""
    generator = torch.Generator().manual_seed(seed)
    shape = (images, 3, side, side)
    mu = CHANNEL_MEANS.view(1, 3, 1, 1) + MEAN_SPREADS.view(1, 3, 1, 1) * torch.randn(shape, generator=generator)
    logvar = (2 * POSTERIOR_STDS.log()).view(1, 3, 1, 1).expand(shape).clone()
    return mu.double(), logvar.double()


def test_gaussian_latents_give_their_closed_form_moments_and_factors():
    stats = latent_diffusion_statistics(*_gaussian_latents(2000), seed=1)
    channel_variance = MEAN_SPREADS.square() + POSTERIOR_STDS.square()
    # Pooled over equally sized channels: the mean of the channel variances plus the spread of their means.
    pooled_variance = channel_variance.mean() + CHANNEL_MEANS.var(unbiased=False)
    mean_variance = MEAN_SPREADS.square().mean() + CHANNEL_MEANS.var(unbiased=False)
    elements = 2000 * 16
    assert stats.channel_mean == pytest.approx(CHANNEL_MEANS.tolist(), abs=4 * float(channel_variance.max().sqrt())
                                               / math.sqrt(elements))
    assert stats.channel_std == pytest.approx(channel_variance.sqrt().tolist(), rel=0.02)
    assert stats.sample_mean == pytest.approx(float(CHANNEL_MEANS.mean()), abs=0.02)
    assert stats.sample_std == pytest.approx(math.sqrt(pooled_variance), rel=0.01)
    assert stats.mean_mean == pytest.approx(float(CHANNEL_MEANS.mean()), abs=0.02)
    assert stats.mean_std == pytest.approx(math.sqrt(mean_variance), rel=0.01)
    assert stats.scaling_factor == 1 / stats.sample_std and stats.shift_factor == stats.sample_mean
    assert stats.num_images == 2000 and stats.seed == 1 and len(stats.channel_std) == 3


def test_the_noise_is_the_documented_draw_and_the_std_is_torch_std():
    mu, logvar = _gaussian_latents(SAMPLE_BLOCK_IMAGES + 44, side=2)
    generator = torch.Generator().manual_seed(7)
    noise = torch.cat([torch.randn(mu[start:start + SAMPLE_BLOCK_IMAGES].shape, generator=generator,
                                   dtype=torch.float64) for start in range(0, len(mu), SAMPLE_BLOCK_IMAGES)])
    z = mu + (0.5 * logvar).exp() * noise
    stats = latent_diffusion_statistics(mu.float(), logvar.float(), seed=7)
    reference = latent_diffusion_statistics(mu, logvar, seed=7)
    assert stats.sample_std == pytest.approx(float(z.std()), rel=1e-6)
    assert reference.sample_std == pytest.approx(float(z.std()), rel=1e-12)
    assert reference.sample_mean == pytest.approx(float(z.mean()), rel=1e-12)
    assert reference.mean_std == pytest.approx(float(mu.std()), rel=1e-12)
    per_channel = z.transpose(0, 1).reshape(3, -1)
    assert reference.channel_mean == pytest.approx(per_channel.mean(1).tolist(), rel=1e-12)
    assert reference.channel_std == pytest.approx(per_channel.std(1).tolist(), rel=1e-12)


def test_a_shift_moves_the_shift_factor_and_leaves_the_scaling_factor():
    """SD3/FLUX: scaling_factor = 1 / std(z - shift_factor) = 1 / std(z)."""
    mu, logvar = _gaussian_latents(64)
    stats = latent_diffusion_statistics(mu, logvar, seed=0)
    shifted = latent_diffusion_statistics(mu + 3.0, logvar, seed=0)
    assert shifted.shift_factor == pytest.approx(stats.shift_factor + 3.0, rel=1e-12)
    assert shifted.scaling_factor == pytest.approx(stats.scaling_factor, rel=1e-9)


def test_jackknife_errors_match_the_iid_formulas():
    """For iid N(0, s^2) elements: se(mean) = s / sqrt(n), se(std) = s / sqrt(2 n), se(1 / std) = 1 / (s sqrt(2 n))."""
    generator = torch.Generator().manual_seed(3)
    mu = 2.0 * torch.randn(800, 4, 3, 3, generator=generator, dtype=torch.float64)
    logvar = torch.full_like(mu, math.log(1.5 ** 2))
    stats = latent_diffusion_statistics(mu, logvar, seed=0)
    s, n = math.sqrt(4.0 + 1.5 ** 2), 800 * 36
    assert stats.sample_mean_stderr == pytest.approx(s / math.sqrt(n), rel=0.15)
    assert stats.sample_std_stderr == pytest.approx(s / math.sqrt(2 * n), rel=0.15)
    assert stats.scaling_factor_stderr == pytest.approx(1 / (s * math.sqrt(2 * n)), rel=0.15)


def test_vector_latents_have_one_entry_per_unit():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 5, generator=generator) * torch.arange(1, 6)
    stats = latent_diffusion_statistics(mu, torch.full_like(mu, -50.0), seed=0)
    assert len(stats.channel_mean) == len(stats.channel_std) == 5
    assert stats.channel_std == pytest.approx(mu.std(0).tolist(), rel=1e-5)
    assert stats.to_dict()["channel_std"] == stats.channel_std


def test_constant_latents_have_no_scaling_factor():
    stats = latent_diffusion_statistics(torch.ones(4, 2), torch.full((4, 2), -200.0))
    assert stats.sample_std == 0 and stats.scaling_factor is None and stats.scaling_factor_stderr is None


@pytest.mark.parametrize(("mu", "logvar", "message"), [
    (torch.zeros(4, 2), torch.zeros(4, 3), "same shape"),
    (torch.zeros(1, 2), torch.zeros(1, 2), "N >= 2"),
    (torch.zeros(4), torch.zeros(4), "N >= 2"),
    (torch.full((4, 2), math.nan), torch.zeros(4, 2), "NaN"),
])
def test_bad_input_is_named(mu, logvar, message):
    with pytest.raises(ValueError, match=message):
        latent_diffusion_statistics(mu, logvar)
