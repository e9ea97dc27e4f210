"""Reconstruction losses (pointwise, perceptual, adversarial, structural) and the VAE objective."""

from vaelens.losses.objective import CONVENTIONS, VAEObjective, build_objective, kl_per_unit
from vaelens.losses.pointwise import (
    LIKELIHOODS,
    BernoulliLikelihood,
    GaussianLikelihood,
    LaplaceLikelihood,
    LearnedGaussianLikelihood,
    PointwiseLikelihood,
    build_likelihood,
)

__all__ = [
    "CONVENTIONS", "VAEObjective", "build_objective", "kl_per_unit", "LIKELIHOODS", "BernoulliLikelihood",
    "GaussianLikelihood", "LaplaceLikelihood", "LearnedGaussianLikelihood", "PointwiseLikelihood",
    "build_likelihood",
]
