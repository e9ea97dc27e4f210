"""Reconstruction losses and the beta-VAE objective."""

from vaelens.losses.objective import BetaVAEObjective, build_objective, kl_per_unit
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
    "BetaVAEObjective", "build_objective", "kl_per_unit", "LIKELIHOODS", "BernoulliLikelihood",
    "GaussianLikelihood", "LaplaceLikelihood", "LearnedGaussianLikelihood", "PointwiseLikelihood",
    "build_likelihood",
]
