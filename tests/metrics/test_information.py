"""Information metrics against closed forms: linear-Gaussian encoders, exact 1-D mixtures, ELBO surgery."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelens.metrics.information import (
    active_unit_mask,
    active_units,
    aggregate_posterior_decomposition,
    dimension_wise_kl,
    gaussian_mi_upper_bound,
    marginal_kl,
    mutual_information,
    rate,
    total_correlation,
)

F64 = torch.float64


def linear_gaussian_posterior(num_points: int, encoder: torch.Tensor, data_covariance: torch.Tensor,
                              noise_variances: torch.Tensor, seed: int = 0):
    """x ~ N(0, Sigma), q(z|x) = N(A x, D): posterior parameters and the aggregate covariance A Sigma A^T + D."""
    generator = torch.Generator().manual_seed(seed)
    cholesky = torch.linalg.cholesky(data_covariance)
    x = torch.randn(num_points, data_covariance.shape[0], generator=generator, dtype=F64) @ cholesky.T
    mu = x @ encoder.T
    logvar = noise_variances.log().expand_as(mu).clone()
    aggregate_covariance = encoder @ data_covariance @ encoder.T + torch.diag(noise_variances)
    return mu, logvar, aggregate_covariance


def gaussian_kl_to_standard(covariance: torch.Tensor) -> float:
    """KL(N(0, S) || N(0, I))."""
    return float(0.5 * (torch.trace(covariance) - covariance.shape[0] - torch.logdet(covariance)))


@pytest.fixture(scope="module")
def linear_case():
    data_covariance = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]], dtype=F64)
    encoder = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.8, 0.2]], dtype=F64)
    noise_variances = torch.tensor([0.3, 0.5], dtype=F64)
    mu, logvar, aggregate = linear_gaussian_posterior(4000, encoder, data_covariance, noise_variances, seed=1)
    true_information = float(0.5 * torch.logdet(aggregate) - 0.5 * noise_variances.log().sum())
    return mu, logvar, aggregate, true_information


def test_rate_matches_closed_form():
    mu = torch.tensor([[0.5, -1.0, 0.0], [1.5, 0.2, 0.0]], dtype=F64)
    logvar = torch.tensor([[-1.0, 0.0, 0.3], [-2.0, 0.5, 0.0]], dtype=F64)
    expected = 0.5 * (mu.numpy() ** 2 + np.exp(logvar.numpy()) - 1 - logvar.numpy()).mean(axis=0)
    total, per_unit = rate(mu, logvar)
    assert per_unit == pytest.approx(expected.tolist(), rel=1e-12)
    assert total == pytest.approx(expected.sum(), rel=1e-12)
    assert rate(torch.zeros(4, 2), torch.zeros(4, 2)) == (0.0, [0.0, 0.0])


def test_rate_of_linear_encoder_matches_population_value(linear_case):
    mu, logvar, aggregate, _ = linear_case
    total, _ = rate(mu, logvar)
    noise_log_det = float(logvar[0].sum())
    expected = 0.5 * (float(torch.trace(aggregate)) - 2 - noise_log_det)
    assert total == pytest.approx(expected, abs=0.05)


def test_mutual_information_of_linear_gaussian_encoder(linear_case):
    mu, logvar, _, true_information = linear_case
    estimate, stderr = mutual_information(mu, logvar, return_stderr=True, seed=3)
    assert true_information < math.log(len(mu)) - 5
    assert 0 < stderr < 0.05
    assert abs(estimate - true_information) < 3 * stderr


def test_mutual_information_is_exact_for_an_empirical_mixture():
    mu = torch.tensor([[-2.0], [-1.5], [0.3], [2.0], [2.2]], dtype=F64)
    sigma = torch.tensor([[0.5], [0.3], [0.7], [0.4], [0.6]], dtype=F64)
    grid = np.linspace(-8, 8, 40001)
    components = np.exp(-0.5 * ((grid[:, None] - mu.numpy()[:, 0]) / sigma.numpy()[:, 0]) ** 2)
    components /= np.sqrt(2 * np.pi) * sigma.numpy()[:, 0]
    mixture = components.mean(axis=1)
    mixture_entropy = -np.trapezoid(mixture * np.log(mixture), grid)
    conditional_entropy = np.mean(0.5 * np.log(2 * np.pi * np.e * sigma.numpy() ** 2))
    exact = mixture_entropy - conditional_entropy
    estimate = mutual_information(mu, 2 * sigma.log(), num_samples=20000, seed=0)
    assert estimate == pytest.approx(exact, abs=0.02)
    assert estimate <= math.log(5)
    assert gaussian_mi_upper_bound(mu, 2 * sigma.log()) > exact + 0.1


def test_mutual_information_never_exceeds_log_n():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(300, 3, generator=generator, dtype=F64)
    logvar = torch.full_like(mu, math.log(1e-6))
    true_information = 0.5 * 3 * math.log(1 + 1e6)
    assert true_information > math.log(300) + 10
    for samples in (1, 3):
        estimate = mutual_information(mu, logvar, num_samples=samples, seed=samples)
        assert estimate <= math.log(300) + 1e-12
        assert estimate > math.log(300) - 0.01
    decomposition = aggregate_posterior_decomposition(mu, logvar, chunk_size=17)
    assert decomposition.mutual_information <= decomposition.log_num_points + 1e-12


def test_chunk_size_does_not_change_the_estimate(linear_case):
    mu, logvar = linear_case[0][:500], linear_case[1][:500]
    reference = mutual_information(mu, logvar, seed=5, num_samples=2)
    assert mutual_information(mu, logvar, seed=5, num_samples=2, chunk_size=7) == pytest.approx(reference, rel=1e-10)
    full = aggregate_posterior_decomposition(mu, logvar, seed=5, num_samples=2)
    chunked = aggregate_posterior_decomposition(mu, logvar, seed=5, num_samples=2, chunk_size=33)
    assert chunked.total_correlation == pytest.approx(full.total_correlation, rel=1e-10)
    assert full.mutual_information == pytest.approx(reference, rel=1e-10)


def test_elbo_surgery_and_tc_decomposition_on_shared_samples(linear_case):
    mu, logvar, aggregate, _ = linear_case
    result = aggregate_posterior_decomposition(mu, logvar, seed=7)
    assert result.rate_monte_carlo == pytest.approx(result.mutual_information + result.marginal_kl, abs=1e-10)
    assert result.marginal_kl == pytest.approx(result.total_correlation + result.dimension_wise_kl, abs=1e-10)
    assert abs(result.rate - result.rate_monte_carlo) < 3 * result.rate_monte_carlo_stderr
    assert abs(result.rate - result.mutual_information - result.marginal_kl) < 3 * result.rate_monte_carlo_stderr
    assert marginal_kl(mu, logvar, seed=7) == pytest.approx(result.marginal_kl, rel=1e-9)
    assert total_correlation(mu, logvar, seed=7) == pytest.approx(result.total_correlation, rel=1e-12)
    assert dimension_wise_kl(mu, logvar, seed=7) == pytest.approx(result.dimension_wise_kl, rel=1e-12)
    assert result.to_dict()["num_points"] == len(mu)


def test_aggregate_kl_terms_match_gaussian_closed_forms(linear_case):
    mu, logvar, aggregate, _ = linear_case
    result = aggregate_posterior_decomposition(mu, logvar, seed=11)
    variances = torch.diag(aggregate)
    closed_forms = {
        "marginal_kl": gaussian_kl_to_standard(aggregate),
        "total_correlation": float(0.5 * variances.log().sum() - 0.5 * torch.logdet(aggregate)),
        "dimension_wise_kl": float(0.5 * (variances - 1 - variances.log()).sum()),
    }
    for name, expected in closed_forms.items():
        estimate, stderr = getattr(result, name), getattr(result, f"{name}_stderr")
        assert abs(estimate - expected) < 3 * stderr + 0.01, name


def test_total_correlation_of_near_deterministic_correlated_encoder():
    correlation = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=F64)
    mu, logvar, _ = linear_gaussian_posterior(3000, torch.eye(2, dtype=F64), correlation,
                                              torch.tensor([0.01, 0.01], dtype=F64), seed=2)
    estimate, stderr = total_correlation(mu, logvar, return_stderr=True, seed=0)
    limit = -0.5 * math.log(float(torch.linalg.det(correlation)))
    assert abs(estimate - limit) < 3 * stderr + 0.02
    independent, _, _ = linear_gaussian_posterior(3000, torch.eye(2, dtype=F64), torch.eye(2, dtype=F64),
                                               torch.tensor([0.01, 0.01], dtype=F64), seed=2)
    assert abs(total_correlation(independent, logvar, seed=0)) < 0.05


def test_gaussian_upper_bound_is_tight_for_linear_encoders(linear_case):
    mu, logvar, _, true_information = linear_case
    bound = gaussian_mi_upper_bound(mu, logvar)
    estimate, stderr = mutual_information(mu, logvar, return_stderr=True, seed=1)
    assert bound == pytest.approx(true_information, abs=0.03)
    assert bound > estimate - 3 * stderr


def test_active_units_of_constructed_encoder():
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 0.5, 0.2, 0.02, 0.0], dtype=F64)
    mu = torch.randn(2000, 5, generator=generator, dtype=F64) * scales + 3.0
    assert active_unit_mask(mu).tolist() == [True, True, True, False, False]
    assert active_units(mu) == 3
    assert active_units(mu, threshold=0.1) == 2
    assert active_units(mu, threshold=0.0) == 4


def test_seeds_generators_and_common_noise_reproduce_draws(linear_case):
    mu, logvar = linear_case[0][:200], linear_case[1][:200]
    assert mutual_information(mu, logvar, seed=4) == mutual_information(mu, logvar, seed=4)
    assert mutual_information(mu, logvar, seed=4) != mutual_information(mu, logvar, seed=5)
    from_generator = mutual_information(mu, logvar, generator=torch.Generator().manual_seed(4))
    assert from_generator == mutual_information(mu, logvar, seed=4)
    noise = torch.randn(200, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    assert mutual_information(mu, logvar, noise=noise) == pytest.approx(mutual_information(mu, logvar, seed=4))
    with pytest.raises(ValueError, match="noise must have shape"):
        mutual_information(mu, logvar, num_samples=2, noise=noise)


@pytest.mark.parametrize(
    ("mu", "logvar", "message"),
    [
        (torch.tensor([[0.0, float("nan")], [1.0, 2.0]]), torch.zeros(2, 2), "mu has 1 NaN/Inf"),
        (torch.zeros(2, 2), torch.tensor([[0.0, float("inf")], [1.0, 2.0]]), "logvar has 1 NaN/Inf"),
        (torch.zeros(5), torch.zeros(5), "mu must be 2-D"),
        (torch.zeros(5, 2), torch.zeros(5, 3), "same shape"),
        (torch.zeros(1, 2), torch.zeros(1, 2), "at least 2 rows"),
    ],
)
def test_bad_posterior_inputs_raise_clear_errors(mu, logvar, message):
    for metric in (mutual_information, marginal_kl, total_correlation, gaussian_mi_upper_bound):
        with pytest.raises(ValueError, match=message):
            metric(mu, logvar)


def test_bad_estimator_settings_raise_clear_errors():
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="num_samples"):
        mutual_information(mu, logvar, num_samples=0)
    with pytest.raises(ValueError, match="chunk_size"):
        mutual_information(mu, logvar, chunk_size=0)
    with pytest.raises(ValueError, match="threshold"):
        active_units(mu, threshold=float("nan"))
    with pytest.raises(ValueError, match="at least 2 rows"):
        active_units(torch.zeros(1, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_and_cpu_give_the_same_estimates(linear_case):
    mu, logvar = linear_case[0][:1000], linear_case[1][:1000]
    cpu = aggregate_posterior_decomposition(mu, logvar, seed=2)
    gpu = aggregate_posterior_decomposition(mu.cuda(), logvar.cuda(), seed=2)
    assert gpu.mutual_information == pytest.approx(cpu.mutual_information, rel=1e-9)
    assert gpu.total_correlation == pytest.approx(cpu.total_correlation, rel=1e-9)
    assert mutual_information(mu.float().cuda(), logvar.float().cuda(), seed=2) == pytest.approx(
        mutual_information(mu, logvar, seed=2), rel=1e-5)
