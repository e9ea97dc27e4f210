"""The adversarial reconstruction term of taming-transformers / latent-diffusion (docs/science.md, "Objectives and
weighting conventions").

A PatchGAN discriminator (pix2pix NLayerDiscriminator) scores overlapping patches of real images x
and reconstructions x̂. The autoencoder adds the generator term lambda * (-E D(x̂)), where

    lambda = clamp(||grad_W nll|| / (||grad_W g|| + 1e-4), 0, 1e4) * disc_weight    (adaptive)
    lambda = disc_weight                                                            (not adaptive)

with W the weight of the decoder's last layer. Before `disc_start` the term is zero and the
discriminator is not trained. The discriminator has its own Adam (betas 0.5, 0.9) and trains on
hinge 0.5 [E relu(1 - D(x)) + E relu(1 + D(x̂))] or the non-saturating
0.5 [E softplus(-D(x)) + E softplus(D(x̂))], plus an optional R1 penalty (gamma / 2) E ||grad_x D(x)||^2.
Images enter the discriminator as 2x - 1, the [-1, 1] range latent-diffusion trains on.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DISC_LOSSES = ("hinge", "non_saturating")
DISC_NORMS = ("batch", "none")
ADAM_BETAS = (0.5, 0.9)
MAX_ADAPTIVE_WEIGHT = 1e4


class NLayerDiscriminator(nn.Module):
    """pix2pix PatchGAN: conv k4 s2 + LeakyReLU(0.2); n_layers - 1 stride-2 convs with ndf * min(2^n, 8)
    channels, norm and LeakyReLU; one stride-1 conv likewise; a stride-1 conv to a 1-channel logit map.

    With BatchNorm the convolutions before a norm carry no bias (the norm's shift replaces it), as in
    pix2pix. Weights are initialised as taming-transformers does: conv weights N(0, 0.02), BatchNorm
    scales N(1, 0.02) and shifts 0.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        use_bias = norm == "none"

        def normalisation(channels: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(channels)] if norm == "batch" else []

        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        multiplier = 1
        for n in range(1, n_layers):
            previous, multiplier = multiplier, min(2**n, 8)
            layers += [nn.Conv2d(ndf * previous, ndf * multiplier, 4, 2, 1, bias=use_bias),
                       *normalisation(ndf * multiplier), nn.LeakyReLU(0.2)]
        previous, multiplier = multiplier, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * previous, ndf * multiplier, 4, 1, 1, bias=use_bias),
                   *normalisation(ndf * multiplier), nn.LeakyReLU(0.2),
                   nn.Conv2d(ndf * multiplier, 1, 4, 1, 1)]
        self.main = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Patch logits (B, 1, h, w) for images (B, C, H, W)."""
        return self.main(images)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def patch_map_side(image_side: int, n_layers: int) -> int:
    """Side of the logit map for a square input: n_layers halvings (k4 s2 p1), then two k4 s1 p1 convs (-1 each)."""
    side = image_side
    for _ in range(n_layers):
        side = (side + 2 - 4) // 2 + 1
    return side - 2


def discriminator_loss(kind: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Hinge: 0.5 [E relu(1 - D(x)) + E relu(1 + D(x̂))]; non-saturating: 0.5 [E softplus(-D(x)) + E softplus(D(x̂))]."""
    if kind == "hinge":
        return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())
    if kind == "non_saturating":
        return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())
    raise ValueError(f"unknown loss.disc_loss '{kind}'; available: {', '.join(DISC_LOSSES)}")


def adaptive_weight(nll: torch.Tensor, generator_loss: torch.Tensor, last_layer_weight: torch.Tensor) -> torch.Tensor:
    """clamp(||grad_W nll|| / (||grad_W g|| + 1e-4), 0, 1e4), detached; the graph is kept for the backward pass."""
    nll_grad, = torch.autograd.grad(nll, last_layer_weight, retain_graph=True)
    generator_grad, = torch.autograd.grad(generator_loss, last_layer_weight, retain_graph=True)
    ratio = nll_grad.norm() / (generator_grad.norm() + 1e-4)
    return ratio.clamp(0.0, MAX_ADAPTIVE_WEIGHT).detach()


class AdversarialTerm(nn.Module):
    """The discriminator, its optimizer and the schedule/weighting of the generator term."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 loss: str = "hinge", disc_weight: float = 0.5, adaptive: bool = True, disc_start: int = 0,
                 lr: float = 1e-4, r1_gamma: float = 0.0):
        super().__init__()
        self.discriminator = NLayerDiscriminator(in_channels, ndf, n_layers, norm)
        self.ndf, self.n_layers, self.norm, self.loss = ndf, n_layers, norm, loss
        self.disc_weight, self.adaptive, self.disc_start = float(disc_weight), bool(adaptive), int(disc_start)
        self.lr, self.r1_gamma = float(lr), float(r1_gamma)
        # Adam keeps references to the Parameter objects, which Module.to() moves in place.
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=ADAM_BETAS)

    def active(self, step: int) -> bool:
        return step >= self.disc_start

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator(2.0 * images.float() - 1.0)

    def generator_term(self, x_hat: torch.Tensor, nll: torch.Tensor, last_layer_weight: torch.Tensor,
                       step: int) -> tuple[torch.Tensor, dict]:
        """(lambda * (-E D(x̂)), info) for the autoencoder's loss; zero before disc_start."""
        if not self.active(step):
            zero = torch.zeros((), device=x_hat.device)
            return zero, {"weight": zero, "term": zero}
        # The discriminator's parameters need no gradient from the autoencoder's loss: its own
        # optimizer trains it, so building that part of the graph would be wasted work.
        self.discriminator.requires_grad_(False)
        try:
            generator_loss = -self.logits(x_hat).mean()
        finally:
            self.discriminator.requires_grad_(True)
        if self.adaptive and torch.is_grad_enabled():
            weight = adaptive_weight(nll, generator_loss, last_layer_weight) * self.disc_weight
        else:
            weight = torch.tensor(self.disc_weight, device=x_hat.device)
        weighted = weight * generator_loss
        # Detached tensors, not floats: reading them back here would stall a GPU once per step.
        return weighted, {"generator_loss": generator_loss.detach(), "weight": weight.detach(),
                          "term": weighted.detach()}

    def discriminator_step(self, x: torch.Tensor, x_hat: torch.Tensor, step: int) -> dict:
        """One Adam step of the discriminator on real x and detached x̂ (nothing before disc_start)."""
        if not self.active(step):
            return {}
        self.optimizer.zero_grad(set_to_none=True)
        real = x.detach().float().requires_grad_(self.r1_gamma > 0)
        logits_real = self.logits(real)
        logits_fake = self.logits(x_hat.detach())
        loss = discriminator_loss(self.loss, logits_real, logits_fake)
        info = {"discriminator_loss": loss.detach(),
                "discriminator_logits_real": logits_real.detach().mean(),
                "discriminator_logits_fake": logits_fake.detach().mean()}
        if self.r1_gamma > 0:
            penalty = r1_penalty(logits_real, real)
            loss = loss + 0.5 * self.r1_gamma * penalty
            info["discriminator_r1"] = penalty.detach()
        loss.backward()
        self.optimizer.step()
        return info

    def describe(self) -> dict:
        return {"discriminator": "PatchGAN NLayerDiscriminator (pix2pix)", "ndf": self.ndf,
                "n_layers": self.n_layers, "norm": self.norm, "disc_loss": self.loss,
                "generator_term": "-E D(x_hat)", "disc_weight": self.disc_weight,
                "adaptive_weight": "clamp(||grad nll|| / (||grad g|| + 1e-4), 0, 1e4) at the decoder's last layer"
                if self.adaptive else "off (fixed disc_weight)",
                "disc_start": self.disc_start, "disc_lr": self.lr, "disc_adam_betas": list(ADAM_BETAS),
                "r1_gamma": self.r1_gamma,
                "discriminator_parameters": sum(p.numel() for p in self.discriminator.parameters())}


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E_x ||grad_x sum D(x)||^2 over the batch (Mescheder et al. 2018), differentiable in D's weights."""
    gradient, = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return gradient.pow(2).flatten(1).sum(1).mean()


def build_adversarial(config, image_shape) -> AdversarialTerm:
    """The adversarial term a LossConfig describes, for images of shape (C, H, W)."""
    if config.disc_loss not in DISC_LOSSES:
        raise ValueError(f"unknown loss.disc_loss '{config.disc_loss}'; available: {', '.join(DISC_LOSSES)}")
    if config.disc_norm not in DISC_NORMS:
        raise ValueError(f"unknown loss.disc_norm '{config.disc_norm}'; available: {', '.join(DISC_NORMS)}")
    for key in ("disc_channels", "disc_layers"):
        if getattr(config, key) < 1:
            raise ValueError(f"loss.{key} must be at least 1, got {getattr(config, key)}")
    if config.disc_lr <= 0:
        raise ValueError(f"loss.disc_lr must be positive, got {config.disc_lr}")
    if config.disc_r1 < 0 or config.disc_start < 0:
        raise ValueError(f"loss.disc_r1 and loss.disc_start must be non-negative, got {config.disc_r1} "
                         f"and {config.disc_start}")
    side = min(image_shape[1:])
    if patch_map_side(side, config.disc_layers) < 1:
        fitting = max(n for n in range(1, config.disc_layers + 1) if patch_map_side(side, n) >= 1) \
            if patch_map_side(side, 1) >= 1 else None
        advice = f"set loss.disc_layers={fitting} or fewer" if fitting else "use larger images"
        raise ValueError(f"a PatchGAN with loss.disc_layers={config.disc_layers} needs images of at least "
                         f"{3 * 2 ** config.disc_layers} pixels a side, the data has {side}; {advice}")
    return AdversarialTerm(image_shape[0], config.disc_channels, config.disc_layers, config.disc_norm,
                           config.disc_loss, config.disc_weight, config.adaptive_disc_weight, config.disc_start,
                           config.disc_lr, config.disc_r1)
