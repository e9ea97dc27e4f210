"""Latent analysis of trained runs and pretrained autoencoders."""

from vaelens.analysis.run import analyze, write_analysis
from vaelens.analysis.target import analyze_target

__all__ = ["analyze", "analyze_target", "write_analysis"]
