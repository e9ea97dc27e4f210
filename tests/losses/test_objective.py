import pytest
import torch

from vaelens.config import LossConfig
from vaelens.losses import VAEObjective, build_likelihood, build_objective, kl_per_unit
from vaelens.losses.perceptual import PerceptualTerm
from vaelens.losses.terms import perceptual_term, structural_term


def squared_feature_term():
    """A hand-checkable 'perceptual' distance: squared difference of 2x2 average-pooled images."""
    pool = torch.nn.functional.avg_pool2d
    return PerceptualTerm("pooled", lambda x, y: (pool(x, 2) - pool(y, 2)).pow(2).flatten(1).sum(1), {})


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 4, 4, generator=generator)
    output = torch.rand(3, 1, 4, 4, generator=generator)
    mu, logvar = torch.randn(3, 2, generator=generator), torch.randn(3, 2, generator=generator)
    return x, output, mu, logvar


def test_additive_convention_by_hand(batch):
    x, output, mu, logvar = batch
    likelihood = build_likelihood(LossConfig(likelihood="gaussian", sigma=0.5), (1, 4, 4))
    objective = VAEObjective(likelihood, beta=2.0, convention="additive",
                             terms=[perceptual_term(squared_feature_term(), 10.0)])
    terms = objective(x, output, mu, logvar)
    pixel = likelihood.nll(x, output)
    perceptual = squared_feature_term()(x, output)
    rate = kl_per_unit(mu, logvar).sum(1).mean()
    torch.testing.assert_close(terms.distortion, (pixel + 10.0 * perceptual).mean())
    torch.testing.assert_close(terms.loss, (pixel + 10.0 * perceptual).mean() + 2.0 * rate)
    torch.testing.assert_close(terms.logged["pixel"], pixel.mean())
    torch.testing.assert_close(terms.logged["perceptual"], perceptual.mean())


def test_convex_convention_by_hand(batch):
    x, output, mu, logvar = batch
    likelihood = build_likelihood(LossConfig(likelihood="laplace", sigma=1.0), (1, 4, 4))
    objective = VAEObjective(likelihood, beta=1.0, convention="convex",
                             terms=[perceptual_term(squared_feature_term(), 1.0)], neural_fraction=0.25)
    terms = objective(x, output, mu, logvar)
    expected = 0.75 * likelihood.nll(x, output) + 0.25 * squared_feature_term()(x, output)
    torch.testing.assert_close(terms.distortion, expected.mean())


def test_ldm_convention_by_hand(batch):
    x, output, mu, logvar = batch
    likelihood = build_likelihood(LossConfig(likelihood="laplace"), (1, 4, 4))
    objective = VAEObjective(likelihood, beta=1e-6, convention="ldm",
                             terms=[perceptual_term(squared_feature_term(), 0.5)], logvar_init=0.3)
    terms = objective(x, output, mu, logvar)
    rec = (x - output).abs() + 0.5 * squared_feature_term()(x, output).view(-1, 1, 1, 1)
    nll = (rec / torch.exp(torch.tensor(0.3)) + 0.3).flatten(1).sum(1).mean()
    torch.testing.assert_close(terms.distortion, nll)
    torch.testing.assert_close(terms.loss, nll + 1e-6 * kl_per_unit(mu, logvar).sum(1).mean())


def _fit_ldm_logvar(objective, x, output, mu, logvar) -> None:
    """Minimise the objective over the learned ldm log-variance alone, on a fixed batch."""
    optimizer = torch.optim.LBFGS([objective.ldm_logvar], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = objective(x, output, mu, logvar).loss
        loss.backward()
        return loss

    optimizer.step(closure)


def test_ldm_learned_logvar_reaches_mean_reconstruction_error(batch):
    x, output, mu, logvar = batch
    likelihood = build_likelihood(LossConfig(likelihood="laplace"), (1, 4, 4))
    objective = VAEObjective(likelihood, beta=0.0, convention="ldm")
    _fit_ldm_logvar(objective, x, output, mu, logvar)
    mean_rec = (x - output).abs().mean()
    assert float(objective.ldm_logvar.detach().exp()) == pytest.approx(float(mean_rec), rel=1e-5)


def test_ldm_learned_logvar_optimum_includes_the_broadcast_perceptual_term(batch):
    x, output, mu, logvar = batch
    likelihood = build_likelihood(LossConfig(likelihood="laplace"), (1, 4, 4))
    objective = VAEObjective(likelihood, beta=1e-6, convention="ldm",
                             terms=[perceptual_term(squared_feature_term(), 2.0)])
    _fit_ldm_logvar(objective, x, output, mu, logvar)
    rec = (x - output).abs() + 2.0 * squared_feature_term()(x, output).view(-1, 1, 1, 1)
    assert float(objective.ldm_logvar.detach().exp()) == pytest.approx(float(rec.mean()), rel=1e-3)


def test_ldm_with_a_fixed_logvar_is_latent_diffusions_trained_objective(batch):
    """latent-diffusion's optimiser never gets s: with logvar_learned=False it is a buffer at logvar_init, the
    same objective value, no parameter to train, and the objective's origin is D s."""
    from vaelens.config import LossConfig as Config
    from vaelens.losses.objective import objective_constant

    x, output, mu, logvar = batch
    likelihood = build_likelihood(LossConfig(likelihood="laplace"), (1, 4, 4))
    fixed = VAEObjective(likelihood, beta=1e-6, convention="ldm", logvar_init=0.3, logvar_learned=False)
    learned = VAEObjective(likelihood, beta=1e-6, convention="ldm", logvar_init=0.3)
    torch.testing.assert_close(fixed(x, output, mu, logvar).loss, learned(x, output, mu, logvar).loss)
    assert fixed.generator_parameters() == [] and len(learned.generator_parameters()) == 1
    assert "ldm_logvar" in fixed.state_dict() and fixed.describe()["logvar"] == "fixed"
    config = Config(likelihood="laplace", convention="ldm", logvar_init=0.3, logvar_learned=False)
    assert objective_constant(config, (1, 4, 4)) == pytest.approx(16 * 0.3)
    config.logvar_learned = True
    assert objective_constant(config, (1, 4, 4)) is None


def test_perceptual_gradient_reaches_the_decoder():
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Unflatten(1, (1, 4, 4)))
    likelihood = build_likelihood(LossConfig(likelihood="gaussian"), (1, 4, 4))
    objective = VAEObjective(likelihood, beta=1.0, convention="convex",
                             terms=[perceptual_term(squared_feature_term(), 1.0)], neural_fraction=1.0)
    x, z = torch.rand(2, 1, 4, 4), torch.randn(2, 3)
    terms = objective(x, decoder(z), z, torch.zeros_like(z))
    terms.distortion.backward()
    assert decoder[0].weight.grad.abs().sum() > 0


def test_structural_term_is_one_minus_ssim():
    from vaelens.metrics.distortion import ssim

    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    output = (x + 0.1 * torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    likelihood = build_likelihood(LossConfig(likelihood="gaussian"), (1, 16, 16))
    objective = VAEObjective(likelihood, beta=1.0, terms=[structural_term("ssim", 3.0)])
    terms = objective(x, output, torch.zeros(2, 1), torch.zeros(2, 1))
    expected = likelihood.nll(x, output) + 3.0 * (1 - ssim(x, output))
    torch.testing.assert_close(terms.distortion, expected.mean())


def test_bad_loss_configurations():
    with pytest.raises(ValueError, match="unknown loss.convention 'mixed'"):
        build_objective(LossConfig(convention="mixed"), (1, 8, 8))
    with pytest.raises(ValueError, match="set loss.likelihood=laplace"):
        build_objective(LossConfig(convention="ldm", likelihood="bernoulli"), (1, 8, 8))
    with pytest.raises(ValueError, match="convex convention mixes"):
        build_objective(LossConfig(convention="convex"), (1, 8, 8))
    with pytest.raises(ValueError, match="unknown loss.perceptual 'vgg'"):
        build_objective(LossConfig(perceptual="vgg"), (1, 8, 8))
    with pytest.raises(ValueError, match="neural_fraction must lie in"):
        build_objective(LossConfig(convention="convex", perceptual="lpips-alex", neural_fraction=1.5,
                                   lpips_random_backbone=True), (3, 32, 32))


def test_lpips_term_with_random_backbone_is_labelled():
    objective = build_objective(LossConfig(perceptual="lpips-alex", lpips_random_backbone=True), (1, 32, 32))
    description = objective.describe()
    assert "RANDOM" in description["perceptual"] and description["backbone"] == "random (tests only)"
    x = torch.rand(2, 1, 32, 32)
    assert float(objective.perceptual(x, x).abs().max()) < 1e-6
    assert float(objective.perceptual(x, 1 - x).min()) > 0


def test_missing_lpips_backbone_names_the_file(tmp_path, monkeypatch):
    from vaelens.distances.lpips import MissingBackboneError

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MissingBackboneError, match="vgg16-397923af.pth"):
        build_objective(LossConfig(perceptual="lpips-vgg"), (3, 64, 64))
