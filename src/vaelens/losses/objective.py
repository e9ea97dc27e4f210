"""The VAE objective: E_q[d_total(x, g(z))] + beta * KL(q(z|x) || N(0, I)), under a weighting convention.

Reductions (recorded in every run): per-image terms are summed over pixels and averaged over the
batch; the KL is summed over latent units (all C*h*w of a spatial latent), averaged over the batch
and multiplied by beta. One reparameterised sample per image. Conventions (docs/science.md,
"Objectives and weighting conventions"):

- additive: d_pix + w_p * d_perc + w_ssim * (1 - SSIM) + adversarial
- convex:   (1 - a) * d_pix + a * (w_p * d_perc + adversarial) + w_ssim * (1 - SSIM)
- ldm:      sum_pixels((|x - x̂| + w_p * d_perc) / exp(s) + s) + adversarial, s a learned scalar

The reconstruction terms beside the pixel likelihood are a list (terms.py) and the convention a rule
(conventions.py). d_perc and 1 - SSIM are per-image numbers while d_pix sums over pixels, so their
scales differ by orders of magnitude: w_p = "auto" calibrates the weight so w_p * d_perc has the pixel
term's average curvature (calibration.py), and the convex mix then keeps the total curvature.
The adversarial term is lambda * (-E D(x̂)) with lambda the adaptive weight at the decoder's last
layer (or disc_weight when not adaptive), zero before disc_start.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field

import torch
from torch import nn

from vaelens.config.sections import Convention
from vaelens.losses import conventions
from vaelens.losses.adversarial import build_adversarial
from vaelens.losses.calibration import RULE, calibrate_weight
from vaelens.losses.families import family_name
from vaelens.losses.pointwise import PointwiseLikelihood, build_likelihood
from vaelens.losses.terms import WeightedTerm, active_terms, build_terms
from vaelens.posterior import DiagonalGaussian

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
    return DiagonalGaussian(mu.flatten(1).float(), logvar.flatten(1).float()).kl_to_standard_normal()


class VAEObjective(nn.Module):
    def __init__(self, likelihood: PointwiseLikelihood, beta: float, convention: str = "additive",
                 terms: list[WeightedTerm] | None = None, neural_fraction: float = 0.5,
                 adversarial: nn.Module | None = None, last_layer: nn.Module | None = None, logvar_init: float = 0.0,
                 logvar_learned: bool = True):
        """`terms`: the weighted reconstruction terms beside the pixel likelihood (losses/terms.py builds them from
        a config); `adversarial`: the discriminator term, whose adaptive weight needs the decoder's `last_layer`."""
        super().__init__()
        terms = list(terms or [])
        _check_objective(likelihood, beta, convention, neural_fraction, terms, adversarial, last_layer)
        self.likelihood = likelihood
        self.beta = float(beta)
        self.convention = convention
        self.neural_fraction = float(neural_fraction)
        self.terms = terms
        for term in terms:
            if term.calibrated:
                if convention == "ldm":
                    raise ValueError("the ldm convention broadcasts w_p * LPIPS to every pixel under its learned "
                                     "s, with latent-diffusion's own weight: give loss.perceptual_weight a number")
                # A buffer: the measured weight is checkpointed and restored with the objective.
                self.register_buffer(f"calibrated_{term.name}_weight", torch.tensor(float("nan")))
        self.calibrations: dict = {}
        self.adversarial = adversarial
        # A plain reference, not a submodule: the decoder's weights belong to the model's checkpoint.
        self._last_layer = [last_layer]
        if convention == "ldm" and not logvar_learned:
            # A buffer, not a frozen parameter: no optimiser (the ensemble's stacked Adam included) can reach it,
            # and checkpoints still record the value the run used.
            self.register_buffer("ldm_logvar", torch.tensor(float(logvar_init)))
        else:
            self.ldm_logvar = nn.Parameter(torch.tensor(float(logvar_init))) if convention == "ldm" else None
        # Set by the trainer from train.bf16 on CUDA: the perceptual network (most of a perceptual step's
        # FLOPs) then runs under bf16 autocast; its distance and every pixel term stay float32.
        self.perceptual_bf16 = False

    def term(self, name: str) -> WeightedTerm | None:
        return next((term for term in self.terms if term.name == name), None)

    @property
    def perceptual(self):
        """The perceptual distance (its `name` says which network), or None."""
        term = self.term("perceptual")
        return term.source if term is not None else None

    def weight_of(self, term: WeightedTerm):
        """The term's weight: its number, or the calibrated buffer (NaN until `calibrate` ran)."""
        return getattr(self, f"calibrated_{term.name}_weight") if term.calibrated else term.weight

    @property
    def perceptual_weight(self) -> float | None:
        term = self.term("perceptual")
        return float(self.weight_of(term)) if term is not None else None

    def needs_calibration(self) -> bool:
        return any(term.calibrated for term in self.terms)

    def calibrate(self, images: torch.Tensor) -> dict:
        """Measure every "auto" weight on `images` (training images: a seeded batch) and set it; returns
        {term name: Calibration}."""
        point, where = self.likelihood.calibration_point(images)
        for term in self.terms:
            if term.calibrated:
                result = calibrate_weight(self.likelihood.image_nll, term.distance, images, point, where)
                buffer = getattr(self, f"calibrated_{term.name}_weight").fill_(result.weight)
                # Record the number training multiplies by: the buffer's float32 rounding of the measurement.
                self.calibrations[term.name] = dataclasses.replace(result, weight=float(buffer))
        return self.calibrations

    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters the autoencoder's optimizer trains (a learned sigma or s; never the discriminator's)."""
        excluded = {id(p) for p in self.adversarial.parameters()} if self.adversarial is not None else set()
        return [p for p in self.parameters() if id(p) not in excluded]

    def _term_value(self, term: WeightedTerm, x, x_hat) -> torch.Tensor:
        # No autocast cache: cached weight casts would be stale in a replayed CUDA graph.
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.perceptual_bf16 and term.autocast,
                            cache_enabled=False):
            return term.distance(x, x_hat.float() if not term.autocast else x_hat).float()

    def _reconstruction(self, x, output, x_hat, logged) -> torch.Tensor:
        """Per-image reconstruction term (B,) before the adversarial part; logs each piece in `logged`."""
        weighted = []
        for term in self.terms:
            value = self._term_value(term, x, x_hat)
            logged[term.name] = value.mean()
            weighted.append((self.weight_of(term), value, term.mixed))
        if self.convention == "ldm":
            pixel_map = (x - output.float()).abs()
            logged["pixel"] = pixel_map.flatten(1).sum(1).mean()
            logged["ldm_logvar"] = self.ldm_logvar.detach()
            return conventions.ldm(pixel_map, weighted, self.ldm_logvar)
        pixel = self.likelihood.nll(x, output.float())
        logged["pixel"] = pixel.mean()
        if self.convention == "additive":
            return conventions.additive(pixel, weighted)
        return conventions.convex(pixel, weighted, self.neural_fraction)

    def per_image_distortion(self, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The reconstruction part of the loss per image, (B,), as a differentiable function of the raw
        decoder output (logits for Bernoulli): what the adversarial term and beta * KL are added to. Its
        Hessian in `output` is the run's own loss metric (the mechanistic probe uses it)."""
        return self._reconstruction(x, output, self.likelihood.mean(output), {})

    @property
    def family(self) -> str:
        """pointwise, +perceptual, +adversarial, +both, +structural (vaelens.losses.families)."""
        return family_name([term.family for term in self.terms] + (["adversarial"] if self.adversarial else []))

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
            description["logvar"] = "learned" if isinstance(self.ldm_logvar, nn.Parameter) else "fixed"
        for term in self.terms:
            description.update(term.description)
            key = term.weight_key or f"{term.name}_weight"
            description[key] = float(self.weight_of(term))
            if term.calibrated:
                description[f"{key}_rule"] = "auto: " + RULE
        if self.convention == "convex":
            description["neural_fraction"] = self.neural_fraction
        if self.adversarial is not None:
            description["adversarial"] = self.adversarial.describe()
        return description

def objective_constant(config, image_shape) -> float | None:
    """The training objective's parameter-free constant per image, in nats, for a LossConfig on images of
    `image_shape`: the likelihood's normalising constant as the convention weights it (additive: 1, convex:
    1 - a; ldm with a fixed s: D s); None where a learned scale (gaussian_learned, ldm's learned s) leaves the
    objective without a fixed origin.
    beta KL and the neural terms are >= 0 with 0 attainable in principle, so the objective less this constant
    is a non-negative quantity (but for a hinge adversarial term's -D(x̂)), the one a relative change is read on."""
    if config.convention == "ldm":
        return None if config.logvar_learned else math.prod(image_shape) * config.logvar_init
    constant = build_likelihood(config, image_shape).constant(math.prod(image_shape))
    if constant is None:
        return None
    return (1.0 - config.neural_fraction) * constant if config.convention == "convex" else constant


def frozen_scale_constant(objective: VAEObjective, image_shape) -> float | None:
    """objective_constant for an objective with a learned scale, that scale frozen at its current value: the
    learned-sigma Gaussian's sum of log sigma + log(2 pi) / 2 (times 1 - a under the convex mix), ldm's D s.
    With the scale frozen the objective is a fixed-scale one, whose origin this is. None when it has no learned
    scale (objective_constant gives its fixed origin)."""
    if objective.convention == "ldm":
        if not isinstance(objective.ldm_logvar, nn.Parameter):
            return None
        return math.prod(image_shape) * float(objective.ldm_logvar.detach())
    at_current_scale = getattr(objective.likelihood, "constant_at_current_scale", None)
    if at_current_scale is None:
        return None
    constant = at_current_scale(image_shape)
    return (1.0 - objective.neural_fraction) * constant if objective.convention == "convex" else constant


def build_objective(config, image_shape, model: nn.Module | None = None, device="cpu") -> VAEObjective:
    """The objective a LossConfig describes, for images of shape (C, H, W) and the given model."""
    adversarial = build_adversarial(config, image_shape) if "adversarial" in active_terms(config) else None
    last_layer = model.decoder_last_layer if model is not None else None
    return VAEObjective(build_likelihood(config, image_shape), config.beta, config.convention,
                        terms=build_terms(config, image_shape, device), neural_fraction=config.neural_fraction,
                        adversarial=adversarial, last_layer=last_layer, logvar_init=config.logvar_init,
                        logvar_learned=config.logvar_learned).to(device)


def _check_objective(likelihood, beta, convention, neural_fraction, terms, adversarial, last_layer) -> None:
    if beta < 0:
        raise ValueError(f"loss.beta must be non-negative, got {beta}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown loss.convention '{convention}'; available: {', '.join(CONVENTIONS)}")
    if convention == "convex" and not 0.0 <= neural_fraction <= 1.0:
        raise ValueError(f"loss.neural_fraction must lie in [0, 1] for the convex convention, got {neural_fraction}")
    if convention == "convex" and not any(term.mixed for term in terms) and adversarial is None:
        raise ValueError("the convex convention mixes pixel and neural terms; set loss.perceptual or "
                         "loss.disc_weight, or use convention=additive for a pointwise-only loss")
    if convention == "ldm" and likelihood.name != "laplace":
        raise ValueError("the ldm convention uses latent-diffusion's |x - x̂| pixel term: set loss.likelihood=laplace")
    if adversarial is not None and last_layer is None:
        raise ValueError("the adversarial term needs the decoder's last layer for its adaptive weight")
