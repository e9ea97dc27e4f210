"""The check every export passes: the exported outputs against vaelens's, within float tolerance."""

from __future__ import annotations

import pytest
import torch

from vaelens.errors import VaelensError
from vaelens.export.check import TOLERANCE, check_images, compare


def test_the_check_images_are_seeded_and_in_the_unit_interval():
    images = check_images((3, 8, 8))
    assert torch.equal(images, check_images((3, 8, 8))) and images.shape == (4, 3, 8, 8)
    assert 0 <= float(images.min()) and float(images.max()) <= 1


def test_rounding_passes_and_a_real_difference_is_refused():
    reference = {"mean": torch.linspace(-50, 50, 11)}
    rounding = {"mean": reference["mean"] + 1e-3}  # relative 2e-5 of the largest magnitude, 50
    assert compare(reference, rounding, "test")["max_abs_error"]["mean"] == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(VaelensError, match="the test export does not reproduce the vaelens model .mean differs by"):
        compare(reference, {"mean": reference["mean"] + 100 * TOLERANCE * 50}, "test")


def test_a_not_a_number_is_refused():
    with pytest.raises(VaelensError, match="decode differs by up to nan"):
        compare({"decode": torch.zeros(2)}, {"decode": torch.tensor([0.0, float("nan")])}, "test")
