"""Tests for vaelens.dotted.flatten_dotted."""

from __future__ import annotations

from vaelens.dotted import flatten_dotted


def test_nested_mapping_becomes_dotted_keys():
    nested = {"loss": {"beta": 4, "perceptual": None}, "train": {"adam_betas": [0.9, 0.99]}, "name": "x"}
    assert flatten_dotted(nested) == {"loss.beta": 4, "loss.perceptual": None, "train.adam_betas": [0.9, 0.99],
                                      "name": "x"}


def test_prefix_and_deep_nesting():
    assert flatten_dotted({"a": {"b": {"c": 1}}, "d": 2}, "data.") == {"data.a.b.c": 1, "data.d": 2}


def test_dotted_keys_pass_through_and_mix_with_nested_ones():
    assert flatten_dotted({"loss.beta": 2, "model": {"latent_dim": 6}}) == {"loss.beta": 2, "model.latent_dim": 6}


def test_empty_sections_vanish():
    assert flatten_dotted({"loss": {}, "seed": 0}) == {"seed": 0}
