"""The resnet model computes what latent-diffusion's autoencoder computes: one-sided downsampler padding, one
GroupNorm group count, and the network on [-1, 1] images behind vaelens's [0, 1] interface."""

import pytest
import torch
from torch import nn

from vaelens.models import ResNetVAE
from vaelens.models.resnet import Downsample


def test_the_downsampler_pads_only_right_and_bottom():
    downsample = Downsample(1)
    with torch.no_grad():  # a kernel that copies its window's top-left pixel
        downsample.conv.weight.zero_()
        downsample.conv.weight[0, 0, 0, 0] = 1.0
        downsample.conv.bias.zero_()
    x = torch.rand(2, 1, 8, 8)
    # the window of output (i, j) starts at input (2i, 2j); a symmetric padding would start it at (2i-1, 2j-1)
    torch.testing.assert_close(downsample(x), x[..., ::2, ::2])


@pytest.mark.parametrize("channels,multipliers,groups", [(8, (1, 2, 2), 8), (32, (1, 2, 2, 4), 32), (24, (1, 2), 8)])
def test_every_group_norm_has_the_same_group_count(channels, multipliers, groups):
    model = ResNetVAE((3, 32, 32), 4, channels, multipliers)
    counts = {module.num_groups for module in model.modules() if isinstance(module, nn.GroupNorm)}
    assert counts == {groups} and model.norm_groups == groups


def test_the_network_works_on_minus_one_to_one_behind_a_zero_to_one_interface():
    torch.manual_seed(0)
    model = ResNetVAE((3, 16, 16), 4, 8, (1, 2)).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        network_mu, network_logvar = model.encoder(2 * x - 1).chunk(2, dim=1)
        torch.testing.assert_close(mu, network_mu)
        torch.testing.assert_close(logvar, network_logvar.clamp(-30, 20))
        torch.testing.assert_close(model.decode(mu), (model.decoder(mu) + 1) / 2)
