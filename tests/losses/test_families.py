"""The loss family of a configuration: one function for the objective, the ensemble and the report."""

from vaelens.config import resolve
from vaelens.losses import build_objective
from vaelens.losses.families import FAMILIES, family_order, loss_family
from vaelens.models import build_model
from vaelens.training.ensemble import unsupported_reason


def test_loss_family_from_config():
    assert loss_family({"loss": {"perceptual": None, "disc_weight": 0.0}}) == "pointwise"
    assert loss_family({"loss": {"perceptual": "lpips-vgg"}}) == "+perceptual"
    assert loss_family({"loss": {"disc_weight": 0.1}}) == "+adversarial"
    assert loss_family({"loss": {"perceptual": "features:x", "disc_weight": 1}}) == "+both"
    assert loss_family({"loss": {"ssim_weight": 0.5}}) == "+structural"
    assert loss_family({"loss": {"perceptual": "features:x", "ssim_weight": 0.5}}) == "+perceptual+structural"
    assert family_order("+perceptual+structural") == len(FAMILIES) > family_order("+both")


def test_the_objective_the_ensemble_and_the_report_agree():
    for overrides, family in (([], "pointwise"), (["loss.ssim_weight=0.5"], "+structural"),
                              (["loss.disc_weight=0.5", "loss.disc_layers=2"], "+adversarial")):
        config = resolve("dsprites-bvae", None, overrides)
        model = build_model(config.model, (1, 64, 64))
        objective = build_objective(config.loss, (1, 64, 64), model)
        assert loss_family(config) == loss_family(config.loss) == objective.family == family
        assert objective.describe()["family"] == family
        assert (unsupported_reason(config) is None) == (family == "pointwise")


def test_a_learned_sigma_is_a_weighting_setting_of_its_own():
    from vaelens.losses.families import convention_label, split_convention_label

    assert convention_label("additive", "gaussian_learned") == "additive+learned-sigma"
    assert convention_label("additive", "gaussian") == "additive"
    assert split_convention_label("additive+learned-sigma") == ("additive", True)
    assert split_convention_label("ldm") == ("ldm", False)
