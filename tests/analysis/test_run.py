import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

import vaelens
from vaelens.analysis import run as run_module
from vaelens.cli import main
from vaelens.data import load_dataset
from vaelens.runs import load_run
from vaelens.sampling import random_subset

FIGURES = ("variance_profile.png", "covariance_spectrum.png", "kl_per_unit.png", "reconstructions.png")


def _documented(key: str) -> bool:
    """A key is documented when its section (text before the first dot) or its name is in the table."""
    if key.endswith("skipped"):
        return True
    name = key.split(".")[0] + ".*" if "." in key else key.removesuffix("_stderr")
    return re.search(rf"(^|[\s,|])({re.escape(name)})([\s,(|]|$)", run_module.__doc__, re.MULTILINE) is not None


def test_cli_analyze_writes_flat_documented_json_and_figures(trained_run, capsys):
    code = main(["analyze", str(trained_run), "--images", "64", "--quick", "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert "analysis written" in capsys.readouterr().out
    results = json.loads((trained_run / "analysis.json").read_text())
    assert all(not isinstance(value, dict) for value in results.values())
    undocumented = [key for key in results if not _documented(key)]
    assert not undocumented, f"keys missing from the analysis.run docstring table: {undocumented}"
    assert results["units"] == "nats" and results["objective.units"] == "nats"
    assert results["weighting_convention"] == results["objective.convention"] == "additive"
    assert results["num_images"] == 64 and results["latent_shape"] == [4]
    assert results["log_num_images"] == pytest.approx(math.log(64))
    assert results["mutual_information"] <= results["log_num_images"] + 1e-9
    assert results["rate"] == pytest.approx(sum(results["rate_per_unit"]))
    assert len(results["active_mask"]) == 4 and results["active_units"] == sum(results["active_mask"])
    for key in ("mutual_information_stderr", "total_correlation", "geometry.isoscore",
                "posterior_variance.normalized_entropy", "mean_variance.profile", "distortion.psnr",
                "distortion.ssim", "disentanglement.mig"):
        assert key in results, key
    assert results["disentanglement.quick"] is True
    # LPIPS is measured where its ImageNet backbone is installed, and otherwise says what is missing.
    assert "distortion.lpips_alex" in results or "LPIPS backbone" in results["distortion.lpips_alex_skipped"]
    assert results["distortion.effnet_lite0"] > 0  # the ImageNet distance installs with vaelens: always measured
    for name in FIGURES:
        with Image.open(trained_run / "analysis" / name) as figure:
            assert figure.format == "PNG" and min(figure.size) > 10
    assert not list((trained_run / "analysis").glob("*.tmp*"))


def test_python_analyze_matches_the_documented_contract(trained_run):
    loaded = load_run(trained_run)
    data = load_dataset(loaded.config.data, split="test")
    arguments = {"objective": loaded.objective, "max_images": 24, "disentanglement": False, "progress": False}
    first = vaelens.analyze(loaded.model, data, **arguments)
    again = vaelens.analyze(loaded.model, data, **arguments)
    assert first["mutual_information"] == again["mutual_information"], "a seed must reproduce the estimate"
    assert first["num_images"] == 24 and not any(key.startswith("disentanglement.") for key in first)
    assert first["rate_monte_carlo"] == pytest.approx(first["mutual_information"] + first["marginal_kl"])
    path = run_module.write_analysis(first, trained_run / "python", loaded.model, loaded.objective, data)
    assert json.loads(path.read_text())["rate"] == first["rate"]
    assert all((trained_run / "python" / "analysis" / name).is_file() for name in FIGURES)


def test_too_few_images_is_a_clear_error(trained_run):
    loaded = load_run(trained_run)
    data = load_dataset(loaded.config.data, split="test")
    with pytest.raises(ValueError, match="at least 2 images"):
        vaelens.analyze(loaded.model, data, objective=loaded.objective, max_images=1, progress=False)


def test_analysis_of_identical_codes_records_why_statistics_are_undefined(trained_run):
    loaded = load_run(trained_run)
    data = load_dataset(loaded.config.data, split="test")

    class Constant(torch.nn.Module):
        image_shape, latent_shape = (1, 64, 64), (3,)

        def encode(self, x):
            return torch.zeros(len(x), 3), torch.zeros(len(x), 3)

        def reconstruct(self, z):
            return torch.full((len(z), 1, 64, 64), 0.5)

    results = vaelens.analyze(Constant(), data, max_images=16, disentanglement=False, progress=False)
    assert results["active_units"] == 0 and results["rate"] == 0.0
    assert "zero variance" in results["geometry.skipped"]
    assert results["weighting_convention"] == "unknown (pretrained model)"


SHAPE = 0
"""Column of the shape factor (square, ellipse, heart) in dSprites factor classes."""


@pytest.fixture(scope="module")
def dsprites_analysis(trained_run, tmp_path_factory):
    """The tiny run analysed on its real dSprites test split (73,728 images, sorted by grid index)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(tmp_path_factory.mktemp("cache")))
        loaded = load_run(trained_run)
        data = load_dataset(loaded.config.data, split="test")
        results = vaelens.analyze(loaded.model, data, objective=loaded.objective, max_images=600,
                                  distortion_images=64, quick=True, seed=3, progress=False)
        yield loaded, data, results


def _encoded_indices(data, results):
    return random_subset(data.num_images, results["num_images"], results["seed"])


def test_distortions_are_scored_on_a_recorded_seeded_draw_over_every_shape(dsprites_analysis):
    loaded, data, results = dsprites_analysis
    encoded = _encoded_indices(data, results)
    assert results["distortion.num_images"] == 64 and results["distortion.seed"] == 3
    chosen = encoded[random_subset(len(encoded), results["distortion.num_images"], results["distortion.seed"])]
    # Storage order is grid order: the first 64 encoded images are squares only, the draw is not.
    assert data.factors.classes[encoded[:64], SHAPE].unique().tolist() == [0]
    assert data.factors.classes[chosen, SHAPE].unique().tolist() == [0, 1, 2]
    images = data.images(chosen)
    with torch.no_grad():
        reconstructions = torch.sigmoid(loaded.model.decode(loaded.model.encode(images)[0])).clamp(0, 1)
    squared_error = (images - reconstructions).square().flatten(1).sum(1).mean()
    assert results["distortion.mse_sum"] == pytest.approx(float(squared_error), rel=1e-5)


def test_disentanglement_trains_and_tests_on_a_recorded_random_split(dsprites_analysis):
    from vaelens.metrics.disentangle import dci

    loaded, data, results = dsprites_analysis
    encoded = _encoded_indices(data, results)
    assert results["disentanglement.num_codes"] == 600 and results["disentanglement.split_seed"] == 3
    train, test = run_module.disentanglement_split(600, results["disentanglement.split_seed"])
    assert (len(train), len(test)) == (results["disentanglement.num_train"], results["disentanglement.num_test"])
    shapes = data.factors.classes[encoded, SHAPE]
    # The halves of the storage order split the shapes; the random halves each hold all three.
    assert 2 not in shapes[:300] and 0 not in shapes[300:]
    assert shapes[train].unique().tolist() == shapes[test].unique().tolist() == [0, 1, 2]
    with torch.no_grad():
        codes = loaded.model.encode(data.images(encoded))[0]
    factors = data.factors.classes[encoded]
    again = dci(codes[train], factors[train], codes[test], factors[test], gbt_params={"n_estimators": 20}, seed=3)
    recorded = results["disentanglement.dci_informativeness_test"]
    assert again.scores["dci_informativeness_test"] == pytest.approx(recorded)


def test_reconstruction_figure_shows_a_seeded_draw_among_the_scored_images(dsprites_analysis):
    _, data, results = dsprites_analysis
    encoded = _encoded_indices(data, results)
    figure = results["reconstructions.indices"]
    assert figure == encoded[random_subset(len(encoded), 16, results["seed"])].tolist()
    scored = encoded[random_subset(len(encoded), results["distortion.num_images"], results["distortion.seed"])]
    assert set(figure) <= set(scored.tolist())
    assert len(data.factors.classes[figure, SHAPE].unique()) > 1


def test_auto_images_and_the_probe_write_documented_keys_and_a_probe_figure(trained_run, tmp_path):
    loaded = load_run(trained_run)
    data = load_dataset(loaded.config.data, split="test")
    results = vaelens.analyze(loaded.model, data, objective=loaded.objective, max_images="auto", distortion_images=16,
                              disentanglement=False, progress=False, probe=True, probe_images=16)
    undocumented = [key for key in results if not _documented(key)]
    assert not undocumented, f"keys missing from the analysis.run docstring table: {undocumented}"
    assert results["sample_size.rule"] == "auto" and results["num_images"] >= 2000
    assert results["log_num_images"] >= results["sample_size.target_log_num_images"]
    # Bernoulli on binary images: the curvature at the reconstruction, p (1 - p) per pixel, is finite.
    assert results["probe.metric_at"] == "reconstruction" and results["probe.num_images"] == 16
    assert all(np.isfinite(results["probe.curvature_profile"])) and len(results["probe.actual_profile"]) == 4
    assert results["probe.curvature_profile"] == sorted(results["probe.curvature_profile"], reverse=True)
    run_module.write_analysis(results, tmp_path, loaded.model, loaded.objective, data)
    with Image.open(tmp_path / "analysis" / "probe.png") as figure:
        assert figure.format == "PNG" and min(figure.size) > 10


CHANNEL_SCALES, CHANNEL_OFFSETS, POSTERIOR_STDS = (1.0, 3.0), (0.5, -2.0), (0.5, 2.0)


class GaussianLatents(torch.nn.Module):
    """mu = a_c x + m_c on N(0, I) pixels, sigma_c fixed: z of channel c is N(m_c, a_c^2 + sigma_c^2) exactly."""

    image_shape, latent_shape = (1, 4, 4), (2, 2, 4)

    def encode(self, x):
        pixels = x.reshape(len(x), 2, 2, 4)
        scale, offset = (torch.tensor(values).view(1, 2, 1, 1) for values in (CHANNEL_SCALES, CHANNEL_OFFSETS))
        logvar = (2 * torch.tensor(POSTERIOR_STDS).log()).view(1, 2, 1, 1).expand_as(pixels)
        return scale * pixels + offset, logvar

    def reconstruct(self, z):
        return torch.zeros(len(z), 1, 4, 4)


def test_latent_diffusion_statistics_of_known_gaussian_latents(tmp_path):
    from vaelens.config import DataConfig
    from vaelens.data.gaussian import write_gaussian_source

    source = write_gaussian_source(tmp_path / "pixels.npz", np.eye(16), num_samples=1000)
    data = load_dataset(DataConfig(name="gaussian", path=str(source), test_fraction=0.0), split="test")
    results = vaelens.analyze(GaussianLatents(), data, max_images=None, disentanglement=False, progress=False,
                              seed=2)
    scales, offsets, stds = (np.array(values) for values in (CHANNEL_SCALES, CHANNEL_OFFSETS, POSTERIOR_STDS))
    channel_variance = scales ** 2 + stds ** 2
    # Two equally sized channels pooled: the mean channel variance plus the spread of the channel means.
    std = math.sqrt(channel_variance.mean() + offsets.var())
    assert results["latent_stats.num_images"] == 1000 and results["latent_stats.seed"] == 2
    assert abs(results["latent_stats.scaling_factor"] - 1 / std) < 4 * results["latent_stats.scaling_factor_stderr"]
    assert abs(results["latent_stats.sample_std"] - std) < 4 * results["latent_stats.sample_std_stderr"]
    assert abs(results["latent_stats.shift_factor"] - offsets.mean()) < 4 * results["latent_stats.sample_mean_stderr"]
    assert results["latent_stats.mean_std"] == pytest.approx(math.sqrt((scales ** 2).mean() + offsets.var()), rel=0.03)
    assert results["latent_stats.channel_mean"] == pytest.approx(offsets.tolist(), abs=0.1)
    assert results["latent_stats.channel_std"] == pytest.approx(np.sqrt(channel_variance).tolist(), rel=0.03)
    assert "distortion_skipped" in results  # Gaussian pixels leave [0, 1]
