"""The real perceptual terms: values by hand, gradients reach the decoder, the networks stay frozen."""

import pytest
import torch

from vaelens.config import LossConfig
from vaelens.features import FeatureNetwork, save_feature_network
from vaelens.losses import build_objective
from vaelens.losses.perceptual import build_perceptual


@pytest.fixture
def feature_file(tmp_path):
    torch.manual_seed(0)
    network = FeatureNetwork(1, 16, widths=(4, 8))
    return network, save_feature_network(network, {"method": "random (test)", "held_out": None},
                                         tmp_path / "net.safetensors")


def test_features_term_by_hand(feature_file):
    network, path = feature_file
    term = build_perceptual(f"features:{path}", False, (1, 16, 16), "cpu")
    x, x_hat = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    expected = torch.zeros(2)
    for fx, fh in zip(network(x), network(x_hat)):
        nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nh = fh / (fh.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        expected += (nx - nh).pow(2).sum(1).mean((1, 2))
    torch.testing.assert_close(term(x, x_hat), expected)
    assert term.describe()["perceptual"] == f"features:{path}"


def test_lpips_term_equals_the_lpips_module_on_minus_one_to_one_inputs():
    from vaelens.distances.lpips import build_lpips

    term = build_perceptual("lpips-alex", True, (3, 32, 32), "cpu")
    x, x_hat = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(term(x, x_hat), build_lpips("alex", pnet_rand=True)(2 * x - 1, 2 * x_hat - 1).flatten())


@pytest.mark.parametrize("spec", ["features", "lpips-alex"])
def test_gradient_reaches_the_decoder_through_a_frozen_network(spec, feature_file, tmp_path):
    _, path = feature_file
    perceptual = f"features:{path}" if spec == "features" else spec
    torch.manual_seed(1)
    decoder = torch.nn.Sequential(torch.nn.Linear(3, 32 * 32), torch.nn.Unflatten(1, (1, 32, 32)))
    config = LossConfig(likelihood="gaussian", convention="convex", neural_fraction=1.0, perceptual=perceptual,
                        lpips_random_backbone=True)
    objective = build_objective(config, (1, 32, 32))
    x, z = torch.rand(2, 1, 32, 32), torch.randn(2, 3)
    terms = objective(x, decoder(z), z, torch.zeros_like(z))
    terms.distortion.backward()
    assert float(decoder[0].weight.grad.abs().sum()) > 0
    # The feature network is neither trained nor stored with the objective.
    assert not any(key.startswith("perceptual") for key in objective.state_dict())
    assert objective.generator_parameters() == []
