"""Aggregate training throughput (model-images/s) of K beta-VAEs: vectorised ensemble vs one run at a time.

Three ways to train K conv64 models (Burgess et al., 10 latents, Bernoulli likelihood, Adam) that differ in
beta and seed, on the same in-memory dSprites subset, in one process:

- `vaelens ensemble`: `train_ensemble`, all K in one vmapped step (what `--executor ensemble` runs);
- `K x vaelens train`: K sequential `vaelens.training.train` runs;
- `K x plain loop`: K sequential hand-written PyTorch loops (no checkpoints, logs or NaN checks).

Model-images/s counts every image every model trains on, per second of wall time. A sequential
strategy's aggregate figure is one run's rate (runs do not overlap), so each is measured on
`--sequential-runs` runs (default 2) and reported as their mean rate. Each figure is timed after
`--warmup` steps.

    python benchmarks/bench_ensemble.py --models 4 16 --batch-size 64 --steps 10 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.models import build_model
from vaelens.training import resolve_device, train
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


def rate_from_metrics(run_dir: Path, warmup: int, batch_size: int) -> float:
    """Per-model images/s between the end of warm-up and the last step, from metrics.jsonl timestamps."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    first, last = records[warmup - 1], records[-1]
    return (last["step"] - first["step"]) * batch_size / (last["elapsed_s"] - first["elapsed_s"])


def bench_ensemble(configs: list, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        dirs = [Path(folder) / f"member{k}" for k in range(len(configs))]
        train_ensemble(configs, dirs, progress=False)
        return len(configs) * rate_from_metrics(dirs[0], warmup, configs[0].train.batch_size)


def bench_sequential_vaelens(configs: list, warmup: int) -> float:
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        for index, config in enumerate(configs):
            train(config, Path(folder) / f"run{index}")
            rates.append(rate_from_metrics(Path(folder) / f"run{index}", warmup, config.train.batch_size))
    return sum(rates) / len(rates)


def bench_sequential_plain(configs: list, data, device, warmup: int) -> float:
    """The loop a researcher writes by hand, once per model: same model, same data on the device, fp32."""
    rates = []
    for config in configs:
        torch.manual_seed(config.train.seed)
        model = build_model(config.model, data.image_shape).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
        batch_size, steps = config.train.batch_size, config.train.steps
        started = None
        for step in range(steps):
            if step == warmup:
                synchronise(device)
                started = time.perf_counter()
            x = data.batch(step, batch_size, config.train.seed)
            mu, logvar = model.encode(x)
            logits = model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = nll + config.loss.beta * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronise(device)
        rates.append((steps - warmup) * batch_size / (time.perf_counter() - started))
    return sum(rates) / len(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[4, 16], help="ensemble sizes K")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per strategy")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--images", type=int, default=5000, help="dSprites images held in memory")
    parser.add_argument("--sequential-runs", type=int, default=2, help="runs timed for the sequential rows")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {torch.__version__}")
    config = resolve("dsprites-bvae", None, [
        f"data.subset={args.images}", f"train.batch_size={args.batch_size}", f"train.device={device}",
        f"train.steps={args.warmup + args.steps}", "train.log_every=1", "train.checkpoint_every=1000000000",
        "train.progress=false"])
    data = load_dataset(config.data).to(device)
    print(f"{'K':>4} {'strategy':>20} {'model-images/s':>15} {'vs K x plain':>13}")
    for count in args.models:
        configs = members(config, count)
        sequential = configs[:args.sequential_runs]
        plain = bench_sequential_plain(sequential, data, device, args.warmup)
        figures = {"K x plain loop": plain,
                   "K x vaelens train": bench_sequential_vaelens(sequential, args.warmup),
                   "vaelens ensemble": bench_ensemble(configs, args.warmup)}
        for name, value in figures.items():
            print(f"{count:>4} {name:>20} {value:15.0f} {value / plain:12.2f}x", flush=True)


if __name__ == "__main__":
    main()
