"""A new reconstruction term is its config field and one TermSpec with its builder: the objective trains it, its
runs' family names it, the claims never use them as a pointwise baseline, and the ensemble refuses what it
cannot train. A field declared for an unregistered term is caught."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vaelens import train
from vaelens.config import LossConfig, from_dict, resolve, sections
from vaelens.config.fields import non_negative, result
from vaelens.losses import terms
from vaelens.losses.families import loss_family
from vaelens.losses.terms import TermSpec, WeightedTerm, ensemble_refusal, undeclared_terms
from vaelens.report.pairing import paired_runs
from vaelens.training.sweepdir import RunRecord


@dataclass
class LossWithSharpness(LossConfig):
    sharpness_weight: float = result(0.0, check=non_negative, term="sharpness")
    """Weight of the sharpness term: squared difference of the images' horizontal gradients (0: off)."""


def gradient_difference(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per image, the squared difference of horizontal finite differences: a pointwise-free edge term."""
    return ((x[..., 1:] - x[..., :-1]) - (x_hat[..., 1:] - x_hat[..., :-1])).pow(2).flatten(1).sum(1)


def build_sharpness(config, image_shape, device) -> WeightedTerm:
    return WeightedTerm("sharpness", "sharpness", gradient_difference, float(config.sharpness_weight), mixed=True)


@pytest.fixture
def sharpness_field(monkeypatch):
    """The term's config field, as a new term declares it in vaelens.config.sections (here a subclass)."""
    monkeypatch.setitem(sections.SECTIONS, "loss", LossWithSharpness)


@pytest.fixture
def sharpness_term(sharpness_field, monkeypatch):
    """The term's registration: one TermSpec with its builder."""
    monkeypatch.setitem(terms.TERMS, "sharpness", TermSpec("sharpness", "loss.sharpness_weight", ensemble=False,
                                                            build=build_sharpness))


def test_a_field_for_an_unregistered_term_is_caught(sharpness_field):
    assert undeclared_terms() == ["loss.sharpness_weight: term='sharpness' is not in vaelens.losses.terms.TERMS"]


def test_the_shipped_terms_are_declared_whole():
    assert undeclared_terms() == []


def test_a_new_term_trains_and_names_its_family(sharpness_term, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    assert undeclared_terms() == []
    config = resolve("dsprites-bvae", None, ["data.subset=64", "model.channels=4", "model.hidden_dim=16",
                                             "model.latent_dim=2", "train.steps=3", "train.batch_size=8",
                                             "train.log_every=1", "train.eval_images=8", "train.progress=false",
                                             "train.device=cpu", "loss.sharpness_weight=2.5"])
    assert loss_family(config) == "+sharpness"
    result_ = train(config, tmp_path / "run")
    assert result_.objective.family == "+sharpness" and result_.summary["objective"]["family"] == "+sharpness"
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("sharpness" in record for record in logged) and logged[0]["sharpness"] > 0
    assert "sharpness" in ensemble_refusal(config) and "loss.sharpness_weight=2.5" in ensemble_refusal(config)
    assert loss_family(resolve("dsprites-bvae", None, ["loss.sharpness_weight=2.5", "loss.disc_weight=0.5",
                                                       "loss.perceptual=lpips-vgg"])) == "+both+sharpness"


def _record(name: str, seed: int, **loss) -> RunRecord:
    config = from_dict({"data": {"subset": 128}, "loss": {"beta": 1.0, **loss}, "train": {"seed": seed}})
    return RunRecord(name, Path("/nonexistent"), {}, "finished", None, config, {"weighting_convention": "additive"},
                     {"rate": 10.0})


def test_runs_with_a_new_term_are_never_a_pointwise_baseline(sharpness_term):
    sharp = _record("sharp", 0, sharpness_weight=1.0)
    perceptual = _record("perceptual", 0, perceptual="features:dsprites-supervised")
    assert sharp.loss_family == "+sharpness"
    assert paired_runs([sharp, perceptual]) == {}  # without a pointwise run nothing is compared
    plain = _record("plain", 0)
    pairs = paired_runs([sharp, perceptual, plain])
    assert {group[2]: pair[0][1].run_id for group, pair in pairs.items()} == {"+sharpness": "plain",
                                                                              "+perceptual": "plain"}
