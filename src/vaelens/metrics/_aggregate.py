"""Scoring samples under the aggregate posterior q(z) = (1/N) sum_m q(z|x_m), in chunks of samples.

The O(S x N) pairwise log-densities (S samples, N mixture components) are the cost of every
full-data estimator. For the joint density the quadratic form expands,

    sum_j (z_j - mu_mj)^2 / s_mj = [z^2, z] . [1/s_m, -2 mu_m / s_m] + sum_j mu_mj^2 / s_mj,

so one chunk of samples is scored against all N components with a single (B, 2d) x (2d, N)
matmul in float64 and never materialises a (B, N, d) tensor. The expansion cancels terms of size
z^2 / s; float64 keeps that exact to ~1e-16 * max(z^2 / s), ample unless sigma < 1e-6 |z|.
Each sample's own component is then overwritten with its directly computed value, which keeps
logsumexp >= own term and hence every per-sample I(x; z) term <= log N exactly.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch

from vaelens.posterior import LOG_2PI, DiagonalGaussian

WORKING_SET_BYTES = {"cpu": 64 * 2**20, "cuda": 1024 * 2**20}
"""Target size of the per-chunk buffers when `chunk_size` is not given, by device type: small
enough that a chunk's buffers stay near the CPU caches (why 64 MiB: BENCHMARKS.md), large on GPUs to
amortise kernel launches."""
LIVE_CHUNK_COPIES = 2
"""(B, N) float64 buffers alive at once: the joint log-densities, and one unit's in the per-unit path."""


@dataclass(frozen=True)
class SampleLogDensities:
    """Log-densities of the drawn samples, each (num_samples, N): entry [k, n] is draw k from q(z|x_n)."""

    conditional: torch.Tensor
    """log q(z|x_n) at the sample's own posterior."""
    aggregate: torch.Tensor
    """log q(z), the N-component mixture."""
    prior: torch.Tensor
    """log N(z; 0, I)."""
    marginals: torch.Tensor | None
    """sum_j log q(z_j) with 1-D mixture marginals; None unless requested."""


def standard_normal_noise(shape: tuple[int, ...], seed: int = 0,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """float64 standard-normal draws; a CPU generator seeded with `seed` unless `generator` is given.

    Drawing on the CPU by default makes a seed give the same samples on every device.
    """
    if generator is None:
        try:
            generator = torch.Generator().manual_seed(operator.index(seed))
        except TypeError as error:
            raise ValueError(f"seed must be an integer, got {seed!r}") from error
    return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float64)


def resolve_chunk_size(chunk_size: int | None, num_components: int, device: torch.device) -> int:
    """`chunk_size` validated, or the largest one whose buffers fit WORKING_SET_BYTES on `device`."""
    if chunk_size is None:
        budget = WORKING_SET_BYTES.get(device.type, WORKING_SET_BYTES["cpu"])
        return max(1, budget // (LIVE_CHUNK_COPIES * 8 * num_components))
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return chunk_size


def _logsumexp_rows_(values: torch.Tensor) -> torch.Tensor:
    """Row-wise logsumexp of a (B, N) buffer, computed in place to avoid (B, N) temporaries (clobbers it)."""
    peak = values.amax(dim=1, keepdim=True)
    return values.sub_(peak).exp_().sum(dim=1).log_().add_(peak.squeeze(1))


def per_sample_log_densities(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor, *,
                             chunk_size: int | None, marginals: bool) -> SampleLogDensities:
    """Draw z = mu + sigma * noise for every row and score it under q(z|x_n), q(z), p(z) (and q(z_j)).

    mu, logvar: (N, d) float64; noise: (K, N, d) float64 on the same device. Memory beyond the
    inputs is O(chunk_size * N): one (chunk_size, N) buffer, two with `marginals`.
    """
    num_draws, num_points, num_units = noise.shape
    log_num_points = math.log(num_points)
    posterior = DiagonalGaussian(mu, logvar)
    samples = posterior.sample(noise).reshape(-1, num_units)
    own_per_unit = posterior.log_density_of_sample(noise).reshape(-1, num_units)
    conditional = own_per_unit.sum(dim=1)
    prior = -0.5 * (samples.square() + LOG_2PI).sum(dim=1)
    owners = torch.arange(num_points, device=mu.device).repeat(num_draws)

    precision = (-logvar).exp()
    features_weights = torch.cat([precision, -2.0 * mu * precision], dim=1).T.contiguous()
    bias = (-0.5 * ((mu.square() * precision).sum(dim=1) + logvar.sum(dim=1) + num_units * LOG_2PI)).unsqueeze(0)
    # Unit-major copies so that each unit's row over the N components is contiguous.
    unit_means, unit_scales = mu.T.contiguous(), (-0.5 * precision).T.contiguous()
    unit_bias = (-0.5 * (logvar + LOG_2PI)).T.contiguous()

    aggregate = torch.empty_like(conditional)
    marginal_sum = torch.empty_like(conditional) if marginals else None
    step = min(resolve_chunk_size(chunk_size, num_points, mu.device), samples.shape[0])
    joint_buffer = torch.empty(step, num_points, dtype=mu.dtype, device=mu.device)
    unit_buffer = torch.empty_like(joint_buffer) if marginals else None
    for start in range(0, samples.shape[0], step):
        rows = slice(start, min(start + step, samples.shape[0]))
        chunk = samples[rows]
        joint = joint_buffer[: chunk.shape[0]]
        diagonal = (torch.arange(chunk.shape[0], device=mu.device), owners[rows])
        if marginals:
            joint.zero_()
            unit_total = torch.zeros(chunk.shape[0], dtype=mu.dtype, device=mu.device)
            for unit in range(num_units):
                unit_log = torch.sub(chunk[:, unit, None], unit_means[unit], out=unit_buffer[: chunk.shape[0]])
                unit_log.square_().mul_(unit_scales[unit]).add_(unit_bias[unit])
                unit_log[diagonal] = own_per_unit[rows, unit]
                joint += unit_log
                unit_total += _logsumexp_rows_(unit_log)
            marginal_sum[rows] = unit_total - num_units * log_num_points
        else:
            features = torch.cat([chunk.square(), chunk], dim=1)
            torch.addmm(bias, features, features_weights, alpha=-0.5, out=joint)
        joint[diagonal] = conditional[rows]
        aggregate[rows] = _logsumexp_rows_(joint) - log_num_points

    def per_draw(values):
        return None if values is None else values.reshape(num_draws, num_points)

    return SampleLogDensities(conditional=per_draw(conditional), aggregate=per_draw(aggregate),
                              prior=per_draw(prior), marginals=per_draw(marginal_sum))
