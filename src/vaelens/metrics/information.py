"""Information content of a diagonal Gaussian encoder: rate, I(x; z), and the aggregate-posterior KL terms.

Inputs are the posterior parameters of q(z|x_n) = N(mu_n, diag exp(logvar_n)) for N data points as
(N, d) tensors (CPU or GPU; the work runs on their device, in float64). Everything is in nats.

The data distribution is the empirical one over the N points, so the aggregate posterior is the
mixture q(z) = (1/N) sum_m q(z|x_m) and every Monte-Carlo estimate below evaluates that mixture
exactly (Chen et al. 2018, the "full-data" estimator). Two consequences worth knowing:

- I(x; z) of the empirical distribution is at most log N, and so is every per-sample term of the
  estimator (the own component is part of the mixture), so the estimate never exceeds log N.
  As an estimate of the *population* I(x; z) it is biased low once I approaches log N.
- Total correlation and dimension-wise KL need the marginals q(z_j), estimated with the same
  mixture, so on shared samples KL(q(z)||p(z)) = TC + dimension-wise KL holds to rounding.

Standard errors are those of a mean over the N per-point terms (each averaged over its
`num_samples` draws): they cover Monte-Carlo and data-sampling noise, not the log N bias.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from vaelens.checks import as_float_tensor, check_finite, check_matrix, check_posterior
from vaelens.metrics._aggregate import per_sample_log_densities, standard_normal_noise
from vaelens.posterior import DiagonalGaussian

__all__ = [
    "AggregatePosteriorDecomposition",
    "rate",
    "mutual_information",
    "marginal_kl",
    "total_correlation",
    "dimension_wise_kl",
    "aggregate_posterior_decomposition",
    "gaussian_mi_upper_bound",
    "active_unit_mask",
    "active_units",
]


def rate(mu, logvar) -> tuple[float, list[float]]:
    """Rate R = E_x sum_j KL(q(z_j|x) || N(0, 1)) in closed form; returns (total, per-unit list).

    Per unit KL_j = 0.5 (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), averaged over the N rows.
    """
    mu, logvar = check_posterior(mu, logvar)
    per_unit = DiagonalGaussian(mu, logvar).kl_to_standard_normal().mean(dim=0)
    return float(per_unit.sum()), per_unit.cpu().tolist()


@dataclass(frozen=True)
class AggregatePosteriorDecomposition:
    """ELBO-surgery and TC decomposition of one posterior, all estimated on the same samples (nats).

    rate_monte_carlo = mutual_information + marginal_kl and
    marginal_kl = total_correlation + dimension_wise_kl hold exactly for these numbers; `rate` is
    the closed form, which rate_monte_carlo estimates.
    """

    rate: float
    """Closed-form E_x KL(q(z|x) || p(z))."""
    rate_monte_carlo: float
    """The same rate estimated on the samples: E[log q(z|x) - log p(z)]."""
    mutual_information: float
    """I(x; z) under the empirical data distribution; <= log N."""
    marginal_kl: float
    """KL(q(z) || p(z)), q(z) the aggregate posterior."""
    total_correlation: float
    """KL(q(z) || prod_j q(z_j))."""
    dimension_wise_kl: float
    """sum_j KL(q(z_j) || p(z_j))."""
    rate_monte_carlo_stderr: float
    mutual_information_stderr: float
    marginal_kl_stderr: float
    total_correlation_stderr: float
    dimension_wise_kl_stderr: float
    num_points: int
    """N, the number of rows (mixture components of q(z))."""
    num_samples: int
    """Draws of z per row."""
    log_num_points: float
    """log N, the ceiling of the mutual-information estimate."""

    def to_dict(self) -> dict:
        """Flat JSON-ready dict with the field names as keys."""
        return asdict(self)


def _prepare(mu, logvar, num_samples: int, seed: int, generator, noise) -> tuple:
    """Validate inputs and return float64 (mu, logvar, noise) on the device of `mu`."""
    mu, logvar = check_posterior(mu, logvar, min_rows=2)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if noise is None:
        noise = standard_normal_noise((num_samples, *mu.shape), seed=seed, generator=generator)
    else:
        noise = torch.as_tensor(noise, dtype=torch.float64)
        expected = (num_samples, *mu.shape)
        if noise.ndim == 2:
            noise = noise.unsqueeze(0)
        if tuple(noise.shape) != expected:
            raise ValueError(
                f"noise must have shape (num_samples, N, d) = {expected} (or (N, d) when num_samples=1), "
                f"got {tuple(noise.shape)}"
            )
        check_finite(noise, "noise")
    return mu, logvar, noise.to(mu.device)


def _mean_and_stderr(terms: torch.Tensor) -> tuple[float, float]:
    """Mean of (num_samples, N) terms and the standard error over the N per-point averages."""
    per_point = terms.mean(dim=0)
    return float(per_point.mean()), float(per_point.std(correction=1) / math.sqrt(per_point.numel()))


def _result(value: tuple[float, float], return_stderr: bool):
    return value if return_stderr else value[0]


def mutual_information(mu, logvar, *, num_samples: int = 1, chunk_size: int | None = None, seed: int = 0,
                       generator: torch.Generator | None = None, noise=None, return_stderr: bool = False):
    """Full-data estimate of I(x; z) = E[log q(z|x) - log q(z)] with q(z) the N-component mixture.

    For each row n, draws `num_samples` z ~ q(z|x_n) and averages
    log q(z|x_n) - (logsumexp_m log q(z|x_m) - log N). Never above log N.

    Args:
        mu, logvar: (N, d) posterior means and log-variances, N >= 2.
        num_samples: draws of z per row (more lowers the Monte-Carlo part of the error).
        chunk_size: rows of samples scored at once; memory is O(chunk_size * N). None picks one
            that keeps the buffers near 64 MiB on CPU, 1 GiB on CUDA.
        seed, generator: randomness of the draws (a generator, when given, wins over the seed).
        noise: optional standard-normal draws of shape (num_samples, N, d) to use instead, for
            common random numbers across models or unit permutations.
        return_stderr: also return the standard error over the N per-point terms.

    Returns:
        I in nats, or (I, stderr) when `return_stderr`.
    """
    mu, logvar, noise = _prepare(mu, logvar, num_samples, seed, generator, noise)
    logs = per_sample_log_densities(mu, logvar, noise, chunk_size=chunk_size, marginals=False)
    return _result(_mean_and_stderr(logs.conditional - logs.aggregate), return_stderr)


def marginal_kl(mu, logvar, *, num_samples: int = 1, chunk_size: int | None = None, seed: int = 0,
                generator: torch.Generator | None = None, noise=None, return_stderr: bool = False):
    """KL(q(z) || p(z)) of the aggregate posterior against N(0, I): E[log q(z) - log p(z)].

    Same samples, mixture and arguments as `mutual_information`; with equal seeds,
    mutual_information + marginal_kl equals the Monte-Carlo rate exactly and the closed-form
    `rate` within Monte-Carlo error (ELBO surgery, Hoffman & Johnson 2016).
    """
    mu, logvar, noise = _prepare(mu, logvar, num_samples, seed, generator, noise)
    logs = per_sample_log_densities(mu, logvar, noise, chunk_size=chunk_size, marginals=False)
    return _result(_mean_and_stderr(logs.aggregate - logs.prior), return_stderr)


def aggregate_posterior_decomposition(mu, logvar, *, num_samples: int = 1, chunk_size: int | None = None,
                                      seed: int = 0, generator: torch.Generator | None = None,
                                      noise=None) -> AggregatePosteriorDecomposition:
    """Rate, I(x; z), KL(q(z)||p(z)), total correlation and dimension-wise KL on one set of samples.

    Arguments as in `mutual_information`. The marginals q(z_j) are 1-D N-component mixtures, scored
    one unit at a time, so memory stays O(chunk_size * N); the cost is about d times that of
    `mutual_information` alone.
    """
    mu, logvar, noise = _prepare(mu, logvar, num_samples, seed, generator, noise)
    logs = per_sample_log_densities(mu, logvar, noise, chunk_size=chunk_size, marginals=True)
    rate_mc = _mean_and_stderr(logs.conditional - logs.prior)
    information = _mean_and_stderr(logs.conditional - logs.aggregate)
    kl = _mean_and_stderr(logs.aggregate - logs.prior)
    tc = _mean_and_stderr(logs.aggregate - logs.marginals)
    dimension_wise = _mean_and_stderr(logs.marginals - logs.prior)
    return AggregatePosteriorDecomposition(
        rate=rate(mu, logvar)[0],
        rate_monte_carlo=rate_mc[0],
        mutual_information=information[0],
        marginal_kl=kl[0],
        total_correlation=tc[0],
        dimension_wise_kl=dimension_wise[0],
        rate_monte_carlo_stderr=rate_mc[1],
        mutual_information_stderr=information[1],
        marginal_kl_stderr=kl[1],
        total_correlation_stderr=tc[1],
        dimension_wise_kl_stderr=dimension_wise[1],
        num_points=mu.shape[0],
        num_samples=noise.shape[0],
        log_num_points=math.log(mu.shape[0]),
    )


def total_correlation(mu, logvar, *, num_samples: int = 1, chunk_size: int | None = None, seed: int = 0,
                      generator: torch.Generator | None = None, noise=None, return_stderr: bool = False):
    """TC = KL(q(z) || prod_j q(z_j)) of the aggregate posterior (Chen et al. 2018, full data).

    Arguments as in `mutual_information`. The mixture estimate of q(z) needs the components to
    overlap: when posteriors are much narrower than the spacing of the means, log q(z) saturates at
    log q(z|x_n) - log N while each marginal does not, and TC is overestimated.
    """
    decomposition = aggregate_posterior_decomposition(mu, logvar, num_samples=num_samples, chunk_size=chunk_size,
                                                      seed=seed, generator=generator, noise=noise)
    value = (decomposition.total_correlation, decomposition.total_correlation_stderr)
    return _result(value, return_stderr)


def dimension_wise_kl(mu, logvar, *, num_samples: int = 1, chunk_size: int | None = None, seed: int = 0,
                      generator: torch.Generator | None = None, noise=None, return_stderr: bool = False):
    """sum_j KL(q(z_j) || N(0, 1)) with q(z_j) the 1-D aggregate-posterior marginals.

    Arguments as in `mutual_information`; total_correlation + dimension_wise_kl = marginal_kl on
    the same samples.
    """
    decomposition = aggregate_posterior_decomposition(mu, logvar, num_samples=num_samples, chunk_size=chunk_size,
                                                      seed=seed, generator=generator, noise=noise)
    value = (decomposition.dimension_wise_kl, decomposition.dimension_wise_kl_stderr)
    return _result(value, return_stderr)


def gaussian_mi_upper_bound(mu, logvar) -> float:
    """Upper bound on I(x; z): 0.5 logdet(Cov_x(mu) + E_x diag sigma^2) - 0.5 E_x sum_j log sigma_j^2.

    The first term is the entropy bound of a Gaussian with the covariance of the aggregate
    posterior (minus the shared constant), so the bound is tight exactly when q(z) is Gaussian.
    Cov_x uses 1/N: that is the covariance of the empirical mixture, which makes this a true
    bound on the mixture's I(x; z) rather than only in expectation.
    """
    mu, logvar = check_posterior(mu, logvar, min_rows=2)
    centred = mu - mu.mean(dim=0)
    covariance = centred.T @ centred / mu.shape[0] + torch.diag(logvar.exp().mean(dim=0))
    sign, log_determinant = torch.linalg.slogdet(covariance)
    if float(sign) <= 0:
        raise ValueError("the aggregate-posterior covariance is not positive definite; check mu and logvar")
    return float(0.5 * log_determinant - 0.5 * logvar.sum(dim=1).mean())


def active_unit_mask(mu, threshold: float = 0.01) -> torch.Tensor:
    """Boolean (d,) mask of active units (Burda et al. 2016): Var_x(mu_j) > threshold.

    The variance uses the unbiased 1/(N-1) normalisation; needs N >= 2. Use it to restrict other
    metrics to active units, e.g. `participation_ratio(mu[:, active_unit_mask(mu)])`.
    """
    mu = as_float_tensor(mu, "mu")
    check_matrix(mu, "mu", min_rows=2)
    check_finite(mu, "mu")
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite non-negative number, got {threshold!r}")
    return mu.var(dim=0, correction=1) > threshold


def active_units(mu, threshold: float = 0.01) -> int:
    """Number of active units, Var_x(mu_j) > threshold (Burda et al. 2016; 0.01 is their choice)."""
    return int(active_unit_mask(mu, threshold).sum())
