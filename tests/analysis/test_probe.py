"""analysis.probe: the mechanistic probe under a run's own loss, against the linear-Gaussian closed form."""

import numpy as np
import pytest
import torch

import vaelens
from vaelens.analysis.probe import PROBE_MAX_UNITS, probe_skip_reason
from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.data.gaussian import write_gaussian_source
from vaelens.losses.objective import VAEObjective
from vaelens.losses.pointwise import GaussianLikelihood, LaplaceLikelihood
from vaelens.models.mlp import LinearVAE
from vaelens.theory import linear_vae_optimum, scale_for_gaussian_likelihood
from vaelens.training import train

SIGMA, BETA = 0.5, 0.4
SPECTRUM = [1.0, 0.5, 0.2, 0.05]


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    """A linear VAE trained with the Gaussian likelihood on a 4-d Gaussian source (three units active)."""
    folder = tmp_path_factory.mktemp("linear")
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    source = write_gaussian_source(folder / "source.npz", (rotation * SPECTRUM) @ rotation.T, np.full(4, 0.5), 1024)
    config = resolve(None, None, [
        "data.name=gaussian", f"data.path={source}", "data.test_fraction=0.0", "model.name=linear",
        "model.latent_dim=4", "loss.likelihood=gaussian", f"loss.sigma={SIGMA}", f"loss.beta={BETA}",
        "train.steps=2000", "train.lr=0.02", "train.batch_size=1024", "train.checkpoint_every=2000",
        "train.log_every=500", "train.progress=false", "train.device=cpu"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: thread hand-offs would cost more than the arithmetic
    try:
        result = train(config, folder / "run")
    finally:
        torch.set_num_threads(threads)
    return result, load_dataset(config.data, "test")


def test_probe_of_a_trained_linear_vae_matches_the_closed_form(linear_run):
    result, data = linear_run
    analysis = vaelens.analyze(result.model, data, objective=result.objective, max_images=None, disentanglement=False,
                               progress=False, probe=True, probe_images=64, seed=1)
    assert analysis["probe.num_images"] == 64 and analysis["probe.seed"] == 1
    assert analysis["probe.metric_at"] == "reconstruction" and analysis["probe.beta"] == BETA
    assert analysis["probe.pearson_log"] > 0.99 and analysis["probe.spearman_log"] > 0.99
    assert abs(analysis["probe.median_log_ratio"]) < 0.05 and analysis["probe.negative_curvature_count"] == 0
    # docs/science.md ("The linear-Gaussian theory"): loss ||x - x_hat||^2 / (2 sigma^2) is c d_M with c = 1 / (2
    # sigma^2), M = I, so
    # (J^T M J)_jj = c (lambda_j - theta) and sigma_j^2 = theta / lambda_j, theta = beta sigma^2.
    images = data.all_images().double().flatten(1)
    optimum = linear_vae_optimum(torch.cov(images.T, correction=0).numpy(), None, BETA,
                                 scale_for_gaussian_likelihood(SIGMA), 4)
    curvature = np.clip(optimum.eigenvalues - optimum.water_level, 0, None) / (2 * SIGMA**2)
    assert optimum.num_active == 3
    np.testing.assert_allclose(analysis["probe.curvature_profile"], curvature, atol=0.03 * curvature[0])
    np.testing.assert_allclose(analysis["probe.actual_profile"], optimum.posterior_variance, rtol=0.05)
    np.testing.assert_allclose(analysis["probe.predicted_profile"], optimum.posterior_variance, rtol=0.05)
    assert sorted(analysis["probe.unit_order"]) == [0, 1, 2, 3]
    weights = curvature / curvature.sum()
    entropy = -(weights[weights > 0] * np.log(weights[weights > 0])).sum() / np.log(4)
    assert analysis["probe.curvature_spread"] == pytest.approx(entropy, abs=0.02)
    assert analysis["probe.curvature_cv"] == pytest.approx(curvature.std() / curvature.mean(), rel=0.05)


def test_probe_is_skipped_with_the_reason_where_it_cannot_describe_the_loss(linear_run):
    result, data = linear_run
    model = result.model
    assert "no training objective" in probe_skip_reason(model, None, 4)
    assert "zero curvature" in probe_skip_reason(model, VAEObjective(LaplaceLikelihood(), beta=1.0), 4)
    assert "without a KL term" in probe_skip_reason(model, VAEObjective(GaussianLikelihood(), beta=0.0), 4)
    wide = LinearVAE((1, 2, 2), PROBE_MAX_UNITS + 1)
    assert f"{PROBE_MAX_UNITS + 1} latent units" in probe_skip_reason(wide, result.objective, PROBE_MAX_UNITS + 1)
    laplace = vaelens.analyze(model, data, objective=VAEObjective(LaplaceLikelihood(), beta=1.0), max_images=64,
                              disentanglement=False, progress=False, probe=True)
    assert "zero curvature" in laplace["probe_skipped"] and "probe.pearson_log" not in laplace
    unasked = vaelens.analyze(model, data, objective=result.objective, max_images=64, disentanglement=False,
                              progress=False)
    assert "not requested" in unasked["probe_skipped"]
