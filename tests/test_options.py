"""Tests for vaelens.options: command-line options generated from a documented dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from vaelens.options import add_dataclass_options, dataclass_from_options, option_name


@dataclass
class Settings:
    size: int = 8
    """Side of the images."""
    rate: float = 0.5
    """Learning rate."""
    name: str = "random"
    """Which network."""
    verbose: bool = False
    """Print every step."""
    progress: bool = True
    """Show a progress bar."""
    sources: list[str] = field(default_factory=lambda: ["a", "b"])
    """Sources to run."""
    weights: list[float] | None = None
    """Weights; None picks them."""


NAMES = {"size": "--side"}


@dataclass
class Unsupported:
    table: dict = field(default_factory=dict)
    """A mapping has no command-line form."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    add_dataclass_options(parser, Settings, NAMES)
    return parser


def test_defaults_build_the_default_instance():
    assert dataclass_from_options(Settings, _parser().parse_args([]), NAMES) == Settings()


def test_every_kind_of_field_parses():
    args = _parser().parse_args(["--side", "4", "--rate", "1e-3", "--name", "vgg", "--verbose", "--no-progress",
                                 "--sources", "b", "--weights", "1, 2.5"])
    assert dataclass_from_options(Settings, args, NAMES) == Settings(
        size=4, rate=1e-3, name="vgg", verbose=True, progress=False, sources=["b"], weights=[1.0, 2.5])


def test_an_empty_optional_list_is_none_and_an_empty_required_list_is_empty():
    args = _parser().parse_args(["--weights", "", "--sources", ""])
    settings = dataclass_from_options(Settings, args, NAMES)
    assert settings.weights is None and settings.sources == []


def test_help_is_the_docstring_with_the_default(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--side SIDE Side of the images (default 8)" in text
    assert "--sources SOURCES Sources to run (comma-separated; default a,b)" in text
    assert "--no-progress do not show a progress bar" in text and "--verbose Print every step" in text


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="--weights must be a comma-separated list, got '1,x'"):
        dataclass_from_options(Settings, _parser().parse_args(["--weights", "1,x"]), NAMES)
    with pytest.raises(SystemExit):  # argparse's own one-line error for a scalar of the wrong type
        _parser().parse_args(["--side", "four"])


def test_option_names_and_unsupported_fields():
    assert option_name("latent_dim") == "--latent-dim" and option_name("size", NAMES) == "--side"
    with pytest.raises(TypeError, match="no command-line form"):
        add_dataclass_options(argparse.ArgumentParser(), Unsupported)
