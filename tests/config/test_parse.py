import re

import pytest

from vaelens import config as config_module
from vaelens.config import ConfigError, RunConfig, parse_override, resolve


def test_defaults_then_preset_then_overrides():
    config = resolve("dsprites-bvae", None, ["loss.beta=8", "model.latent_dim=6", "train.lr=1e-3"])
    assert config.loss.beta == 8.0 and isinstance(config.loss.beta, float)
    assert config.model.latent_dim == 6
    assert config.train.lr == pytest.approx(1e-3)
    assert config.model.name == "conv64"


def test_unknown_key_names_itself_and_valid_keys():
    with pytest.raises(ConfigError) as error:
        resolve(None, None, ["loss.betta=4"])
    message = str(error.value)
    assert "loss.betta" in message and "loss.beta" in message and "loss.likelihood" in message


def test_unknown_section_lists_sections():
    with pytest.raises(ConfigError, match="valid keys here: data, model, loss, train"):
        resolve(None, None, ["optim.lr=1"])


@pytest.mark.parametrize("override, expected", [
    ("model.latent_dim=ten", "model.latent_dim expects an integer"),
    ("loss.beta=abc", "loss.beta expects a number"),
    ("train.bf16=3", "train.bf16 expects true or false"),
    ("train.adam_betas=0.9", "train.adam_betas expects a list"),
    ("loss", "must look like key=value"),
    ("loss=3", "'loss' is a section"),
])
def test_wrong_types_name_key_and_type(override, expected):
    with pytest.raises(ConfigError, match=expected):
        resolve(None, None, [override])


def test_optional_and_list_values():
    config = resolve(None, None, ["data.subset=null", "train.grad_clip=1", "model.channel_multipliers=[1,2]"])
    assert config.data.subset is None
    assert config.train.grad_clip == 1.0
    assert config.model.channel_multipliers == [1, 2]


def test_parse_override_reads_scientific_notation_as_number():
    assert parse_override("train.lr=1e-4") == ("train.lr", 1e-4)
    assert parse_override("data.path=/tmp/x") == ("data.path", "/tmp/x")


def test_yaml_round_trip(tmp_path):
    config = resolve("natural-bvae", None, ["loss.beta=2.5"])
    config_module.save_yaml(config, tmp_path / "config.yaml")
    loaded = config_module.from_dict(config_module.load_yaml(tmp_path / "config.yaml"))
    assert loaded == config


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve(None, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve(None, bad)
    (tmp_path / "typo.yaml").write_text("model:\n  latnet_dim: 4\n")
    with pytest.raises(ConfigError, match="model.latnet_dim"):
        resolve(None, tmp_path / "typo.yaml")


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="dsprites-bvae"):
        resolve("no-such-preset")


def test_every_field_is_documented():
    for section in (RunConfig, config_module.DataConfig, config_module.ModelConfig,
                    config_module.LossConfig, config_module.TrainConfig):
        docs = config_module.field_docs(section)
        assert set(docs) == set(section.__dataclass_fields__), section.__name__


def test_every_preset_resolves():
    for name in config_module.preset_names():
        assert isinstance(resolve(name), RunConfig)


@pytest.mark.parametrize("override, expected", [
    ("model.latent_dim=0", "model.latent_dim must be at least 1, got 0"),
    ("model.latent_dim=-3", "model.latent_dim must be at least 1, got -3"),
    ("loss.beta=nan", "loss.beta must be a finite number >= 0, got nan"),
    ("loss.beta=-inf", "loss.beta must be a finite number >= 0, got -inf"),
    ("train.lr=0", "train.lr must be a finite number > 0"),
    ("loss.neural_fraction=1.5", "loss.neural_fraction must lie in [0, 1]"),
    ("train.adam_betas=[0.9]", "train.adam_betas must hold exactly 2 values"),
    ("loss.convention=adittive", "unknown loss.convention 'adittive'; choose one of: additive, convex, ldm"),
    ("loss.likelihood=gauss", "unknown loss.likelihood 'gauss'; choose one of: gaussian, gaussian_learned, "
                              "laplace, bernoulli"),
    ("loss.disc_loss=wgan", "unknown loss.disc_loss 'wgan'; choose one of: hinge, non_saturating"),
    ("loss.ssim_kind=msssim", "unknown loss.ssim_kind 'msssim'; choose one of: ssim, ms_ssim"),
    ("model.name=conv128", "unknown model.name 'conv128'; choose one of: conv64, conv32, mlp, linear, resnet"),
])
def test_nonsensical_values_fail_when_read_naming_the_key(override, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        resolve(None, None, [override])


def test_values_in_a_yaml_file_are_checked_too(tmp_path):
    (tmp_path / "bad.yaml").write_text("loss:\n  convention: convexx\n")
    with pytest.raises(ConfigError, match="unknown loss.convention 'convexx'"):
        resolve(None, tmp_path / "bad.yaml")


def test_a_config_edited_in_python_is_checked_before_training(tmp_path):
    from vaelens import train

    config = resolve("dsprites-bvae", None, ["train.device=cpu"])
    config.model.latent_dim = 0
    with pytest.raises(ConfigError, match="model.latent_dim must be at least 1"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    config.model.latent_dim = 4
    config.loss.beta = float("nan")
    with pytest.raises(ConfigError, match="loss.beta must be a finite number"):
        config_module.check_config(config)


@pytest.mark.parametrize("preset", config_module.preset_names())
def test_config_docs_is_a_working_yaml_config(preset, tmp_path, capsys):
    import yaml

    from vaelens.cli import main

    assert main(["config", "--preset", preset, "--docs", "train.steps=123"]) == 0
    text = capsys.readouterr().out
    values = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  ") and ":" in line
              and not line.lstrip().startswith("#")]
    assert values and not {"None", "False", "True"} & set(values)  # YAML's null/false/true, not Python's
    assert all(len(line) <= 100 for line in text.splitlines())
    (tmp_path / "my.yaml").write_text(text)
    assert isinstance(yaml.safe_load(text), dict)
    assert resolve(None, tmp_path / "my.yaml") == resolve(preset, None, ["train.steps=123"])
    doc = config_module.field_docs(config_module.LossConfig)["metric"]  # a docstring over several lines
    assert " ".join(doc.split())[:60] in " ".join(line.lstrip("# ") for line in text.splitlines())


def test_a_duplicate_yaml_key_is_refused_naming_it_and_both_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("loss:\n  beta: 1\n  likelihood: bernoulli\n  beta: 64\n")
    with pytest.raises(ConfigError, match=r"config.yaml: the key 'beta' appears twice in one mapping "
                                          r"\(lines 2 and 4\); keep one"):
        config_module.load_yaml(path)
    path.write_text("loss: {beta: 1, beta: 64}\n")
    with pytest.raises(ConfigError, match=r"'beta' appears twice .*lines 1 and 1"):
        config_module.load_yaml(path)


def test_a_duplicate_key_in_a_sweep_spec_is_refused(tmp_path):
    from vaelens.sweep.spec import load_spec

    path = tmp_path / "spec.yaml"
    path.write_text("name: s\ngrid: {loss.beta: [1]}\ngrid: {loss.beta: [2]}\n")
    with pytest.raises(ConfigError, match=r"spec.yaml: the key 'grid' appears twice .*lines 2 and 3"):
        load_spec(path)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_a_seed_beyond_64_bits_names_its_key(seed):
    with pytest.raises(ConfigError, match=rf"train.seed must be an integer from -2\*\*63 to 2\*\*63 - 1.*{seed}"):
        resolve(None, None, [f"train.seed={seed}"])
    resolve(None, None, [f"train.seed={2**63 - 1}", "data.seed=-5"])
