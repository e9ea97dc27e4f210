"""The run configuration: one dataclass per section, a docstring and a role (fields.py) per field.

Enum-like settings are `Literal` types, so a typo fails when the config is read, before any data
loads; numeric settings carry a check, so a nonsensical value (a zero latent size, a NaN beta) is
refused at the same moment, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vaelens.config.fields import (
    adam_beta,
    at_least,
    bookkeeping,
    each,
    execution,
    fraction,
    non_negative,
    positive,
    proper_fraction,
    result,
    seed_value,
    weight_or_auto,
)

DatasetName = Literal["dsprites", "natural", "folder", "npz", "gaussian", "mnist", "fashion_mnist", "cifar10",
                      "celeba"]
ModelName = Literal["conv64", "conv32", "mlp", "linear", "resnet"]
LikelihoodName = Literal["gaussian", "gaussian_learned", "laplace", "bernoulli"]
Convention = Literal["additive", "convex", "ldm"]
LearnedSigma = Literal["scalar", "pixel"]
DiscriminatorLoss = Literal["hinge", "non_saturating"]
DiscriminatorNorm = Literal["batch", "none"]
StructuralKind = Literal["ssim", "ms_ssim"]
LearningRateSchedule = Literal["constant", "cosine"]


@dataclass
class DataConfig:
    name: DatasetName = result("dsprites")
    """Dataset: dsprites | natural | folder | npz | gaussian | mnist | fashion_mnist | cifar10 | celeba."""
    path: str | None = result(None)
    """Image folder, .npz file or torchvision root; None uses the vaelens cache directory."""
    subset: int | None = result(None, check=at_least(1))
    """Train on a fixed, seeded subset of this many images (None: all of them)."""
    image_size: int = result(64, check=at_least(1))
    """Side length in pixels the images are delivered at (natural: 64 or 32)."""
    grayscale: bool = result(False)
    """Convert RGB sources to one channel."""
    test_fraction: float = result(0.1, check=proper_fraction)
    """Held-out fraction for sources without a natural train/test split."""
    seed: int = result(0, check=seed_value)
    """Seed for subsets and splits (training batches use train.seed)."""
    npz_key: str = result("images")
    """Array key holding the images inside an .npz file."""


@dataclass
class ModelConfig:
    name: ModelName = result("conv64")
    """Architecture from the model registry: conv64 | conv32 | mlp | linear | resnet."""
    latent_dim: int = result(10, check=at_least(1))
    """Number of latent units (for resnet: latent channels of the C x h x w latent)."""
    channels: int = result(32, check=at_least(1))
    """Convolution channels (conv64/conv32) or base width (resnet)."""
    hidden_dim: int = result(256, check=at_least(1))
    """Width of the fully connected layers (conv64/conv32/mlp)."""
    channel_multipliers: list[int] = result(factory=lambda: [1, 2, 2], check=each(at_least(1)))
    """resnet: channel multiplier per resolution; each level after the first halves the size."""
    num_res_blocks: int = result(1, check=at_least(1))
    """resnet: residual blocks per resolution level."""


@dataclass
class LossConfig:
    likelihood: LikelihoodName = result("bernoulli")
    """Pointwise reconstruction likelihood: gaussian | gaussian_learned | laplace | bernoulli."""
    beta: float = result(1.0, check=non_negative, per_member=True)
    """Weight of KL(q(z|x) || N(0, I)), summed over latent units, against the per-image loss."""
    sigma: float = result(1.0, check=positive)
    """Gaussian standard deviation, or the Laplace scale b, when not learned."""
    learned_sigma: LearnedSigma = result("scalar")
    """gaussian_learned: one log-sigma for all pixels (scalar) or one per pixel (pixel)."""
    convention: Convention = result("additive")
    """How terms combine (docs/science.md, "Objectives and weighting conventions"): additive | convex | ldm."""
    perceptual: str | None = result(None, term="perceptual")
    """Perceptual term: lpips-vgg | lpips-alex | lpips-squeeze | effnet-lite0 (ImageNet EfficientNet-Lite0, offline,
    uncalibrated LPIPS-style) | features:NAME_OR_FILE | None."""
    perceptual_weight: float | Literal["auto"] = result(1.0, check=weight_or_auto, term="perceptual")
    """w_p: weight of the per-image perceptual distance, in every convention. "auto" measures it before
    training: the w_p that gives w_p * d_perc the pixel term's average curvature (trace of the Hessian in
    x̂, Hutchinson estimate on a seeded batch of training images; recorded in summary.json)."""
    neural_fraction: float = result(0.5, check=fraction, term="neural")
    """a of the convex convention: (1 - a) * pixel + a * w_p * neural."""
    lpips_random_backbone: bool = result(False, term="perceptual")
    """LPIPS with a random backbone: for tests only, labelled as such in every result."""
    disc_weight: float = result(0.0, check=non_negative, term="adversarial")
    """Weight of the adversarial term (0: no discriminator)."""
    adaptive_disc_weight: bool = result(True, term="adversarial")
    """Scale the adversarial term by ||grad nll|| / ||grad g|| at the decoder's last layer."""
    disc_start: int = result(0, check=at_least(0), term="adversarial")
    """Step from which the discriminator trains and the adversarial term is on."""
    disc_loss: DiscriminatorLoss = result("hinge", term="adversarial")
    """Discriminator loss: hinge | non_saturating."""
    disc_channels: int = result(64, check=at_least(1), term="adversarial")
    """ndf: channels of the PatchGAN discriminator's first layer."""
    disc_layers: int = result(3, check=at_least(1), term="adversarial")
    """Stride-2 layers of the PatchGAN discriminator."""
    disc_norm: DiscriminatorNorm = result("batch", term="adversarial")
    """Discriminator normalisation: batch | none."""
    disc_lr: float = result(1e-4, check=positive, term="adversarial")
    """Learning rate of the discriminator's Adam (betas 0.5, 0.9)."""
    disc_r1: float = result(0.0, check=non_negative, term="adversarial")
    """gamma of an R1 gradient penalty on real images (0: off)."""
    ssim_weight: float = result(0.0, check=non_negative, term="structural")
    """Weight of the structural term 1 - SSIM per image (0: off)."""
    ssim_kind: StructuralKind = result("ssim", term="structural")
    """Structural term: ssim | ms_ssim (MS-SSIM needs images of at least 176 pixels)."""
    logvar_init: float = result(0.0)
    """ldm: initial value of the scalar log-variance s."""
    logvar_learned: bool = result(True, added_later=True)
    """ldm: train s with the autoencoder (true), or keep it at logvar_init (false), as latent-diffusion's own
    training does: its LPIPSWithDiscriminator declares s a parameter, but the autoencoder's optimiser is built
    from the encoder, decoder and quant convolutions only, so s never moves from logvar_init."""
    metric: str | None = result(None)
    """gaussian only: .npy file with a positive-definite (D, D) M over flattened pixels; the distortion
    becomes (x - x̂)^T M (x - x̂) / (2 sigma^2) (the linear theory's d_M; None: M = I)."""


@dataclass
class TrainConfig:
    steps: int = result(20000, check=at_least(1), resumable=True)
    """Optimisation steps (one batch each); may be raised when a run is resumed, to extend it."""
    batch_size: int = result(64, check=at_least(1))
    """Images per step."""
    lr: float = result(1e-4, check=positive)
    """Adam learning rate (the peak of a schedule)."""
    lr_schedule: LearningRateSchedule = result("constant", added_later=True)
    """constant | cosine: the autoencoder's learning rate at step t is lr, or lr * (1 + cos(pi t / steps)) / 2
    (annealed to 0 at the last step; the discriminator's stays disc_lr). Annealing removes the optimiser's
    noise floor, so a run reaches its plateau in a few times fewer steps than at a constant rate (the
    pilot in STUDY.md). The schedule follows train.steps: extending a cosine run on resume re-stretches it."""
    adam_betas: list[float] = result(factory=lambda: [0.9, 0.999], check=each(adam_beta, exact_length=2))
    """Adam (beta1, beta2)."""
    grad_clip: float | None = result(None, check=positive)
    """Clip the global gradient norm to this value (None: no clipping)."""
    seed: int = result(0, check=seed_value, per_member=True)
    """Seed for initial weights, batch order and reparameterisation noise."""
    device: str = bookkeeping("auto")
    """cpu | cuda | cuda:N | auto (cuda when available)."""
    bf16: bool = result(False)
    """bf16 autocast on CUDA (ignored on CPU) for the model's forward pass and the perceptual network;
    pixel, KL and adversarial terms are computed in float32."""
    channels_last: bool = execution(True)
    """Keep images and convolution weights in channels-last (NHWC) layout: the layout bf16 tensor-core
    convolutions prefer on GPUs, and on CPUs oneDNN's faster path for conv64 at large batches (figures in
    BENCHMARKS.md). No effect on models without convolutions; same results up to floating-point rounding.
    The ensemble trainer applies it to looped members (the CPU default: each member's slice of a stacked
    weight gets channels-last strides), not to vmapped ones."""
    cuda_graph: bool = execution(False)
    """GPU fast path: capture the whole step (forward, backward, Adam) in one CUDA graph after 3 eager
    warm-up steps and replay it, removing the per-kernel launch cost that bounds small models. CUDA only;
    not with an adversarial term (its discriminator step and disc_start switch run on the host). A
    non-finite loss is found at the next log or checkpoint step, as on the eager path; the run stops
    naming the first bad step, and no checkpoint holds weights updated with it."""
    log_every: int = bookkeeping(100, check=at_least(1))
    """Steps between metrics.jsonl records, progress-bar updates and divergence checks."""
    checkpoint_every: int = bookkeeping(1000, check=at_least(1))
    """Steps between checkpoints (a final one is always written)."""
    tensorboard: bool = execution(False)
    """Also write every metrics.jsonl term, and the image grids at checkpoints, as TensorBoard events in
    RUN_DIR/tensorboard/ (pip install 'vaelens[tensorboard]'). It changes nothing a run computes or its own
    files record, so, like the fast-path switches, it is left out of the run id and may change on resume."""
    eval_images: int = bookkeeping(64, check=at_least(1))
    """Images in the reconstruction grid and in the final evaluation of the summary."""
    progress: bool = bookkeeping(True)
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


SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
"""Section name -> its dataclass, in the order configs are written."""
