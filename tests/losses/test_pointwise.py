import math

import pytest
import torch

from vaelens.config import LossConfig
from vaelens.losses import build_likelihood, build_objective, kl_per_unit


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 3, 3, generator=generator)
    output = torch.randn(2, 1, 3, 3, generator=generator)
    return x, output


def test_gaussian_fixed_sigma_formula(pair):
    x, output = pair
    sigma = 0.3
    nll = build_likelihood(LossConfig(likelihood="gaussian", sigma=sigma), x.shape[1:]).nll(x, output)
    expected = torch.distributions.Normal(output, sigma).log_prob(x).flatten(1).sum(1).neg()
    torch.testing.assert_close(nll, expected)
    by_hand = ((x - output) ** 2).flatten(1).sum(1) / (2 * sigma**2) + 9 * math.log(sigma * math.sqrt(2 * math.pi))
    torch.testing.assert_close(nll, by_hand)


@pytest.mark.parametrize("mode", ["scalar", "pixel"])
def test_gaussian_learned_sigma_formula(pair, mode):
    x, output = pair
    likelihood = build_likelihood(LossConfig(likelihood="gaussian_learned", learned_sigma=mode), x.shape[1:])
    with torch.no_grad():
        likelihood.log_sigma.fill_(-1.2)
    expected = torch.distributions.Normal(output, math.exp(-1.2)).log_prob(x).flatten(1).sum(1).neg()
    torch.testing.assert_close(likelihood.nll(x, output), expected)
    assert likelihood.log_sigma.shape == (() if mode == "scalar" else x.shape[1:])


def test_learned_sigma_optimum_is_rms_error(pair):
    x, output = pair
    likelihood = build_likelihood(LossConfig(likelihood="gaussian_learned"), x.shape[1:])
    optimizer = torch.optim.LBFGS([likelihood.log_sigma], max_iter=100)

    def closure():
        optimizer.zero_grad()
        loss = likelihood.nll(x, output).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    rms = (x - output).pow(2).mean().sqrt()
    assert float(likelihood.log_sigma.detach().exp()) == pytest.approx(float(rms), rel=1e-4)


def test_laplace_formula(pair):
    x, output = pair
    nll = build_likelihood(LossConfig(likelihood="laplace", sigma=0.5), x.shape[1:]).nll(x, output)
    expected = torch.distributions.Laplace(output, 0.5).log_prob(x).flatten(1).sum(1).neg()
    torch.testing.assert_close(nll, expected)


def test_bernoulli_formula(pair):
    x, logits = pair
    binary = (x > 0.5).float()
    likelihood = build_likelihood(LossConfig(likelihood="bernoulli"), x.shape[1:])
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(binary).flatten(1).sum(1).neg()
    torch.testing.assert_close(likelihood.nll(binary, logits), expected)
    torch.testing.assert_close(likelihood.mean(logits), torch.sigmoid(logits))


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    posterior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    expected = torch.distributions.kl_divergence(posterior, torch.distributions.Normal(0.0, 1.0))
    torch.testing.assert_close(kl_per_unit(mu, logvar), expected)


def test_objective_convention_sum_pixels_mean_batch_beta_kl(pair):
    x, output = pair
    mu, logvar = torch.randn(2, 5), torch.randn(2, 5)
    objective = build_objective(LossConfig(likelihood="gaussian", sigma=1.0, beta=3.0), x.shape[1:])
    terms = objective(x, output, mu, logvar)
    distortion = objective.likelihood.nll(x, output).mean()
    rate = kl_per_unit(mu, logvar).sum(1).mean()
    torch.testing.assert_close(terms.loss, distortion + 3.0 * rate)
    torch.testing.assert_close(terms.kl_per_unit.sum(), rate)
    described = objective.describe()
    assert described["convention"] == "additive" and described["units"] == "nats" and described["beta"] == 3.0


def test_bad_loss_settings():
    with pytest.raises(ValueError, match="unknown loss.likelihood 'poisson'"):
        build_likelihood(LossConfig(likelihood="poisson"), (1, 2, 2))
    with pytest.raises(ValueError, match="must be positive"):
        build_likelihood(LossConfig(likelihood="gaussian", sigma=0.0), (1, 2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        build_objective(LossConfig(beta=-1.0), (1, 2, 2))


def test_each_likelihoods_constant_is_its_nll_at_a_perfect_reconstruction():
    """constant() is the NLL's parameter-free part: what nll(x, x̂) is at x̂ = x (Gaussian, Laplace); the
    convention weights it, and a learned scale has none."""
    from vaelens.config import resolve
    from vaelens.losses.objective import objective_constant
    from vaelens.losses.pointwise import (
        BernoulliLikelihood,
        GaussianLikelihood,
        LaplaceLikelihood,
        LearnedGaussianLikelihood,
    )

    x = torch.rand(3, 1, 8, 8)
    for likelihood in (GaussianLikelihood(0.1), LaplaceLikelihood(0.5)):
        assert likelihood.constant(64) == pytest.approx(float(likelihood.nll(x, x)[0]), rel=1e-6)
    assert BernoulliLikelihood().constant(64) == 0.0
    assert LearnedGaussianLikelihood((1, 8, 8)).constant(64) is None
    config = resolve("natural-bvae", None, ["loss.likelihood=gaussian", "loss.sigma=0.1"]).loss
    shape = (3, 8, 8)
    additive = objective_constant(config, shape)
    assert additive == pytest.approx(192 * (math.log(0.1) + 0.5 * math.log(2 * math.pi)))
    config.convention, config.neural_fraction = "convex", 0.25
    assert objective_constant(config, shape) == pytest.approx(0.75 * additive)
    config.convention = "ldm"
    assert objective_constant(config, shape) is None
