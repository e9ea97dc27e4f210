"""Which keys change a result: one role per field, and every consumer derived from it."""

import copy
import typing

import pytest

from vaelens import config as config_module
from vaelens.config import RunConfig, resolve
from vaelens.config.roles import keys_where
from vaelens.config.sections import DatasetName, ModelName


def test_every_field_declares_a_known_role():
    assert config_module.undeclared_fields() == []
    roles = {key: config_module.field_info(key)["role"] for key, _ in config_module.roles.config_fields()}
    assert set(roles.values()) == set(config_module.ROLES)
    assert roles["train.channels_last"] == roles["train.cuda_graph"] == "execution"
    assert roles["train.log_every"] == roles["train.progress"] == roles["train.device"] == "bookkeeping"
    assert roles["loss.ssim_weight"] == roles["train.bf16"] == roles["train.grad_clip"] == "result"


def test_a_field_without_a_role_is_caught(monkeypatch):
    from dataclasses import dataclass

    @dataclass
    class Extra:
        untagged: int = 3

    monkeypatch.setitem(config_module.SECTIONS, "extra", Extra)
    assert config_module.undeclared_fields() == ["extra.untagged"]


@pytest.mark.parametrize("preset, overrides, expected", [
    (None, [], "5f7650e9a8ba"),
    ("dsprites-bvae", ["loss.beta=4"], "1288b26fb87b"),
    # natural-perceptual as it was then (the preset has since moved to the ImageNet network)
    ("natural-perceptual", ["loss.perceptual=features:natural-denoising", "loss.perceptual_weight=1000"],
     "faad8ddfd696"),
])
def test_run_ids_are_those_of_earlier_versions(preset, overrides, expected):
    # Measured before the roles existed: a sweep made then is found, not retrained.
    assert config_module.config_hash(resolve(preset, None, overrides)) == expected


def test_the_run_id_ignores_execution_keys_only():
    base = resolve("dsprites-bvae")
    for key in config_module.keys_where(role="execution"):
        other = copy.deepcopy(base)
        section, name = key.split(".")
        config_module.update(other, {key: not getattr(getattr(base, section), name)})
        assert config_module.config_hash(other) == config_module.config_hash(base), key
    for key, value in (("train.log_every", 7), ("loss.ssim_weight", 0.5), ("train.steps", 9)):
        other = config_module.update(copy.deepcopy(base), {key: value})
        assert config_module.config_hash(other) != config_module.config_hash(base), key


def test_resume_may_change_bookkeeping_execution_and_steps_but_no_other_result_key():
    saved = config_module.to_dict(resolve("dsprites-bvae"))
    now = resolve("dsprites-bvae", None, ["train.steps=50000", "train.log_every=5", "train.device=cpu",
                                           "train.channels_last=false", "train.checkpoint_every=7"])
    assert config_module.resume_conflicts(saved, config_module.to_dict(now)) == []
    config_module.update(now, {"train.bf16": True, "loss.ssim_weight": 0.1})
    conflicts = config_module.resume_conflicts(saved, config_module.to_dict(now))
    assert conflicts == ["loss.ssim_weight: 0.0 (saved) != 0.1 (now)", "train.bf16: False (saved) != True (now)"]


def test_ensemble_members_may_differ_in_beta_and_seed_only():
    a = resolve("dsprites-bvae")
    b = resolve("dsprites-bvae", None, ["loss.beta=9", "train.seed=4"])
    assert config_module.ensemble_key(a) == config_module.ensemble_key(b)
    assert config_module.ensemble_key(a) != config_module.ensemble_key(
        resolve("dsprites-bvae", None, ["train.log_every=3"]))


def test_pairing_covers_every_result_key_but_the_compared_terms():
    setup = config_module.pairing_setup(config_module.to_dict(RunConfig()), ("perceptual", "adversarial", "neural"),
                                        exclude=("train.seed", "loss.convention"))
    # The keys an earlier hand-written whitelist missed: an SSIM or bf16 run is not a pointwise baseline.
    assert {"loss.ssim_weight", "loss.ssim_kind", "loss.metric", "train.grad_clip", "train.bf16"} <= set(setup)
    assert not {"loss.perceptual", "loss.perceptual_weight", "loss.disc_weight", "loss.neural_fraction",
                "train.seed", "loss.convention", "train.log_every", "train.channels_last"} & set(setup)


def test_enum_types_match_the_registries():
    from vaelens.data import DATASET_NAMES
    from vaelens.losses import CONVENTIONS, LIKELIHOODS
    from vaelens.models import MODELS

    assert set(typing.get_args(ModelName)) == set(MODELS)
    assert set(typing.get_args(DatasetName)) == set(DATASET_NAMES)
    assert set(LIKELIHOODS) == {"gaussian", "gaussian_learned", "laplace", "bernoulli"}
    assert set(CONVENTIONS) == {"additive", "convex", "ldm"}


def test_convex_runs_get_new_ids_because_their_rule_changed():
    import hashlib
    import json

    def old_rule(config):  # vaelens 0.1's run id: the resolved config without the execution keys
        values = config_module.to_dict(config)
        values["train"].pop("channels_last"), values["train"].pop("cuda_graph"), values["train"].pop("tensorboard")
        for key in keys_where(added_later=True):  # fields added later: 0.1 had them at their default
            section, name = key.split(".")
            assert values[section].pop(name) == getattr(getattr(RunConfig(), section), name)
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]

    additive = resolve("dsprites-perceptual")
    convex = resolve("dsprites-perceptual", None, ["loss.convention=convex"])
    assert config_module.config_hash(additive) == old_rule(additive)
    assert config_module.config_hash(convex) != old_rule(convex)  # 0.1's convex ignored w_p: retrain, don't mix


@pytest.mark.parametrize("model_name,run_id", [("conv64", "5f7650e9a8ba"), ("conv32", "86997b94c73e"),
                                               ("mlp", "89dba1d42ba9"), ("linear", "47b0bf8dd518")])
def test_run_ids_of_models_other_than_resnet_are_those_handed_out_before_its_revision(model_name, run_id):
    config = RunConfig()
    config.model.name = model_name
    assert config_module.config_hash(config) == run_id
    assert config_module.config_hash(resolve("dsprites-bvae")) == "1288b26fb87b"


def test_resnet_runs_get_new_ids_because_the_model_now_has_latent_diffusions_layout():
    config = RunConfig()
    config.model.name = "resnet"
    assert config_module.config_hash(config) != "938d5b65e89f"  # the ids before the revision
    assert config_module.config_hash(resolve("sd-vae-offline")) != "55c93a1873bb"
