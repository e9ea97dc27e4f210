"""LPIPS networks (the `lpips` package) with offline backbones.

LPIPS needs ImageNet-trained torchvision backbones that cannot be downloaded in an offline setting;
`build_lpips` loads them from the torch hub cache where a user has put them and raises
`MissingBackboneError` (naming the exact file) where not, or `CorruptBackboneError` where the file
there cannot be read as that backbone. It never lets torchvision download.
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings

import torch

RANDOM_BACKBONE_SEED = 0
"""Seed of the random LPIPS backbone (`pnet_rand=True`), so test values are reproducible."""
TORCHVISION_MODELS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
"""torchvision model behind each LPIPS backbone name."""
LPIPS_NETS = tuple(TORCHVISION_MODELS)
"""The LPIPS backbone names."""
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16, "squeeze": 17}
"""Smallest image side each LPIPS trunk accepts (below it a pooling layer has no output; found by running them)."""


class MissingBackboneError(FileNotFoundError):
    """The ImageNet weights of an LPIPS backbone are not in the torch hub cache (and may not be downloaded)."""


class CorruptBackboneError(ValueError):
    """The LPIPS backbone file in the torch hub cache exists but cannot be read as that backbone."""


def _torchvision_weights(net: str):
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights

    return {
        "alex": AlexNet_Weights.IMAGENET1K_V1,
        "vgg": VGG16_Weights.IMAGENET1K_V1,
        "squeeze": SqueezeNet1_1_Weights.IMAGENET1K_V1,
    }[net]


def check_lpips_net(net: str) -> None:
    """Raise a ValueError naming the choices unless `net` is an LPIPS backbone name."""
    if net not in LPIPS_NETS:
        raise ValueError(f"net must be one of {LPIPS_NETS}, got {net!r}")


def lpips_backbone_path(net: str = "alex") -> str:
    """Where torchvision keeps the ImageNet weights of LPIPS backbone `net`: <torch hub dir>/checkpoints/<file>.

    The file may or may not exist; `build_lpips` checks.
    """
    check_lpips_net(net)
    filename = os.path.basename(_torchvision_weights(net).url)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def lpips_metric_name(net: str = "alex", pnet_rand: bool = False) -> str:
    """Name to report an LPIPS value under; a random backbone is labelled loudly, it is not LPIPS proper."""
    check_lpips_net(net)
    return f"lpips_{net}_RANDOM_backbone" if pnet_rand else f"lpips_{net}"


def _fetch_instructions(net: str, path: str) -> str:
    """How to get a good copy of backbone `net`'s file onto this machine (which cannot download it)."""
    return ("On a connected machine run: python -c \"import torchvision; "
            f"torchvision.models.get_model('{TORCHVISION_MODELS[net]}', weights='IMAGENET1K_V1')\" "
            "and copy the file from that machine's "
            f"~/.cache/torch/hub/checkpoints/ into '{os.path.dirname(path)}' (or set TORCH_HOME).")


def build_lpips(net: str = "alex", pnet_rand: bool = False) -> torch.nn.Module:
    """Return a frozen, eval-mode `lpips.LPIPS` module (v0.1 linear heads), cached per backbone file.

    pnet_rand=False loads the ImageNet backbone from `lpips_backbone_path(net)`; it raises
    MissingBackboneError if that file is absent (nothing is downloaded) and CorruptBackboneError if
    it cannot be read as that backbone. pnet_rand=True uses a randomly initialised backbone (seeded
    with RANDOM_BACKBONE_SEED): only for tests and smoke runs, and reported under
    `lpips_metric_name(net, pnet_rand=True)`.
    The module is shared between callers: move it with `.to(device)`, do not modify its weights.
    """
    check_lpips_net(net)
    if pnet_rand:
        return _build_lpips_cached(net, None)
    path = lpips_backbone_path(net)
    if not os.path.isfile(path):
        raise MissingBackboneError(
            f"LPIPS backbone '{net}' needs the torchvision ImageNet weights file "
            f"'{os.path.basename(path)}' in '{os.path.dirname(path)}', and it is not there (this "
            f"environment cannot download it). {_fetch_instructions(net, path)} "
            "For tests only, pnet_rand=True uses a random backbone."
        )
    return _build_lpips_cached(net, path)


@functools.lru_cache(maxsize=8)
def _build_lpips_cached(net: str, backbone_path: str | None) -> torch.nn.Module:
    import lpips

    # Always construct with a random trunk so torchvision never attempts a download; the
    # ImageNet weights, when wanted, are copied in from the checked local file below. The
    # warnings filter hides torchvision's deprecation notice for lpips' legacy `pretrained=` call.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(RANDOM_BACKBONE_SEED)
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if backbone_path is not None:
        _load_backbone(model.net, net, backbone_path)
    model.eval()
    model.requires_grad_(False)
    return model


def _corrupt(net: str, path: str, reason: str) -> CorruptBackboneError:
    return CorruptBackboneError(
        f"LPIPS backbone '{net}': the file '{path}' {reason}. Delete it and put a good copy in its place. "
        f"{_fetch_instructions(net, path)}"
    )


def _load_failure(error: BaseException) -> str:
    """Why torch.load failed, in one short clause (its unpickling message advises unsafe loading: left out)."""
    if isinstance(error, pickle.UnpicklingError):
        return "UnpicklingError: its contents are not a saved state dict"
    sentence = str(error).strip().split("\n")[0].split(". ")[0]
    return f"{type(error).__name__}: {sentence or 'the file is empty or cut short'}"


def _load_backbone(trunk: torch.nn.Module, net: str, path: str) -> None:
    """Copy torchvision `features.<i>.*` weights into the lpips trunk, whose slices keep the index names."""
    # A partial copy, an error page saved under the file's name or another model's weights all end
    # up here; each becomes one CorruptBackboneError that says what to do, not torch's traceback.
    # Every exception is caught: on arbitrary bytes torch's unpickler fails in arbitrary ways
    # (IndexError, KeyError, struct.error, ... besides UnpicklingError and zip-reader RuntimeErrors).
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise _corrupt(net, path, f"is not a readable torch checkpoint ({_load_failure(error)})") from error
    if not isinstance(state, dict):
        raise _corrupt(net, path, f"holds a {type(state).__name__}, not the state dict of a torchvision model")
    remapped = {}
    for slice_name, block in trunk.named_children():
        for key, expected in block.state_dict().items():
            found = state.get(f"features.{key}")
            if found is None:
                raise _corrupt(net, path, f"lacks 'features.{key}': it is not the torchvision checkpoint LPIPS expects")
            if not isinstance(found, torch.Tensor) or found.shape != expected.shape:
                shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
                raise _corrupt(net, path, f"holds 'features.{key}' as {shape} where this backbone has "
                                          f"{tuple(expected.shape)}: it is another model's checkpoint")
            remapped[f"{slice_name}.{key}"] = found
    trunk.load_state_dict(remapped, strict=True)


def lpips_between(model: torch.nn.Module, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image distance (N,) of an `lpips.LPIPS` module between images in [0, 1] with 1 or 3 channels.

    LPIPS takes 3-channel images in [-1, 1]: single-channel images are repeated to 3 channels and
    both are mapped with 2x - 1. LPIPS is symmetric in its two arguments. Gradients flow to x_hat.
    """
    if x.shape[1] == 1:
        x, x_hat = x.expand(-1, 3, -1, -1), x_hat.expand(-1, 3, -1, -1)
    return model(2 * x - 1, 2 * x_hat - 1).flatten()
