"""Every shipped preset: a tiny end-to-end run of each offline one, and clear errors where one cannot run.

Feature networks are fitted on first use exactly as for a user, but with their recipes shrunk
(a few steps on a small subset) so the whole module stays within seconds of CPU time.
"""

import dataclasses
import functools
import json

import pytest
import torch

from vaelens.cli import main
from vaelens.config import preset_names, resolve
from vaelens.features import recipes
from vaelens.features.recipes import RECIPES

OFFLINE_PRESETS = ["dsprites-bvae", "dsprites-perceptual", "dsprites-adversarial", "natural-bvae",
                   "natural-perceptual", "natural-adversarial", "sd-vae-offline"]
SHRINK = ["data.subset=64", "model.channels=8", "model.hidden_dim=16", "model.latent_dim=4",
          "train.steps=3", "train.batch_size=8", "train.log_every=1", "train.checkpoint_every=10",
          "train.eval_images=8", "train.progress=false", "train.device=cpu",
          "loss.disc_start=1", "loss.disc_channels=4", "loss.disc_layers=2"]
PRESET_SHRINK = {"sd-vae-offline": ["data.image_size=32", "model.channel_multipliers=[1,2]"]}


@pytest.fixture(scope="module")
def tiny_recipes(tmp_path_factory):
    """An empty feature cache and built-in recipes shrunk to a few steps of a narrow net on a small subset."""
    cache = tmp_path_factory.mktemp("vaelens-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(cache))
        patch.setattr(recipes, "fit_feature_network",
                      functools.partial(recipes.fit_feature_network, widths=(8, 16), eval_images=32))
        for name, recipe in list(RECIPES.items()):
            patch.setitem(RECIPES, name, dataclasses.replace(recipe, steps=2, batch_size=16,
                                                             data={**recipe.data, "subset": 96}))
        yield cache


@pytest.fixture
def cache(tiny_recipes, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tiny_recipes))
    return tiny_recipes


def test_every_preset_is_listed_and_parses(capsys):
    assert set(OFFLINE_PRESETS) | {"sd-vae"} <= set(preset_names())
    for name in preset_names():
        assert main(["config", "--preset", name]) == 0, name
    capsys.readouterr()


@pytest.mark.parametrize("preset", OFFLINE_PRESETS)
@pytest.mark.slow  # fits a feature network, then trains every offline preset
def test_offline_preset_runs_end_to_end(preset, cache, tmp_path, capsys):
    out = tmp_path / "run"
    perceptual = resolve(preset).loss.perceptual or ""
    cached_before = (cache / "features" / f"{perceptual.removeprefix('features:')}.safetensors").is_file()
    assert main(["train", "--preset", preset, *SHRINK, *PRESET_SHRINK.get(preset, []), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    objective = summary["objective"]
    assert summary["status"] == "finished" and summary["weighting_convention"] == objective["convention"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    if objective.get("perceptual") == "effnet-lite0":  # the ImageNet network installs with vaelens: nothing fitted
        assert objective["weights_sha256"] and "fitting feature network" not in captured.err
        assert all("perceptual" in r for r in records)
    elif "perceptual" in objective:
        network = objective["perceptual"].removeprefix("features:")
        assert network in RECIPES and objective["held_out"] is not None
        assert all("perceptual" in r for r in records)
        # The first preset to need a network fits it, announcing what and where; later ones load it.
        announced = f"fitting feature network '{network}'" in captured.err
        assert announced != cached_before and (cache / "features" / f"{network}.safetensors").is_file()
    if "adversarial" in objective:
        assert records[0]["adversarial_weight"] == 0.0
        assert all(r["adversarial_weight"] > 0 and "discriminator_loss" in r for r in records[1:])
    if preset.startswith("sd-vae"):
        assert objective["convention"] == "ldm" and objective["beta"] == 1e-6
        assert all("ldm_logvar" in r for r in records)


def test_sd_vae_without_vgg_weights_names_the_file(cache, tmp_path, monkeypatch, capsys):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    assert main(["train", "--preset", "sd-vae", *SHRINK, "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "vgg16-397923af.pth" in error and str(hub / "checkpoints") in error
    assert "sd-vae-offline" in error


def test_feature_network_for_other_channels_is_refused(cache, tmp_path, capsys):
    code = main(["train", "--preset", "dsprites-perceptual", *SHRINK, "loss.perceptual=features:natural-denoising",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "takes 3-channel images but the data has 1 channels" in capsys.readouterr().err


@pytest.mark.parametrize("override, message", [
    ("loss.perceptual=vgg", "unknown loss.perceptual 'vgg'"),
    ("loss.disc_loss=wgan", "unknown loss.disc_loss 'wgan'"),
    ("loss.likelihood=poisson", "unknown loss.likelihood 'poisson'"),
    ("loss.perceptual=features:no-such-network", "no feature network 'no-such-network'"),
])
def test_unknown_loss_names_are_refused(override, message, cache, tmp_path, capsys):
    code = main(["train", "--preset", "dsprites-adversarial", *SHRINK, override, "--out", str(tmp_path / "run")])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_fit_features_command_is_wired(cache, capsys):
    assert main(["fit-features", "--list"]) == 0
    assert "dsprites-supervised" in capsys.readouterr().out
    assert main(["fit-features", "--name", "dsprites-supervised", "--steps", "1", "--force", "--no-progress"]) == 0
    output = capsys.readouterr().out
    assert "held-out metrics" in output and (cache / "features" / "dsprites-supervised.safetensors").is_file()
