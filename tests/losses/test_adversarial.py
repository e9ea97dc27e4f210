"""The adversarial term: PatchGAN architecture, losses by hand, adaptive weight, schedule, R1, errors."""

import math
from types import SimpleNamespace

import pytest
import torch

from vaelens.config import LossConfig
from vaelens.losses import build_objective
from vaelens.losses.adversarial import (
    AdversarialTerm,
    NLayerDiscriminator,
    build_adversarial,
    discriminator_loss,
    patch_map_side,
    r1_penalty,
)


def test_patchgan_layout_follows_pix2pix():
    discriminator = NLayerDiscriminator(3, ndf=8, n_layers=3, norm="batch")
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.kernel_size[0]) for c in convs] == [
        (3, 8, 2, 4), (8, 16, 2, 4), (16, 32, 2, 4), (32, 64, 1, 4), (64, 1, 1, 4)]
    # Convolutions followed by BatchNorm carry no bias; the first and the logit layer do.
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules()) == 3
    assert discriminator(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6) and patch_map_side(64, 3) == 6
    unnormalised = NLayerDiscriminator(1, ndf=8, n_layers=2, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in unnormalised.modules())
    assert all(c.bias is not None for c in unnormalised.modules() if isinstance(c, torch.nn.Conv2d))


def test_patchgan_channels_are_capped_at_eight_times_ndf():
    convs = [m for m in NLayerDiscriminator(1, ndf=4, n_layers=5).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 32, 32, 1]


def test_initialisation_is_normal_with_std_002():
    torch.manual_seed(0)
    discriminator = NLayerDiscriminator(3, ndf=64, n_layers=3)
    big = discriminator.main[8].weight.detach()  # the 256 -> 512 stride-1 conv, 2M weights
    assert float(big.mean()) == pytest.approx(0.0, abs=1e-3) and float(big.std()) == pytest.approx(0.02, rel=0.02)
    norm = discriminator.main[3]
    assert float(norm.bias.detach().abs().max()) == 0.0
    assert float((norm.weight.detach() - 1).std()) == pytest.approx(0.02, rel=0.3)


def test_discriminator_losses_by_hand():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 1.5])
    # hinge: relu(1 - real) = [0.5, 0], relu(1 + fake) = [0.5, 2.5]
    assert float(discriminator_loss("hinge", real, fake)) == pytest.approx(0.5 * (0.25 + 1.5))

    def softplus(v):
        return math.log1p(math.exp(v))

    expected = 0.5 * ((softplus(-0.5) + softplus(-2.0)) / 2 + (softplus(-0.5) + softplus(1.5)) / 2)
    assert float(discriminator_loss("non_saturating", real, fake)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="unknown loss.disc_loss 'wgan'"):
        discriminator_loss("wgan", real, fake)


def _decoder_and_term(**settings):
    torch.manual_seed(3)
    decoder = torch.nn.Sequential(torch.nn.Linear(4, 16 * 16), torch.nn.Unflatten(1, (1, 16, 16)), torch.nn.Sigmoid())
    term = AdversarialTerm(1, ndf=4, n_layers=2, **settings)
    return decoder, term


def test_fixed_weight_generator_term_by_hand():
    decoder, term = _decoder_and_term(disc_weight=0.3, adaptive=False)
    x_hat = decoder(torch.randn(5, 4))
    weighted, info = term.generator_term(x_hat, x_hat.sum(), decoder[0].weight, step=0)
    with torch.no_grad():
        expected = 0.3 * -term.discriminator(2 * x_hat - 1).mean()
    torch.testing.assert_close(weighted.detach(), expected)
    assert info["weight"] == pytest.approx(0.3) and info["term"] == pytest.approx(float(expected))


def test_adaptive_weight_matches_manual_autograd():
    decoder, term = _decoder_and_term(disc_weight=0.5, adaptive=True)
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    x_hat = decoder(torch.randn(5, 4))
    nll = (x - x_hat).abs().flatten(1).sum(1).mean()
    weight = decoder[0].weight
    weighted, info = term.generator_term(x_hat, nll, weight, step=0)

    generator_loss = -term.discriminator(2 * x_hat - 1).mean()
    nll_grad = torch.autograd.grad(nll, weight, retain_graph=True)[0]
    generator_grad = torch.autograd.grad(generator_loss, weight, retain_graph=True)[0]
    manual = torch.clamp(nll_grad.norm() / (generator_grad.norm() + 1e-4), 0.0, 1e4) * 0.5
    assert info["weight"] == pytest.approx(float(manual), rel=1e-5)
    torch.testing.assert_close(weighted.detach(), manual * generator_loss.detach())
    # The weight is a constant of the backward pass: the gradient is weight * grad(g), and nothing
    # reaches the discriminator from the autoencoder's loss.
    weighted.backward()
    torch.testing.assert_close(weight.grad, manual * generator_grad, rtol=1e-4, atol=1e-8)
    assert all(p.grad is None for p in term.discriminator.parameters())


def test_adaptive_weight_is_clamped():
    decoder, term = _decoder_and_term(disc_weight=2.0)
    x_hat = decoder(torch.randn(5, 4))
    huge_nll = 1e12 * x_hat.sum()
    _, info = term.generator_term(x_hat, huge_nll, decoder[0].weight, step=0)
    assert info["weight"] == pytest.approx(2.0 * 1e4)


def test_term_is_zero_and_discriminator_frozen_before_disc_start():
    decoder, term = _decoder_and_term(disc_start=10)
    x = torch.rand(4, 1, 16, 16)
    x_hat = decoder(torch.randn(4, 4))
    before = {k: v.clone() for k, v in term.state_dict().items()}
    for step in (0, 9):
        weighted, info = term.generator_term(x_hat, x_hat.sum(), decoder[0].weight, step)
        assert float(weighted) == 0.0 and info["weight"] == 0.0
        assert term.discriminator_step(x, x_hat.detach(), step) == {}
    assert all(torch.equal(before[k], v) for k, v in term.state_dict().items())
    weighted, _ = term.generator_term(x_hat, x_hat.sum(), decoder[0].weight, 10)
    assert float(weighted.detach()) != 0.0
    info = term.discriminator_step(x, x_hat.detach(), 10)
    assert set(info) == {"discriminator_loss", "discriminator_logits_real", "discriminator_logits_fake"}
    assert any(not torch.equal(before[k], v) for k, v in term.state_dict().items())


def test_discriminator_learns_to_separate_real_from_fake():
    torch.manual_seed(0)
    term = AdversarialTerm(1, ndf=4, n_layers=2, lr=5e-3)
    generator = torch.Generator().manual_seed(5)
    real = (torch.rand(16, 1, 16, 16, generator=generator) > 0.5).float()
    fake = torch.full((16, 1, 16, 16), 0.5)
    losses = [term.discriminator_step(real, fake, step)["discriminator_loss"] for step in range(12)]
    assert losses[-1] < 0.5 * losses[0]
    assert term.optimizer.param_groups[0]["betas"] == (0.5, 0.9) and term.optimizer.param_groups[0]["lr"] == 5e-3


def test_r1_penalty_by_hand_and_in_the_step():
    # D(x) = <w, x> per image: grad_x sum D = w for every image, so the penalty is ||w||^2.
    w = torch.randn(1, 1, 4, 4)
    real = torch.rand(3, 1, 4, 4).requires_grad_(True)
    assert float(r1_penalty((real * w).flatten(1).sum(1), real)) == pytest.approx(float(w.pow(2).sum()), rel=1e-5)
    term = AdversarialTerm(1, ndf=4, n_layers=2, r1_gamma=10.0)
    info = term.discriminator_step(torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16), 0)
    assert info["discriminator_r1"] > 0


def test_objective_adds_the_term_and_describes_it():
    config = LossConfig(likelihood="gaussian", disc_weight=0.5, disc_channels=4, disc_layers=2,
                        adaptive_disc_weight=False, convention="convex", neural_fraction=0.25)
    decoder, _ = _decoder_and_term()
    objective = build_objective(config, (1, 16, 16), SimpleNamespace(decoder_last_layer=decoder[0]))
    x, z = torch.rand(2, 1, 16, 16), torch.randn(2, 4)
    output = decoder(z)
    terms = objective(x, output, z, torch.zeros_like(z), step=0)
    generator_loss = -objective.adversarial.discriminator(2 * output - 1).mean()
    expected = terms.distortion + 1.0 * terms.rate + 0.25 * 0.5 * generator_loss
    torch.testing.assert_close(terms.loss, expected)
    assert float(terms.logged["adversarial_weight"]) == 0.5
    description = objective.describe()["adversarial"]
    assert description["disc_loss"] == "hinge" and description["adaptive_weight"].startswith("off")
    assert not set(map(id, objective.adversarial.parameters())) & set(map(id, objective.generator_parameters()))
    # Evaluation (step None) leaves the adversarial term out.
    assert "adversarial_weight" not in objective(x, output, z, torch.zeros_like(z)).logged


@pytest.mark.parametrize("settings, message", [
    ({"disc_loss": "wgan"}, "unknown loss.disc_loss 'wgan'; available: hinge, non_saturating"),
    ({"disc_norm": "layer"}, "unknown loss.disc_norm 'layer'; available: batch, none"),
    ({"disc_layers": 0}, "loss.disc_layers must be at least 1"),
    ({"disc_lr": 0.0}, "loss.disc_lr must be positive"),
    ({"disc_start": -1}, "must be non-negative"),
    ({"disc_layers": 4}, "needs images of at least 48 pixels a side, the data has 16; set loss.disc_layers=2"),
])
def test_bad_adversarial_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        build_adversarial(LossConfig(disc_weight=0.5, **settings), (1, 16, 16))
