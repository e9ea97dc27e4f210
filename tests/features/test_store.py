"""Saving, loading and resolving feature networks: round trips, integrity checks and the fit-once cache."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from vaelens.features import (
    RECIPES,
    FeatureNetwork,
    feature_network_path,
    load_feature_network,
    resolve_feature_network,
    save_feature_network,
    store,
)
from vaelens.features.cli import add_fit_features_parser


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _random_network(seed: int = 0) -> FeatureNetwork:
    torch.manual_seed(seed)
    return FeatureNetwork(3, 32, widths=(8, 16, 16))


def test_round_trip_gives_identical_features_frozen_and_in_eval_mode(tmp_path):
    network = _random_network()
    path = save_feature_network(network, {"method": "denoising", "held_out": {"loss": 0.5}},
                                tmp_path / "net.safetensors")
    loaded, metadata = load_feature_network(path)
    images = torch.rand(4, 3, 32, 32)
    for original, restored in zip(network(images), loaded(images)):
        assert torch.equal(original, restored)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert metadata["method"] == "denoising" and metadata["held_out"] == {"loss": 0.5}
    assert metadata["architecture"] == {"in_channels": 3, "image_size": 32, "widths": [8, 16, 16],
                                        "convs_per_stage": 1}
    # Frozen, yet gradients still reach the reconstruction through the distance.
    from vaelens.distances.features import feature_distance

    x_hat = torch.rand(4, 3, 32, 32, requires_grad=True)
    feature_distance(images, x_hat, loaded).sum().backward()
    assert x_hat.grad is not None and float(x_hat.grad.abs().sum()) > 0


def test_a_name_lives_in_the_cache_and_a_path_is_used_as_is(cache, tmp_path):
    assert feature_network_path("my-net") == cache / "features" / "my-net.safetensors"
    assert feature_network_path(tmp_path / "a.safetensors") == tmp_path / "a.safetensors"
    save_feature_network(_random_network(), {"method": "contrastive"}, "my-net")
    assert (cache / "features" / "my-net.json").is_file()
    assert load_feature_network("my-net")[1]["method"] == "contrastive"
    with pytest.raises(ValueError, match="may only hold letters"):
        feature_network_path("bad name!")
    with pytest.raises(ValueError, match="must end in .safetensors"):
        feature_network_path(tmp_path / "net.pt")


def test_missing_network_names_the_file_and_the_command(cache):
    with pytest.raises(FileNotFoundError) as error:
        load_feature_network("dsprites-supervised")
    message = str(error.value)
    assert str(cache / "features" / "dsprites-supervised.safetensors") in message
    assert "vaelens fit-features --name dsprites-supervised" in message


def test_corrupt_weights_fail_the_checksum(tmp_path):
    path = save_feature_network(_random_network(), {"method": "denoising"}, tmp_path / "net.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load_feature_network(path)


def test_weights_that_do_not_fit_the_recorded_architecture_are_refused(tmp_path):
    path = save_feature_network(_random_network(), {"method": "denoising"}, tmp_path / "net.safetensors")
    sidecar = path.with_suffix(".json")
    metadata = json.loads(sidecar.read_text())
    metadata["architecture"]["widths"] = [8, 16, 32]
    sidecar.write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="do not fit the architecture"):
        load_feature_network(path)
    sidecar.unlink()
    with pytest.raises(FileNotFoundError, match="has no sidecar"):
        load_feature_network(path)


def test_resolve_fits_a_built_in_network_once_then_loads_it(cache, capsys, monkeypatch):
    calls = []
    real_fit = store.fit_recipe

    def counting_fit(name, **kwargs):
        calls.append(name)
        return real_fit(name, **kwargs)

    monkeypatch.setattr(store, "fit_recipe", counting_fit)
    network, metadata = resolve_feature_network("natural-denoising", steps=2, progress=False)
    announcement = capsys.readouterr().err
    assert "fitting feature network 'natural-denoising'" in announcement
    assert str(cache / "features" / "natural-denoising.safetensors") in announcement
    assert metadata["recipe"] == {"name": "natural-denoising", "version": RECIPES["natural-denoising"].version,
                                  "summary": RECIPES["natural-denoising"].summary,
                                  "recipe_steps": RECIPES["natural-denoising"].steps, "steps_overridden": True}
    assert metadata["steps"] == 2 and metadata["in_channels"] == 3
    assert not network.training and not any(p.requires_grad for p in network.parameters())

    again, _ = resolve_feature_network("natural-denoising", steps=2, progress=False)
    assert calls == ["natural-denoising"] and capsys.readouterr().err == ""
    images = torch.rand(2, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(network(images), again(images)))


def test_resolve_refits_stale_or_corrupt_built_in_networks_with_a_warning(cache, monkeypatch):
    # Fitting itself is tested above; here a stand-in fit returns a fresh network tagged as current.
    current = {"method": "denoising", "recipe": {"version": RECIPES["natural-denoising"].version}}
    monkeypatch.setattr(store, "fit_recipe", lambda name, **kwargs: (_random_network(seed=1), dict(current)))
    path = feature_network_path("natural-denoising")
    save_feature_network(_random_network(), {"method": "denoising", "recipe": {"version": -1}}, path)
    with pytest.warns(UserWarning, match="recipe version -1"):
        refitted, metadata = resolve_feature_network("natural-denoising", progress=False)
    assert metadata["recipe"] == current["recipe"]
    assert torch.equal(refitted.stages[0][0].weight, _random_network(seed=1).stages[0][0].weight)

    path.write_bytes(path.read_bytes()[:-8])
    with pytest.warns(UserWarning, match="SHA-256"):
        resolve_feature_network("natural-denoising", progress=False)
    assert load_feature_network("natural-denoising")[1]["recipe"] == current["recipe"]


def test_resolve_without_fitting_raises_for_a_missing_built_in(cache):
    with pytest.raises(FileNotFoundError, match="vaelens fit-features --name natural-contrastive"):
        resolve_feature_network("natural-contrastive", fit_if_missing=False)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vaelens")
    add_fit_features_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_fits_custom_data_and_prints_held_out_metrics(cache, tmp_path, capsys):
    out = tmp_path / "nat32.safetensors"
    assert _cli(["fit-features", "--data", "name=natural", "image_size=32", "subset=256", "--method",
                 "denoising", "--steps", "2", "--batch-size", "16", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "reconstruction_mse:" in printed and "(at init" in printed and f"saved: {out}" in printed
    network, metadata = load_feature_network(out)
    assert metadata["data"]["config"]["image_size"] == 32 and metadata["steps"] == 2


def test_cli_errors_name_what_is_missing(cache):
    with pytest.raises(ValueError, match="--data needs --method"):
        _cli(["fit-features", "--data", "name=natural", "--out", "x"])
    with pytest.raises(ValueError, match="unknown config key 'data.colour'"):
        _cli(["fit-features", "--data", "colour=red", "--method", "denoising", "--out", "x"])
    with pytest.raises(ValueError, match="not a built-in feature network"):
        _cli(["fit-features", "--name", "vgg16"])
