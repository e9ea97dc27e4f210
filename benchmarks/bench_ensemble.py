"""Aggregate training throughput (model-images/s) of K beta-VAEs: vectorised ensemble vs one run at a time.

Three ways to train K conv64 models (Burgess et al., 10 latents, Bernoulli likelihood, Adam) that differ in
beta and seed, on the same in-memory dSprites subset, in one process:

- `ensemble, vmap`: `train_ensemble(vectorise=True)`, all K in one vmapped step (the default on CUDA);
- `ensemble, looped`: `train_ensemble(vectorise=False)`, members one after another on slices of the
  stacked parameters, one stacked Adam step (the default on CPU);
- `K x vaelens train`: K sequential `vaelens.training.train` runs;
- `K x plain loop`: K sequential hand-written PyTorch loops (no checkpoints, logs or NaN checks).

Model-images/s counts every image every model trains on, per second of wall time; model-images per
CPU-second divides by the process's CPU time instead (steadier where other jobs share the cores).
A sequential strategy's aggregate figure is one run's rate (runs do not overlap), so each is
measured on `--sequential-runs` runs (default 2) and reported as their mean. Every figure is timed
from step `--warmup` to the last step, by when each step first asks for its batch.

    python benchmarks/bench_ensemble.py --models 4 16 --batch-size 64 --steps 10 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import platform
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

import torch
from torch.nn import functional as F

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.models import build_model
from vaelens.training import ensemble as ensemble_module
from vaelens.training import resolve_device, train
from vaelens.training import trainer as trainer_module
from vaelens.training.ensemble import train_ensemble


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def members(config, count: int) -> list:
    """`count` configs on a beta x seed grid, as a sweep would give the ensemble executor."""
    betas = [1.0, 2.0, 4.0, 8.0]
    configs = []
    for index in range(count):
        member = copy.deepcopy(config)
        member.loss.beta, member.train.seed = betas[index % len(betas)], index // len(betas)
        configs.append(member)
    return configs


class StepClock:
    """Wraps a data set and notes wall and process CPU time when each training step first asks for a batch.

    Every strategy is timed the same way, between the first batch of step `warmup` and the first batch of
    the last step, so set-up, checkpoints and evaluation stay outside. CPU time (all threads of this
    process) is the steadier figure on a machine shared with other jobs; wall time is what a user waits.
    """

    def __init__(self, data):
        self.data = data
        self.stamps: dict[int, tuple[float, float]] = {}

    def __getattr__(self, name):
        if name == "data":  # looked up before __init__ ran, e.g. by copy.copy
            raise AttributeError(name)
        return getattr(self.data, name)

    def to(self, device):
        self.data = self.data.to(device)
        return self

    def batch(self, step, batch_size, seed):
        self.stamps.setdefault(step, (time.perf_counter(), time.process_time()))
        return self.data.batch(step, batch_size, seed)

    def rates(self, warmup: int, last: int, model_images_per_step: int) -> tuple[float, float]:
        """(model-images per wall second, per CPU second) from step `warmup` to step `last`."""
        (wall0, cpu0), (wall1, cpu1) = self.stamps[warmup], self.stamps[last]
        images = (last - warmup) * model_images_per_step
        return images / (wall1 - wall0), images / (cpu1 - cpu0)


def timed(module, run, warmup: int, last: int, model_images_per_step: int) -> tuple[float, float]:
    """Run `run()` with `module.load_dataset` handing out StepClock-wrapped data; return its rates."""
    clocks = []
    real = module.load_dataset

    def load_dataset(*args, **kwargs):
        clocks.append(StepClock(real(*args, **kwargs)))
        return clocks[-1]

    with patch.object(module, "load_dataset", load_dataset):
        run()
    return clocks[0].rates(warmup, last, model_images_per_step)


def bench_ensemble(configs: list, warmup: int, vectorise: bool) -> tuple[float, float]:
    settings = configs[0].train
    with tempfile.TemporaryDirectory() as folder:
        dirs = [Path(folder) / f"member{k}" for k in range(len(configs))]
        return timed(ensemble_module, lambda: train_ensemble(configs, dirs, progress=False, vectorise=vectorise), warmup,
                     settings.steps - 1, len(configs) * settings.batch_size)


def _mean(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)


def bench_sequential_vaelens(configs: list, warmup: int) -> tuple[float, float]:
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        for index, config in enumerate(configs):
            run_dir = Path(folder) / f"run{index}"
            rates.append(timed(trainer_module, lambda c=config, d=run_dir: train(c, d), warmup,
                               config.train.steps - 1, config.train.batch_size))
    return _mean(rates)


def bench_sequential_plain(configs: list, data, device, warmup: int) -> tuple[float, float]:
    """The loop a researcher writes by hand, once per model: same model, same data on the device, fp32."""
    rates = []
    for config in configs:
        clock = StepClock(data)
        torch.manual_seed(config.train.seed)
        model = build_model(config.model, data.image_shape).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
        batch_size, steps = config.train.batch_size, config.train.steps
        for step in range(steps):
            synchronise(device)
            x = clock.batch(step, batch_size, config.train.seed)
            mu, logvar = model.encode(x)
            logits = model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = nll + config.loss.beta * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        rates.append(clock.rates(warmup, steps - 1, batch_size))
    return _mean(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[4, 16], help="ensemble sizes K")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per strategy")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--images", type=int, default=5000, help="dSprites images held in memory")
    parser.add_argument("--sequential-runs", type=int, default=2, help="runs timed for the sequential rows")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {torch.__version__}")
    config = resolve("dsprites-bvae", None, [
        f"data.subset={args.images}", f"train.batch_size={args.batch_size}", f"train.device={device}",
        f"train.steps={args.warmup + args.steps}", "train.log_every=1", "train.checkpoint_every=1000000000",
        "train.progress=false"])
    data = load_dataset(config.data).to(device)
    print(f"{'K':>4} {'strategy':>20} {'model-img/s':>12} {'model-img/CPU-s':>16} {'vs K x plain (CPU)':>19}")
    for count in args.models:
        configs = members(config, count)
        sequential = configs[:args.sequential_runs]
        plain = bench_sequential_plain(sequential, data, device, args.warmup)
        figures = {"K x plain loop": plain,
                   "K x vaelens train": bench_sequential_vaelens(sequential, args.warmup),
                   "ensemble, looped": bench_ensemble(configs, args.warmup, vectorise=False),
                   "ensemble, vmap": bench_ensemble(configs, args.warmup, vectorise=True)}
        for name, (wall, cpu) in figures.items():
            print(f"{count:>4} {name:>20} {wall:12.0f} {cpu:16.0f} {cpu / plain[1]:18.2f}x", flush=True)


if __name__ == "__main__":
    main()
