import pytest
import torch

from vaelens.config import ModelConfig
from vaelens.models import MODELS, build_model

SHAPES = {"conv64": (1, 64, 64), "conv32": (3, 32, 32), "mlp": (1, 12, 12), "linear": (1, 8, 8),
          "resnet": (3, 32, 32)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes_and_last_layer(name):
    torch.manual_seed(0)
    config = ModelConfig(name=name, latent_dim=4, channels=8, hidden_dim=16, channel_multipliers=[1, 2, 2])
    model = build_model(config, SHAPES[name])
    x = torch.rand(3, *SHAPES[name])
    mu, logvar = model.encode(x)
    expected_latent = (4, 8, 8) if name == "resnet" else (4,)
    assert tuple(mu.shape) == (3, *expected_latent) == (3, *model.latent_shape)
    assert logvar.shape == mu.shape
    assert model.decode(mu).shape == x.shape
    assert model.latent_dim == torch.Size(expected_latent).numel()
    last = model.decoder_last_layer
    assert last.weight.requires_grad
    model.decode(mu).sum().backward()
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0


def test_wrong_image_shape_is_a_clear_error():
    model = build_model(ModelConfig(name="conv64"), (1, 64, 64))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 64, 64\), got \(2, 3, 64, 64\)"):
        model.encode(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="takes 64x64 images"):
        build_model(ModelConfig(name="conv64"), (1, 32, 32))
    with pytest.raises(ValueError, match="not divisible"):
        build_model(ModelConfig(name="resnet", channel_multipliers=[1, 2, 2]), (3, 30, 30))


def test_unknown_model_lists_registry():
    with pytest.raises(ValueError, match="conv64, conv32, mlp, linear, resnet"):
        build_model(ModelConfig(name="transformer"), (1, 64, 64))


def test_conv64_matches_burgess_architecture():
    model = build_model(ModelConfig(name="conv64"), (1, 64, 64))
    convs = [m for m in model.encoder_convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (4, 4), (2, 2))] * 4
    linears = [m for m in model.encoder_fc if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 256), (256, 20)]


def test_linear_vae_variance_does_not_depend_on_input():
    model = build_model(ModelConfig(name="linear", latent_dim=3), (1, 4, 4))
    _, logvar = model.encode(torch.randn(5, 1, 4, 4))
    assert torch.equal(logvar[0], logvar[4])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_saves_to_safetensors_without_shared_tensors(name, tmp_path):
    from safetensors.torch import load_file, save_file

    config = ModelConfig(name=name, latent_dim=4, channels=8, hidden_dim=16, channel_multipliers=[1, 2, 2])
    model = build_model(config, SHAPES[name])
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, tmp_path / "weights.safetensors")
    loaded = load_file(tmp_path / "weights.safetensors")
    assert set(loaded) == set(state)
    assert any(model.decoder_last_layer.weight is p for p in model.parameters())
