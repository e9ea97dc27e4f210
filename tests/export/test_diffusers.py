"""A resnet run as a diffusers AutoencoderKL: loaded by from_pretrained, it computes what vaelens computes."""

from __future__ import annotations

import json

import pytest
import torch

from vaelens.config import RunConfig
from vaelens.data import load_dataset
from vaelens.errors import VaelensError
from vaelens.export import export_run
from vaelens.export.diffusers import autoencoder_kl, check_diffusers_equivalent
from vaelens.models import ResNetVAE
from vaelens.runs import load_run

diffusers = pytest.importorskip("diffusers")


def test_an_exported_resnet_run_loads_in_diffusers_and_matches_vaelens(resnet_run, tmp_path):
    out, record = export_run(resnet_run, "diffusers", tmp_path / "vae")
    assert sorted(path.name for path in out.iterdir()) == [
        "config.json", "diffusion_pytorch_model.safetensors", "vaelens_export.json"]
    autoencoder = diffusers.AutoencoderKL.from_pretrained(str(out), local_files_only=True,
                                                          low_cpu_mem_usage=False).eval()
    loaded = load_run(resnet_run)
    images = load_dataset(loaded.config.data, split="test").all_images(6)  # real photos, in [0, 1]
    with torch.no_grad():
        mu, logvar = loaded.model.encode(images)
        posterior = autoencoder.encode(2 * images - 1).latent_dist  # diffusers takes [-1, 1]
        decoded = autoencoder.decode(mu).sample
        expected_decoded = 2 * loaded.model.decode(mu) - 1
    torch.testing.assert_close(posterior.mean, mu, rtol=0, atol=1e-4)
    torch.testing.assert_close(posterior.logvar, logvar, rtol=0, atol=1e-4)
    torch.testing.assert_close(decoded, expected_decoded, rtol=0, atol=1e-4)
    saved = json.loads((out / "vaelens_export.json").read_text())
    assert saved == record
    assert saved["step"] == 4 and saved["model"] == "resnet" and saved["exported_as"] == "diffusers"
    assert saved["config"]["model"]["channel_multipliers"] == [1, 2, 2]
    assert max(saved["check"]["max_abs_error"].values()) < 1e-4
    assert autoencoder.config.scaling_factor == 1.0 and autoencoder.config.norm_num_groups == 8


@pytest.mark.parametrize("shape", [dict(channels=32, channel_multipliers=(1, 2)),
                                   dict(channels=16, channel_multipliers=(1, 2, 4), num_res_blocks=2)])
def test_every_weight_maps_onto_autoencoder_kl(shape):
    torch.manual_seed(0)
    model = ResNetVAE((1, 16, 16), 3, **shape).eval()
    with torch.no_grad():  # GroupNorm starts as the identity affine map; move it so a misplaced one shows
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    autoencoder = autoencoder_kl(model)  # loads strictly: no AutoencoderKL weight is left unmapped
    images = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        mu, logvar = model.encode(images)
        posterior = autoencoder.encode(2 * images - 1).latent_dist
        torch.testing.assert_close(posterior.mean, mu, rtol=0, atol=1e-4)
        torch.testing.assert_close(posterior.logvar, logvar, rtol=0, atol=1e-4)
        torch.testing.assert_close(autoencoder.decode(mu).sample, 2 * model.decode(mu) - 1, rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_name", ["mlp", "conv64", "conv32", "linear"])
def test_models_without_an_autoencoder_kl_layout_are_refused_in_one_line(model_name):
    config = RunConfig()
    config.model.name = model_name
    with pytest.raises(VaelensError, match=f"^model {model_name} has no diffusers equivalent; use --format onnx "
                                           "or --format safetensors$"):
        check_diffusers_equivalent(config)


def test_a_bernoulli_resnet_is_refused_because_its_decoder_gives_logits():
    config = RunConfig()
    config.model.name, config.loss.likelihood = "resnet", "bernoulli"
    with pytest.raises(VaelensError, match="logits"):
        check_diffusers_equivalent(config)
