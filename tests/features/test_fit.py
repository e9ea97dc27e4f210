"""Fitting feature networks on tiny real data: each method learns, errors are clear, results are deterministic."""

from __future__ import annotations

import pytest
import torch

from vaelens.config import DataConfig
from vaelens.features import FeatureNetwork, fit_feature_network
from vaelens.features.augment import colour_jitter, contrastive_view, corrupt, random_resized_crop_and_flip
from vaelens.features.objectives import alignment, nt_xent, retrieval_top1

TINY_DSPRITES = DataConfig(name="dsprites", subset=512)
TINY_NATURAL = DataConfig(name="natural", image_size=32, subset=512)
SMALL_WIDTHS = (16, 32, 32)


def test_supervised_beats_chance_on_position_and_lowers_cross_entropy():
    network, metadata = fit_feature_network(TINY_DSPRITES, "supervised", steps=60, batch_size=32, lr=3e-3,
                                            progress=False, widths=SMALL_WIDTHS, eval_images=256)
    held_out, before = metadata["held_out"], metadata["held_out_at_init"]
    assert set(held_out["accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    assert held_out["loss"] < before["loss"] - 0.2
    assert metadata["objective_value"]["final"] < metadata["objective_value"]["first_step"]
    # 32 position classes: chance (the majority class of the held-out sample) is about 1/32.
    for factor in ("posX", "posY"):
        assert held_out["accuracy"][factor] > 2 * held_out["chance_accuracy"][factor]
    assert metadata["method"] == "supervised" and metadata["in_channels"] == 1 and metadata["image_size"] == 64
    assert metadata["widths"] == list(SMALL_WIDTHS)
    assert metadata["torch_threads"] == torch.get_num_threads()
    assert not network.training and not any(p.requires_grad for p in network.parameters())


def test_denoising_restores_better_than_the_corrupted_input():
    _, metadata = fit_feature_network(TINY_NATURAL, "denoising", steps=50, batch_size=32, lr=3e-3,
                                      progress=False, widths=SMALL_WIDTHS, eval_images=128)
    held_out = metadata["held_out"]
    assert held_out["reconstruction_mse"] < metadata["held_out_at_init"]["reconstruction_mse"]
    assert held_out["reconstruction_mse"] < held_out["identity_mse"]
    assert metadata["in_channels"] == 3 and metadata["image_size"] == 32


def test_contrastive_lowers_held_out_nt_xent():
    _, metadata = fit_feature_network(TINY_NATURAL, "contrastive", steps=30, batch_size=32, lr=3e-3,
                                      progress=False, widths=SMALL_WIDTHS, eval_images=128)
    held_out = metadata["held_out"]
    assert held_out["loss"] < metadata["held_out_at_init"]["loss"]
    assert held_out["chance_retrieval"] == pytest.approx(1 / 128)
    assert 0.0 <= held_out["retrieval_top1"] <= 1.0 and 0.0 <= held_out["alignment"] <= 4.0


def test_fitting_is_deterministic_on_cpu():
    def fit():
        return fit_feature_network(TINY_NATURAL, "contrastive", steps=3, batch_size=16, progress=False,
                                   widths=(8, 8), eval_images=32, seed=7)

    (first, meta_first), (second, meta_second) = fit(), fit()
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert meta_first["held_out"] == meta_second["held_out"]


def test_supervised_on_data_without_factors_says_what_to_do():
    with pytest.raises(ValueError, match="has none; use method='denoising' or 'contrastive'"):
        fit_feature_network(TINY_NATURAL, "supervised", steps=1, progress=False)


@pytest.mark.parametrize("arguments, message", [
    ({"method": "jigsaw"}, "method must be one of"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"batch_size": 100_000}, "batch_size=100000 exceeds"),
])
def test_bad_arguments_are_named(arguments, message):
    settings = {"method": "denoising", "steps": 1, **arguments}
    with pytest.raises(ValueError, match=message):
        fit_feature_network(TINY_NATURAL, settings.pop("method"), settings.pop("steps"), progress=False, **settings)


def test_network_returns_one_activation_per_stage_and_checks_channels():
    network = FeatureNetwork(3, 32, widths=(4, 8, 16))
    activations = network(torch.rand(2, 3, 32, 32))
    assert [tuple(a.shape) for a in activations] == [(2, 4, 16, 16), (2, 8, 8, 8), (2, 16, 4, 4)]
    assert all(bool((a >= 0).all()) for a in activations)  # post-ReLU
    with pytest.raises(ValueError, match=r"takes images \(N, 3, H, W\)"):
        network(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="widths must be"):
        FeatureNetwork(3, 32, widths=())


def test_nt_xent_matches_its_closed_form_for_orthogonal_and_identical_pairs():
    # Partners identical and all pairs orthogonal: each row has one logit 1/t and 2N - 2 logits 0.
    count, temperature = 4, 0.5
    views = torch.eye(count)
    expected = -torch.log(torch.exp(torch.tensor(1 / temperature)) /
                          (torch.exp(torch.tensor(1 / temperature)) + 2 * count - 2))
    assert float(nt_xent(views, views, temperature)) == pytest.approx(float(expected), rel=1e-6)
    assert retrieval_top1(views, views) == 1.0 and alignment(views, views) == pytest.approx(0.0)
    assert alignment(views, -views) == pytest.approx(4.0)


def test_augmentations_stay_in_range_are_seeded_and_keep_shape():
    images = torch.rand(6, 3, 16, 16)
    for transform in (random_resized_crop_and_flip, colour_jitter, contrastive_view, corrupt):
        first = transform(images, torch.Generator().manual_seed(1))
        again = transform(images, torch.Generator().manual_seed(1))
        assert first.shape == images.shape and torch.equal(first, again)
        assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
        assert not torch.equal(first, images)


def test_full_window_crop_without_mirror_is_the_identity():
    images = torch.rand(1, 1, 8, 8)
    generator = torch.Generator().manual_seed(0)
    # area (1, 1) and aspect (1, 1) leave only the mirror to chance; compare with both outcomes.
    cropped = random_resized_crop_and_flip(images, generator, area=(1.0, 1.0), aspect=(1.0, 1.0))
    assert torch.allclose(cropped, images, atol=1e-5) or torch.allclose(cropped, images.flip(-1), atol=1e-5)
