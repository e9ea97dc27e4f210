import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vaelens.cli import main
from vaelens.pretrained import DiffusersAutoencoder, load_diffusers_autoencoder

diffusers = pytest.importorskip("diffusers")


def _tiny_autoencoder() -> "diffusers.AutoencoderKL":
    """A randomly initialised AutoencoderKL: two blocks (downsampling 2), 4 latent channels."""
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=4,
        block_out_channels=(8, 16), sample_size=16,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    )


@pytest.fixture
def saved_autoencoder(tmp_path):
    folder = tmp_path / "vae"
    _tiny_autoencoder().save_pretrained(folder)
    return folder


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        pixels = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"image_{index}.png")
    return folder


def test_adapter_returns_the_raw_latent_distribution():
    autoencoder = _tiny_autoencoder().eval()
    adapter = DiffusersAutoencoder(autoencoder, image_size=16)
    assert adapter.latent_shape == (4, 8, 8) and adapter.image_shape == (3, 16, 16)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        mu, logvar = adapter.encode(x)
        expected = autoencoder.encode(2 * x - 1).latent_dist
        reconstruction = adapter.reconstruct(mu)
    torch.testing.assert_close(mu, expected.mean)
    torch.testing.assert_close(logvar, expected.logvar)
    assert reconstruction.shape == x.shape and 0 <= float(reconstruction.min()) <= float(reconstruction.max()) <= 1


def test_adapter_names_shape_problems():
    with pytest.raises(ValueError, match="not divisible"):
        DiffusersAutoencoder(_tiny_autoencoder(), image_size=15)
    adapter = DiffusersAutoencoder(_tiny_autoencoder(), image_size=16)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, 16, 16\)"):
        adapter.encode(torch.rand(2, 1, 16, 16))


def test_loader_needs_a_model_folder(tmp_path, saved_autoencoder):
    with pytest.raises(FileNotFoundError, match="no diffusers model folder"):
        load_diffusers_autoencoder(tmp_path / "missing", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no AutoencoderKL config.json"):
        load_diffusers_autoencoder(tmp_path / "empty", 16)
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    saved_autoencoder.rename(pipeline / "vae")
    assert load_diffusers_autoencoder(pipeline, 16).latent_shape == (4, 8, 8)


def test_cli_probes_a_diffusers_autoencoder(saved_autoencoder, image_folder, tmp_path, capsys):
    out = tmp_path / "probe"
    code = main(["analyze", "--model", f"diffusers:{saved_autoencoder}", "--data", f"folder:{image_folder}",
                 "--image-size", "16", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "analysis.json").read_text())
    assert results["num_images"] == 6, "a pretrained probe analyses every image of the folder"
    assert results["latent_view"] == "element" and results["latent_shape"] == [4, 8, 8]
    assert results["weighting_convention"] == "unknown (pretrained model)" and results["units"] == "nats"
    assert results["model.model"] == "diffusers AutoencoderKL"
    # Per element: every one of the 4 * 8 * 8 latent elements is a unit.
    assert len(results["rate_per_unit"]) == len(results["active_mask"]) == 256
    assert len(results["posterior_variance.profile"]) == 256
    assert results["mutual_information"] <= math.log(6) + 1e-9
    # Per channel, pooled over the 64 positions of each image.
    assert results["channel.num_rows"] == 6 * 64
    assert len(results["channel.rate_per_unit"]) == len(results["channel.posterior_variance.profile"]) == 4
    assert results["channel.rate"] == pytest.approx(results["rate"] / 64)
    assert results["channel.marginal_kl"] == pytest.approx(
        results["channel.total_correlation"] + results["channel.dimension_wise_kl"])
    assert results["channel.geometry.num_dimensions"] == 4
    assert not any(key.startswith("disentanglement.") for key in results)
    for name in ("variance_profile.png", "covariance_spectrum.png", "kl_per_unit.png", "reconstructions.png"):
        assert (out / "analysis" / name).is_file(), name


class _Executes:
    """A pickle that would run a command when loaded."""

    def __reduce__(self):
        return (print, ("this pickle ran code",))


def test_a_pickled_diffusers_folder_is_refused_in_one_line_without_unpickling(tmp_path, image_folder, capsys):
    folder = tmp_path / "evil"
    _tiny_autoencoder().save_pretrained(folder, safe_serialization=False)
    torch.save({"weight": _Executes()}, folder / "diffusion_pytorch_model.bin")
    code = main(["analyze", "--model", f"diffusers:{folder}", "--data", f"name=folder path={image_folder}",
                 "--images", "4", "--out", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("vaelens ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in captured.err
    assert "diffusion_pytorch_model.bin is not a safe checkpoint" in lines[0] and "will not unpickle" in lines[0]
    assert "weights_only set to False" not in captured.err and "this pickle ran code" not in captured.out


def test_a_diffusers_analysis_measures_its_latent_scale_beside_the_configured_one(tmp_path, image_folder, capsys):
    """FLUX-style factors in the config; the measured ones are those of the documented posterior samples, and the
    distortions (decoded from the one encoding pass) equal those of encoding the scored images again."""
    from vaelens.config import DataConfig
    from vaelens.data import load_dataset
    from vaelens.metrics.distortion import distortion_report
    from vaelens.metrics.latent_stats import latent_diffusion_statistics
    from vaelens.sampling import random_subset

    autoencoder = _tiny_autoencoder()
    autoencoder.register_to_config(scaling_factor=0.3611, shift_factor=0.1159)
    autoencoder.save_pretrained(tmp_path / "vae")
    out = tmp_path / "probe"
    code = main(["analyze", "--model", f"diffusers:{tmp_path / 'vae'}", "--data", f"folder:{image_folder}",
                 "--image-size", "16", "--out", str(out), "--no-progress", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    results = json.loads((out / "analysis.json").read_text())
    assert (results["model.configured_scaling_factor"], results["model.configured_shift_factor"]) == (0.3611, 0.1159)
    assert "model.configured_latents_mean" not in results
    model = load_diffusers_autoencoder(tmp_path / "vae", 16)
    data = load_dataset(DataConfig(name="folder", path=str(image_folder), image_size=16, test_fraction=0.0),
                        split="test")
    with torch.no_grad():
        mu, logvar = model.encode(data.images(torch.arange(data.num_images)))
        expected = latent_diffusion_statistics(mu, logvar, seed=results["seed"]).to_dict()
        scored = random_subset(data.num_images, results["distortion.num_images"], results["distortion.seed"])
        images = data.images(scored)
        again = distortion_report(images, model.reconstruct(model.encode(images)[0]))
    for key, value in expected.items():
        assert results[f"latent_stats.{key}"] == pytest.approx(value, rel=1e-6), key
    for key in ("mse", "mse_sum", "psnr", "ssim"):
        assert results[f"distortion.{key}"] == pytest.approx(again[key], rel=1e-6), key
    scale = f"{results['latent_stats.scaling_factor']:.5g}"
    assert f"scaling_factor {results['latent_stats.scaling_factor']:.4g} (se " in printed
    assert "configured scaling_factor 0.3611, configured shift_factor 0.1159" in printed
    assert f'config.json: "scaling_factor": {scale} (SD), or "scaling_factor": {scale}, "shift_factor": ' in printed
    assert '"latents_mean": [' in printed and 'with "scaling_factor": 1.0' in printed
