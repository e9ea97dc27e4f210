"""The Gaussian likelihood under a distortion metric M: N(x | x̂, sigma^2 M^-1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelens.config import LossConfig
from vaelens.losses import build_likelihood
from vaelens.losses.pointwise import MetricGaussianLikelihood


def spd(n, seed):
    factor = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return factor @ factor.T / n + 0.5 * torch.eye(n, dtype=torch.float64)


def test_nll_is_the_multivariate_normal_with_precision_m(tmp_path):
    metric, sigma = spd(6, 0), 0.4
    path = tmp_path / "metric.npy"
    np.save(path, metric.numpy())
    likelihood = build_likelihood(LossConfig(likelihood="gaussian", sigma=sigma, metric=str(path)), (1, 2, 3))
    x = torch.rand(5, 1, 2, 3, generator=torch.Generator().manual_seed(1))
    output = torch.rand(5, 1, 2, 3, generator=torch.Generator().manual_seed(2))
    normal = torch.distributions.MultivariateNormal(output.flatten(1).double(),
                                                    precision_matrix=metric / sigma**2)
    expected = -normal.log_prob(x.flatten(1).double())
    torch.testing.assert_close(likelihood.nll(x, output).double(), expected, rtol=1e-5, atol=1e-4)
    described = likelihood.describe()
    assert described["metric"] == str(path) and described["sigma"] == sigma


def test_identity_metric_equals_the_plain_gaussian():
    x, output = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    plain = build_likelihood(LossConfig(likelihood="gaussian", sigma=0.7), (1, 2, 2))
    torch.testing.assert_close(MetricGaussianLikelihood(torch.eye(4), 0.7).nll(x, output), plain.nll(x, output))


def test_metric_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="positive definite"):
        MetricGaussianLikelihood(torch.diag(torch.tensor([1.0, 0.0])))
    with pytest.raises(ValueError, match="symmetric"):
        MetricGaussianLikelihood(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        MetricGaussianLikelihood(torch.ones(2, 3))
    with pytest.raises(ValueError, match="4 pixels"):
        MetricGaussianLikelihood(torch.eye(3)).nll(torch.rand(2, 1, 2, 2), torch.rand(2, 1, 2, 2))
    path = tmp_path / "m.npy"
    np.save(path, np.eye(4))
    with pytest.raises(ValueError, match="fixed-sigma Gaussian"):
        build_likelihood(LossConfig(likelihood="laplace", metric=str(path)), (1, 2, 2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_likelihood(LossConfig(likelihood="gaussian", metric=str(tmp_path / "missing.npy")), (1, 2, 2))
