"""The VAE objective: E_q[d_total(x, g(z))] + beta * KL(q(z|x) || N(0, I)), under a weighting convention.

Reductions (recorded in every run): per-image terms are summed over pixels and averaged over the
batch; the KL is summed over latent units (all C*h*w of a spatial latent), averaged over the batch
and multiplied by beta. One reparameterised sample per image. Conventions (PAPER.md section 1):

- additive: d_pix + w_p * d_perc + w_ssim * (1 - SSIM) + adversarial
- convex:   (1 - a) * d_pix + a * (d_perc + adversarial) + w_ssim * (1 - SSIM)
- ldm:      sum_pixels((|x - x̂| + w_p * d_perc) / exp(s) + s) + adversarial, s a learned scalar

d_perc and 1 - SSIM are per-image numbers, while d_pix sums over pixels: w_p of the order of the
pixel count gives the perceptual term the weight latent-diffusion's per-pixel broadcast gives it.
The adversarial term is lambda * (-E D(x̂)) with lambda the adaptive weight at the decoder's last
layer (or disc_weight when not adaptive), zero before disc_start.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

import torch
from torch import nn

from vaelens.config.sections import Convention
from vaelens.losses.families import loss_family
from vaelens.losses.pointwise import PointwiseLikelihood, build_likelihood

REDUCTION = "per-image terms summed over pixels, mean over batch; KL summed over latent units, times beta"
CONVENTIONS = typing.get_args(Convention)


@dataclass
class ObjectiveTerms:
    """What the objective computes for one batch (batch means in nats unless said otherwise)."""

    loss: torch.Tensor
    """What is minimised: distortion + beta * rate, plus the adversarial term when training."""
    distortion: torch.Tensor
    """The reconstruction part of the loss (adversarial term excluded), under the convention."""
    rate: torch.Tensor
    """KL(q(z|x) || N(0, I)) summed over latent units."""
    kl_per_unit: torch.Tensor
    """The KL of each latent unit, (d,)."""
    reconstruction: torch.Tensor
    """x̂, the likelihood's mean of the decoder output (B, C, H, W): the discriminator's input."""
    logged: dict[str, torch.Tensor] = field(default_factory=dict)
    """Further scalar terms for metrics.jsonl (pixel, perceptual, structural, ldm_logvar, adversarial_*)."""

    def scalars(self) -> dict[str, torch.Tensor]:
        """Every scalar term by name (loss, distortion, rate, then the logged ones), as metrics.jsonl records them."""
        return {"loss": self.loss, "distortion": self.distortion, "rate": self.rate, **self.logged}


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per image and latent unit, flattened to (B, d), in nats."""
    mu, logvar = mu.flatten(1).float(), logvar.flatten(1).float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def structural_distance(kind: str):
    """1 - SSIM (or 1 - MS-SSIM) per image, differentiable."""
    from vaelens.metrics.distortion import ms_ssim, ssim

    measure = {"ssim": ssim, "ms_ssim": ms_ssim}[kind]
    return lambda x, x_hat: 1.0 - measure(x, x_hat.clamp(0, 1))


class VAEObjective(nn.Module):
    def __init__(self, likelihood: PointwiseLikelihood, beta: float, convention: str = "additive",
                 perceptual=None, perceptual_weight: float = 1.0, neural_fraction: float = 0.5,
                 ssim_weight: float = 0.0, ssim_kind: str = "ssim", adversarial: nn.Module | None = None,
                 last_layer: nn.Module | None = None, logvar_init: float = 0.0):
        super().__init__()
        if beta < 0:
            raise ValueError(f"loss.beta must be non-negative, got {beta}")
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown loss.convention '{convention}'; available: {', '.join(CONVENTIONS)}")
        if convention == "convex" and not 0.0 <= neural_fraction <= 1.0:
            raise ValueError("loss.neural_fraction must lie in [0, 1] for the convex convention, "
                             f"got {neural_fraction}")
        if convention == "convex" and perceptual is None and adversarial is None:
            raise ValueError("the convex convention mixes pixel and neural terms; set loss.perceptual or "
                             "loss.disc_weight, or use convention=additive for a pointwise-only loss")
        if convention == "ldm" and likelihood.name != "laplace":
            raise ValueError("the ldm convention uses latent-diffusion's |x - x̂| pixel term: "
                             "set loss.likelihood=laplace")
        if ssim_kind not in ("ssim", "ms_ssim"):
            raise ValueError(f"unknown loss.ssim_kind '{ssim_kind}'; available: ssim, ms_ssim")
        if adversarial is not None and last_layer is None:
            raise ValueError("the adversarial term needs the decoder's last layer for its adaptive weight")
        self.likelihood = likelihood
        self.beta = float(beta)
        self.convention = convention
        self.perceptual = perceptual
        self.perceptual_weight = float(perceptual_weight)
        self.neural_fraction = float(neural_fraction)
        self.ssim_weight = float(ssim_weight)
        self.ssim_kind = ssim_kind
        self.structural = structural_distance(ssim_kind) if ssim_weight > 0 else None
        self.adversarial = adversarial
        # A plain reference, not a submodule: the decoder's weights belong to the model's checkpoint.
        self._last_layer = [last_layer]
        self.ldm_logvar = nn.Parameter(torch.tensor(float(logvar_init))) if convention == "ldm" else None
        # Set by the trainer from train.bf16 on CUDA: the perceptual network (most of a perceptual step's
        # FLOPs) then runs under bf16 autocast; its distance and every pixel term stay float32.
        self.perceptual_bf16 = False

    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters the autoencoder's optimizer trains (a learned sigma or s; never the discriminator's)."""
        excluded = {id(p) for p in self.adversarial.parameters()} if self.adversarial is not None else set()
        return [p for p in self.parameters() if id(p) not in excluded]

    def _reconstruction(self, x, output, x_hat, terms) -> torch.Tensor:
        """Per-image reconstruction term (B,) before the adversarial part; logs each piece in `terms`."""
        perceptual = None
        if self.perceptual is not None:
            # No autocast cache: cached weight casts would be stale in a replayed CUDA graph.
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.perceptual_bf16,
                                cache_enabled=False):
                perceptual = self.perceptual(x, x_hat).float()
        if perceptual is not None:
            terms["perceptual"] = perceptual.mean()
        if self.convention == "ldm":
            per_pixel = (x - output.float()).abs()
            terms["pixel"] = per_pixel.flatten(1).sum(1).mean()
            if perceptual is not None:
                per_pixel = per_pixel + self.perceptual_weight * perceptual.view(-1, 1, 1, 1)
            terms["ldm_logvar"] = self.ldm_logvar.detach()
            reconstruction = (per_pixel / torch.exp(self.ldm_logvar) + self.ldm_logvar).flatten(1).sum(1)
        else:
            pixel = self.likelihood.nll(x, output.float())
            terms["pixel"] = pixel.mean()
            if self.convention == "additive":
                reconstruction = pixel + (self.perceptual_weight * perceptual if perceptual is not None else 0.0)
            else:
                neural = perceptual if perceptual is not None else torch.zeros_like(pixel)
                reconstruction = (1.0 - self.neural_fraction) * pixel + self.neural_fraction * neural
        if self.structural is not None:
            structural = self.structural(x, x_hat.float())
            terms["structural"] = structural.mean()
            reconstruction = reconstruction + self.ssim_weight * structural
        return reconstruction

    def per_image_distortion(self, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The reconstruction part of the loss per image, (B,), as a differentiable function of the raw
        decoder output (logits for Bernoulli): what the adversarial term and beta * KL are added to. Its
        Hessian in `output` is the run's own loss metric (the mechanistic probe uses it)."""
        return self._reconstruction(x, output, self.likelihood.mean(output), {})

    @property
    def family(self) -> str:
        """pointwise, +perceptual, +adversarial, +both, +structural (vaelens.losses.families)."""
        return loss_family({"perceptual": self.perceptual is not None, "ssim_weight": self.ssim_weight,
                            "disc_weight": 1.0 if self.adversarial is not None else 0.0})

    def forward(self, x, output, mu, logvar, step: int | None = None,
                beta: torch.Tensor | float | None = None) -> ObjectiveTerms:
        """The terms for one batch. `step` None means evaluation: the adversarial term is left out.
        `beta` overrides loss.beta (the ensemble passes each member's beta as a mapped tensor)."""
        x_hat = self.likelihood.mean(output)
        logged: dict[str, torch.Tensor] = {}
        distortion = self._reconstruction(x, output, x_hat, logged).mean()
        kl = kl_per_unit(mu, logvar)
        rate = kl.sum(1).mean()
        loss = distortion + (self.beta if beta is None else beta) * rate
        if self.adversarial is not None and step is not None:
            weighted, info = self.adversarial.generator_term(x_hat, distortion, self._last_layer[0].weight, step)
            scale = self.neural_fraction if self.convention == "convex" else 1.0
            loss = loss + scale * weighted
            logged.update({f"adversarial_{key}": value for key, value in info.items()})
        return ObjectiveTerms(loss, distortion, rate, kl.mean(0), x_hat, logged)

    def discriminator_step(self, x: torch.Tensor, x_hat: torch.Tensor, step: int) -> dict:
        """One discriminator update on real x and detached reconstructions (no-op without a discriminator)."""
        if self.adversarial is None:
            return {}
        return self.adversarial.discriminator_step(x, x_hat.detach(), step)

    def describe(self) -> dict:
        """Everything a reader needs to interpret the numbers: terms, weights, convention, units."""
        description = {**self.likelihood.describe(), "beta": self.beta, "convention": self.convention,
                       "family": self.family, "reduction": REDUCTION, "units": "nats"}
        if self.convention == "ldm":
            description["pixel_term"] = "|x - x_hat| (latent-diffusion)"
        if self.perceptual is not None:
            description.update(self.perceptual.describe(), perceptual_weight=self.perceptual_weight)
        if self.convention == "convex":
            description["neural_fraction"] = self.neural_fraction
        if self.structural is not None:
            description.update(structural=f"1 - {self.ssim_kind}", ssim_weight=self.ssim_weight)
        if self.adversarial is not None:
            description["adversarial"] = self.adversarial.describe()
        return description

    @property
    def is_pointwise(self) -> bool:
        return self.perceptual is None and self.adversarial is None and self.structural is None


def build_objective(config, image_shape, model: nn.Module | None = None, device="cpu") -> VAEObjective:
    """The objective a LossConfig describes, for images of shape (C, H, W) and the given model."""
    perceptual = adversarial = None
    if config.perceptual:
        from vaelens.losses.perceptual import build_perceptual

        perceptual = build_perceptual(config.perceptual, config.lpips_random_backbone, image_shape, device)
    if config.disc_weight > 0:
        from vaelens.losses.adversarial import build_adversarial

        adversarial = build_adversarial(config, image_shape)
    last_layer = model.decoder_last_layer if model is not None else None
    return VAEObjective(
        build_likelihood(config, image_shape), config.beta, config.convention, perceptual,
        config.perceptual_weight, config.neural_fraction, config.ssim_weight, config.ssim_kind, adversarial,
        last_layer, config.logvar_init,
    ).to(device)
