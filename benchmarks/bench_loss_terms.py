"""Cost of each reconstruction-loss term per training step: conv64 on dSprites, one configuration at a time.

A step is what the trainer does: encode, reparameterise, decode, the objective (with the adaptive
adversarial weight where on), backward, Adam, and the discriminator's own update where there is one.
Each configuration adds one term to the pointwise Bernoulli beta-VAE. The feature network is built
with the built-in architecture and random weights (its cost does not depend on what it learned), and
LPIPS uses a random backbone (the pretrained weights are not downloadable here; same cost).

    python benchmarks/bench_loss_terms.py --steps 10 --batch-size 64 --device cpu
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.features import DEFAULT_WIDTHS, FeatureNetwork, save_feature_network
from vaelens.losses import build_objective
from vaelens.models import build_model

TERMS = {
    "pointwise (Bernoulli)": [],
    "+ features perceptual": ["loss.perceptual=features:{features}", "loss.perceptual_weight=100"],
    "+ LPIPS-alex (random backbone)": ["loss.perceptual=lpips-alex", "loss.lpips_random_backbone=true"],
    "+ LPIPS-vgg (random backbone)": ["loss.perceptual=lpips-vgg", "loss.lpips_random_backbone=true"],
    "+ adversarial (PatchGAN ndf 64, 3 layers, adaptive)": ["loss.disc_weight=0.5", "loss.disc_start=0"],
    "+ SSIM": ["loss.ssim_weight=1.0"],
}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(config, data, device):
    """A closure running one trainer step (by step index) of the model and objective `config` describes."""
    torch.manual_seed(0)
    model = build_model(config.model, data.image_shape).to(device)
    objective = build_objective(config.loss, data.image_shape, model, device)
    optimizer = torch.optim.Adam(list(model.parameters()) + objective.generator_parameters(), lr=config.train.lr)

    def step(index: int) -> None:
        x = data.batch(index, config.train.batch_size, 0)
        mu, logvar = model.encode(x)
        output = model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
        terms = objective(x, output, mu, logvar, index)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        objective.discriminator_step(x, terms.reconstruction, index)

    return step


def interleaved_step_seconds(steps_by_name: dict, device, warmup: int, steps: int) -> dict[str, list[float]]:
    """Seconds per step of every configuration, taking one step of each in turn, so that load from
    other processes on a shared machine falls on all configurations alike."""
    times = {name: [] for name in steps_by_name}
    for index in range(warmup + steps):
        for name, step in steps_by_name.items():
            synchronise(device)
            started = time.perf_counter()
            step(index)
            synchronise(device)
            if index >= warmup:
                times[name].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--subset", type=int, default=2048, help="dSprites images held in memory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    base = ["data.subset=" + str(args.subset), f"train.batch_size={args.batch_size}", f"train.device={device}"]
    data = load_dataset(resolve("dsprites-bvae", None, base).data, split="train").to(device)
    print(f"# device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
          f"{', ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}), torch {torch.__version__}, "
          f"{datetime.date.today()}, conv64 dSprites batch {args.batch_size}, {args.steps} steps per configuration, "
          "interleaved")
    with tempfile.TemporaryDirectory() as folder:
        features = str(Path(folder) / "random-features.safetensors")
        save_feature_network(FeatureNetwork(1, 64, DEFAULT_WIDTHS), {"method": "random (benchmark only)",
                                                                     "held_out": None}, features)
        steps_by_name = {name: training_step(resolve("dsprites-bvae", None, base + [o.format(features=features)
                                                                                    for o in overrides]), data, device)
                         for name, overrides in TERMS.items()}
        times = interleaved_step_seconds(steps_by_name, device, args.warmup, args.steps)
    baseline = statistics.median(next(iter(times.values())))
    print("| configuration | ms / step (median) | ms / step (min) | vs pointwise |\n|---|---:|---:|---:|")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"| {name} | {1000 * median:.0f} | {1000 * min(seconds):.0f} | {median / baseline:.2f}x |")


if __name__ == "__main__":
    main()
