"""Probe pretrained autoencoders: anything with encode(x) -> (mu, logvar) can be analysed.

`DiffusersAutoencoder` adapts a diffusers AutoencoderKL (the VAE of Stable Diffusion and FLUX) to
that protocol (`PosteriorEncoder`): images in [0, 1] go in as [-1, 1], `latent_dist.mean` and
`.logvar` come out. The latents are the raw ones the KL term regularised during the VAE's training
(not multiplied by the diffusion `scaling_factor`), so rate and KL against N(0, I) mean what they
meant in training. `describe()` records the scaling factors its config.json declares, which an analysis
sets beside the ones it measures (`latent_stats.*`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vaelens.errors import MissingDependency, UnsafePickle
from vaelens.io import read_json
from vaelens.models.base import PosteriorEncoder

CONFIGURED_FACTORS = ("scaling_factor", "shift_factor", "latents_mean", "latents_std")
"""AutoencoderKL config.json entries that rescale its latents for a diffusion model."""


def _plain(value):
    """A config entry as JSON: a float, a list of floats, or None."""
    if value is None:
        return None
    return [float(item) for item in value] if isinstance(value, (list, tuple)) else float(value)


class DiffusersAutoencoder(nn.Module, PosteriorEncoder):
    """A diffusers AutoencoderKL seen as a PosteriorEncoder on `image_size` x `image_size` images."""

    def __init__(self, autoencoder: nn.Module, image_size: int):
        super().__init__()
        config = autoencoder.config
        downsampling = downsampling_of(config.block_out_channels)
        if image_size % downsampling:
            raise ValueError(f"this AutoencoderKL downsamples by {downsampling}; image size {image_size} "
                             "is not divisible by it")
        self.autoencoder = autoencoder.eval()
        self.image_shape = (config.in_channels, image_size, image_size)
        self.latent_shape = (config.latent_channels, image_size // downsampling, image_size // downsampling)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"the AutoencoderKL expects images of shape (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}; set data.image_size / data.grayscale to match")
        dtype = next(self.autoencoder.parameters()).dtype
        distribution = self.autoencoder.encode((2 * x - 1).to(dtype)).latent_dist
        return distribution.mean.float(), distribution.logvar.float()

    def reconstruct(self, z: torch.Tensor) -> torch.Tensor:
        dtype = next(self.autoencoder.parameters()).dtype
        return ((self.autoencoder.decode(z.to(dtype)).sample.float() + 1) / 2).clamp(0, 1)

    def describe(self) -> dict:
        """What the model is, and the latent scale its config.json declares for diffusion (beside the measured
        latent_stats.* of an analysis): scaling_factor, and shift_factor, latents_mean, latents_std where set."""
        config = self.autoencoder.config
        configured = {f"configured_{name}": _plain(getattr(config, name, None)) for name in CONFIGURED_FACTORS}
        return {"model": "diffusers AutoencoderKL", "latent_shape": list(self.latent_shape),
                "latents": "raw latent_dist (scaling_factor not applied)",
                **{key: value for key, value in configured.items() if value is not None}}


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _refuse_pickled_weights(folder: Path) -> None:
    """Refuse, in one line, a model folder whose weights exist only as a pickle: vaelens reads safetensors."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(path for path in folder.iterdir() if path.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise UnsafePickle(pickled[0], "model (AutoencoderKL.from_pretrained, then save_pretrained)")
    raise FileNotFoundError(f"{folder} holds no diffusion_pytorch_model.safetensors weights")


def _model_folder(path: str | Path) -> tuple[Path, str | None]:
    """(folder, subfolder) of an AutoencoderKL: a VAE folder, or a pipeline folder with vae/."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"no diffusers model folder at {folder}")
    subfolder = "vae" if (folder / "vae" / "config.json").is_file() else None
    if not (folder / (subfolder or "") / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no AutoencoderKL config.json (nor vae/config.json)")
    return folder, subfolder


def downsampling_of(block_out_channels) -> int:
    """How much an AutoencoderKL with these blocks shrinks each side: every block but the last halves it."""
    return 2 ** (len(block_out_channels) - 1)


def autoencoder_config(path: str | Path) -> dict:
    """The config.json of an AutoencoderKL folder (or of a pipeline's vae/), read without loading the weights."""
    folder, subfolder = _model_folder(path)
    return read_json(folder / (subfolder or "") / "config.json")


def load_diffusers_autoencoder(path: str | Path, image_size: int, device="cpu") -> DiffusersAutoencoder:
    """Load an AutoencoderKL from a local folder (a VAE folder, or a pipeline folder with vae/)."""
    try:
        from diffusers import AutoencoderKL
    except ImportError as error:
        raise MissingDependency("probing diffusers models needs the optional extra: "
                                "pip install 'vaelens[diffusers]'") from error
    folder, subfolder = _model_folder(path)
    _refuse_pickled_weights(folder / (subfolder or ""))
    # use_safetensors: diffusers would otherwise fall back to unpickling a .bin file
    autoencoder = AutoencoderKL.from_pretrained(str(folder), subfolder=subfolder, local_files_only=True,
                                                use_safetensors=True)
    return DiffusersAutoencoder(autoencoder, image_size).to(device)
