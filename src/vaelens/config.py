"""Run configuration: dataclasses with a docstring per field, YAML presets, dotted key=value overrides.

Every field is validated by type when it is set from YAML or the command line, and an unknown key
names itself and the valid keys, so a typo never silently trains the wrong model.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from vaelens.dotted import flatten_dotted


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message says which and why."""


@dataclass
class DataConfig:
    name: str = "dsprites"
    """Dataset: dsprites | natural | folder | npz | gaussian | mnist | fashion_mnist | cifar10 | celeba."""
    path: str | None = None
    """Image folder, .npz file or torchvision root; None uses the vaelens cache directory."""
    subset: int | None = None
    """Train on a fixed, seeded subset of this many images (None: all of them)."""
    image_size: int = 64
    """Side length in pixels the images are delivered at (natural: 64 or 32)."""
    grayscale: bool = False
    """Convert RGB sources to one channel."""
    test_fraction: float = 0.1
    """Held-out fraction for sources without a natural train/test split."""
    seed: int = 0
    """Seed for subsets and splits (training batches use train.seed)."""
    npz_key: str = "images"
    """Array key holding the images inside an .npz file."""


@dataclass
class ModelConfig:
    name: str = "conv64"
    """Architecture from the model registry: conv64 | conv32 | mlp | linear | resnet."""
    latent_dim: int = 10
    """Number of latent units (for resnet: latent channels of the C x h x w latent)."""
    channels: int = 32
    """Convolution channels (conv64/conv32) or base width (resnet)."""
    hidden_dim: int = 256
    """Width of the fully connected layers (conv64/conv32/mlp)."""
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2])
    """resnet: channel multiplier per resolution; each level after the first halves the size."""
    num_res_blocks: int = 1
    """resnet: residual blocks per resolution level."""


@dataclass
class LossConfig:
    likelihood: str = "bernoulli"
    """Pointwise reconstruction likelihood: gaussian | gaussian_learned | laplace | bernoulli."""
    beta: float = 1.0
    """Weight of KL(q(z|x) || N(0, I)), summed over latent units, against the per-image loss."""
    sigma: float = 1.0
    """Gaussian standard deviation, or the Laplace scale b, when not learned."""
    learned_sigma: str = "scalar"
    """gaussian_learned: one log-sigma for all pixels (scalar) or one per pixel (pixel)."""
    convention: str = "additive"
    """How terms combine (PAPER.md section 1): additive | convex | ldm."""
    perceptual: str | None = None
    """Perceptual term: lpips-vgg | lpips-alex | lpips-squeeze | features:NAME_OR_FILE | None."""
    perceptual_weight: float = 1.0
    """w_p: weight of the per-image perceptual distance (additive, ldm)."""
    neural_fraction: float = 0.5
    """a of the convex convention: (1 - a) * pixel + a * neural."""
    lpips_random_backbone: bool = False
    """LPIPS with a random backbone: for tests only, labelled as such in every result."""
    disc_weight: float = 0.0
    """Weight of the adversarial term (0: no discriminator)."""
    adaptive_disc_weight: bool = True
    """Scale the adversarial term by ||grad nll|| / ||grad g|| at the decoder's last layer."""
    disc_start: int = 0
    """Step from which the discriminator trains and the adversarial term is on."""
    disc_loss: str = "hinge"
    """Discriminator loss: hinge | non_saturating."""
    disc_channels: int = 64
    """ndf: channels of the PatchGAN discriminator's first layer."""
    disc_layers: int = 3
    """Stride-2 layers of the PatchGAN discriminator."""
    disc_norm: str = "batch"
    """Discriminator normalisation: batch | none."""
    disc_lr: float = 1e-4
    """Learning rate of the discriminator's Adam (betas 0.5, 0.9)."""
    disc_r1: float = 0.0
    """gamma of an R1 gradient penalty on real images (0: off)."""
    ssim_weight: float = 0.0
    """Weight of the structural term 1 - SSIM per image (0: off)."""
    ssim_kind: str = "ssim"
    """Structural term: ssim | ms_ssim (MS-SSIM needs images of at least 176 pixels)."""
    logvar_init: float = 0.0
    """ldm: initial value of the learned scalar log-variance s."""
    metric: str | None = None
    """gaussian only: .npy file with a positive-definite (D, D) M over flattened pixels; the distortion
    becomes (x - x̂)^T M (x - x̂) / (2 sigma^2) (the linear theory's d_M; None: M = I)."""


@dataclass
class TrainConfig:
    steps: int = 20000
    """Optimisation steps (one batch each)."""
    batch_size: int = 64
    """Images per step."""
    lr: float = 1e-4
    """Adam learning rate."""
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """Adam (beta1, beta2)."""
    grad_clip: float | None = None
    """Clip the global gradient norm to this value (None: no clipping)."""
    seed: int = 0
    """Seed for initial weights, batch order and reparameterisation noise."""
    device: str = "auto"
    """cpu | cuda | cuda:N | auto (cuda when available)."""
    bf16: bool = False
    """bf16 autocast on CUDA (ignored on CPU) for the model's forward pass and the perceptual network;
    pixel, KL and adversarial terms are computed in float32."""
    channels_last: bool = True
    """Keep images and convolution weights in channels-last (NHWC) layout: the layout bf16 tensor-core
    convolutions prefer on GPUs; on a 2-core CPU (oneDNN) conv64 steps at batch 256 run 1.5x faster,
    at batch 64 and for the resnet model no faster. No effect on models without convolutions. Same results up to floating-point rounding.
    The ensemble trainer applies it to looped members (the CPU default: each member's slice of a stacked
    weight gets channels-last strides), not to vmapped ones."""
    cuda_graph: bool = False
    """GPU fast path: capture the whole step (forward, backward, Adam) in one CUDA graph after 3 eager
    warm-up steps and replay it, removing the per-kernel launch cost that bounds small models. CUDA only;
    not with an adversarial term (its discriminator step and disc_start switch run on the host). A
    non-finite loss is then found at the next log or checkpoint step rather than at once; the run still
    stops naming the first bad step, and no checkpoint holds weights updated with it."""
    log_every: int = 100
    """Steps between metrics.jsonl records and progress-bar updates."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (a final one is always written)."""
    eval_images: int = 64
    """Images in the reconstruction grid and in the final evaluation of the summary."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    """Where the images come from."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Encoder/decoder architecture."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Reconstruction loss, its weighting convention and beta."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation and bookkeeping."""


def to_dict(config) -> dict:
    """Plain nested dict of a config dataclass (YAML/JSON friendly)."""
    return dataclasses.asdict(config)


def field_docs(cls) -> dict[str, str]:
    """Field name -> docstring, read from the string literal that follows each field in the source."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            if isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
                docs[node.target.id] = following.value.value
    return docs


def _coerce(value, annotation, key: str):
    """Check `value` against a field annotation, converting where it is lossless (int -> float)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: {value!r} is not allowed")
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{key} expects a list of {item_type.__name__}, got {value!r}")
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} expects a number (float), got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} expects an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} expects true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} expects a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {annotation}")


def _apply(config, key: str, value) -> None:
    """Set a dotted key on a nested config dataclass, validating the key and the value's type."""
    parts = key.split(".")
    target = config
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(type(target))
        if part not in hints:
            prefix = ".".join(parts[:depth])
            valid = ", ".join(f"{prefix + '.' if prefix else ''}{name}" for name in hints)
            raise ConfigError(f"unknown config key '{key}'; valid keys here: {valid}")
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(hints[part]):
                raise ConfigError(f"'{key}' is a section; set one of its keys, e.g. {key}.<name>")
            setattr(target, part, _coerce(value, hints[part], key))
        else:
            target = getattr(target, part)
            if not dataclasses.is_dataclass(target):
                raise ConfigError(f"'{'.'.join(parts[: depth + 1])}' is a value, not a section")


def update(config: RunConfig, values: dict) -> RunConfig:
    """Apply a (nested or dotted) mapping of values to `config` in place and return it."""
    for key, value in flatten_dotted(values).items():
        _apply(config, key, value)
    return config


def from_dict(values: dict) -> RunConfig:
    """Build a RunConfig from defaults plus a nested mapping (as saved in a run's config.yaml)."""
    return update(RunConfig(), values)


def parse_override(text: str) -> tuple[str, object]:
    """Split 'a.b=value' and parse the value as YAML (so 4 is an int, 1e-4 a float, null None)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value, e.g. loss.beta=4")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    # YAML 1.1 reads "1e-4" as a string; accept it as the number a user meant.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key.strip(), value


def preset_names() -> list[str]:
    """Names of the YAML presets shipped with vaelens."""
    folder = resources.files("vaelens") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(values).__name__}")
    return values


def load_preset(name: str) -> dict:
    """The mapping stored in a shipped preset."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; available presets: {', '.join(preset_names())}")
    resource = resources.files("vaelens") / "configs" / f"{name}.yaml"
    return yaml.safe_load(resource.read_text()) or {}


def resolve(preset: str | None = None, config_file: str | Path | None = None,
            overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Defaults, then a preset, then a YAML file, then key=value overrides, in that order."""
    config = RunConfig()
    if preset:
        update(config, load_preset(preset))
    if config_file:
        update(config, load_yaml(config_file))
    for text in overrides:
        _apply(config, *parse_override(text))
    return config


EXECUTION_ONLY_KEYS = ("train.channels_last", "train.cuda_graph")
"""Settings that choose how the same computation runs (memory layout, graph replay), not what it
computes: results agree up to floating-point rounding. They are left out of `config_hash`, so a sweep
finished on the plain path is not retrained when the fast path is switched on, and a run may be resumed
with them changed."""


def config_hash(config) -> str:
    """A short, stable hash of the resolved config, EXECUTION_ONLY_KEYS left out (names run directories;
    equal configs share it)."""
    import hashlib
    import json

    values = to_dict(config)
    for key in EXECUTION_ONLY_KEYS:
        section, name = key.split(".")
        values[section].pop(name, None)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def save_yaml(config, path: str | Path) -> None:
    """Write the fully resolved config atomically."""
    from vaelens.io import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))
