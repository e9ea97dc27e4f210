"""Building what a run trains: model, objective and optimiser, one function for the trainer, the ensemble
and `load_run`, plus the checks a config must pass before anything is written."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaelens.config import RunConfig, check_config
from vaelens.losses import VAEObjective, build_objective
from vaelens.models import VAE, build_model
from vaelens.sampling import random_subset
from vaelens.training.tensorboard import check_available


@dataclass
class RunParts:
    """The objects of one run."""

    model: VAE
    """The encoder/decoder."""
    objective: VAEObjective
    """The loss, with any learned parameters (a learned sigma, ldm's s) and the discriminator."""
    optimizer: torch.optim.Adam | None
    """Adam over the model's and the objective's generator parameters (None when only evaluating)."""

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """What a checkpoint stores, by name."""
        return {"model": self.model, "objective": self.objective}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers a checkpoint stores, by name (the discriminator's when there is one)."""
        optimizers = {"adam": self.optimizer} if self.optimizer is not None else {}
        if self.objective.adversarial is not None:
            optimizers["discriminator"] = self.objective.adversarial.optimizer
        return optimizers

    @property
    def trained_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters Adam steps, in the order it was given them (gradient clipping covers them)."""
        return list(self.model.parameters()) + self.objective.generator_parameters()


def memory_format(train_config) -> torch.memory_format:
    return torch.channels_last if train_config.channels_last else torch.contiguous_format


def make_adam(parameters, train_config, device: torch.device) -> torch.optim.Adam:
    """The trainer's Adam: fused (one kernel for all tensors) on CUDA, capturable when the step is graphed."""
    on_cuda = device.type == "cuda"
    return torch.optim.Adam(parameters, lr=train_config.lr, betas=tuple(train_config.adam_betas),
                            fused=on_cuda or None, capturable=on_cuda and train_config.cuda_graph)


def build_parts(config: RunConfig, image_shape, device, *, training: bool = True) -> RunParts:
    """Model, objective and (when `training`) Adam for `config` on images of `image_shape`.

    For training the initial weights are drawn from torch's global generator seeded with train.seed,
    so a run, an ensemble member and a resumed run start from the same weights; every convolution
    (model, perceptual network, discriminator) takes the configured memory layout.
    """
    device = torch.device(device)
    layout = memory_format(config.train) if training else torch.contiguous_format
    if training:
        torch.manual_seed(config.train.seed)
    model = build_model(config.model, image_shape).to(device, memory_format=layout)
    objective = build_objective(config.loss, image_shape, model, device).to(memory_format=layout)
    parts = RunParts(model, objective, None)
    if training:
        parts.optimizer = make_adam(parts.trained_parameters, config.train, device)
    return parts


def check_training_config(config: RunConfig) -> None:
    """Every check a run's config must pass before its directory is touched: the values of every key
    and the combinations the trainer refuses."""
    check_config(config)
    if config.train.tensorboard:
        check_available()
    if config.train.cuda_graph and config.train.lr_schedule != "constant":
        raise ValueError(f"train.cuda_graph=true replays Adam with the learning rate it was captured with, so it "
                         f"cannot follow train.lr_schedule={config.train.lr_schedule}; set train.cuda_graph=false "
                         "or train.lr_schedule=constant")
    if config.train.cuda_graph and config.loss.disc_weight > 0:
        raise ValueError(f"train.cuda_graph=true cannot capture an adversarial objective (loss.disc_weight="
                         f"{config.loss.disc_weight}): its discriminator step and disc_start switch run on the "
                         "host; set train.cuda_graph=false")


def check_device(config: RunConfig, device: torch.device) -> None:
    """The CUDA-graph path needs CUDA."""
    if config.train.cuda_graph and device.type != "cuda":
        raise ValueError(f"train.cuda_graph=true needs a CUDA device, and this run is on {device}; "
                         "set train.cuda_graph=false (or train.device=cuda on a machine with a GPU)")


def check_data_fits(config: RunConfig, data) -> None:
    """A batch must fit in the training images."""
    if config.train.batch_size > data.num_images:
        raise ValueError(f"train.batch_size={config.train.batch_size} exceeds the {data.num_images} training images "
                         f"of {data.name}; lower train.batch_size or raise data.subset")


def evaluation_subset(config: RunConfig, data) -> tuple[torch.Tensor, dict]:
    """The training images the summary's evaluation and the image grids use: a random draw of
    train.eval_images over the whole split seeded by data.seed (so every run of a sweep is scored on the
    same images), never the first images in storage order (on dSprites those are all small squares).
    Returns the images and what they are (for the summary)."""
    count = min(config.train.eval_images, data.num_images)
    # In the draw's own order: the image grids show a random arrangement, not one sorted by storage index.
    indices = random_subset(data.num_images, count, config.data.seed, in_storage_order=False)
    return data.images(indices), {"split": "train", "num_images": count, "subset_seed": config.data.seed,
                                  "subset": "seeded random draw over the whole training split"}


@torch.no_grad()
def dry_run(parts: RunParts, data) -> None:
    """One forward pass and loss on two images, in eval mode and without touching any random generator,
    so a model/data mismatch (image shape, channels) fails before the run directory is written."""
    images = data.images(torch.arange(min(2, data.num_images)))
    was_training = parts.model.training
    parts.model.eval()
    try:
        output, mu, logvar = parts.model(images)
        parts.objective(images, output, mu, logvar)
    finally:
        parts.model.train(was_training)
