"""Aggregate training throughput (model-images/s) of K beta-VAEs: vectorised ensemble vs one run at a time.

Three ways to train K conv64 models (Burgess et al., 10 latents, Bernoulli likelihood, Adam) that differ in
beta and seed, on the same in-memory dSprites subset, in one process:

- `ensemble, vmap`: `train_ensemble(vectorise=True)`, all K in one vmapped step, fp32 (the default on CUDA);
- `ensemble, vmap fast`: the same with train.bf16 and train.cuda_graph (the step captured in one CUDA
  graph; CUDA only). No host sync per step, so it is timed from the members' metrics.jsonl, which log
  only at step `--warmup` and at the end (`--steps` is rounded up to a multiple of `--warmup`);
- `ensemble, looped`: `train_ensemble(vectorise=False)`, members one after another on slices of the
  stacked parameters, one stacked Adam step (the default on CPU);
- `K x vaelens train`: K sequential `vaelens.training.train` runs;
- `K x plain loop`: K sequential hand-written PyTorch loops (no checkpoints, logs or NaN checks).

- `pythae BaseTrainer (1 model)`: pythae's own trainer on one model at the same batch size (where pythae
  is installed): issue 7's reference for the ensemble targets (>= 25x at batch 64, >= 10x at 256).

Model-images/s counts every image every model trains on, per second of wall time; model-images per
CPU-second divides by the process's CPU time instead (steadier where other jobs share the cores).
A sequential strategy's aggregate figure is one run's rate (runs do not overlap), so each is
measured on `--sequential-runs` runs (default 2) and reported as their mean. Every figure is timed
from step `--warmup` to the last step, by when each step starts (the trainers' on_step hook).

`--rows` picks a subset (plain, vaelens, looped, vmap, vmap-fast, pythae-trainer); `--json OUT` also writes
the table.

    python benchmarks/bench_ensemble.py --models 4 16 --batch-size 64 --steps 10 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch
from bench_common import (
    NeedsCuda,
    describe_device,
    device_info,
    require_cuda,
    selected_rows,
    synchronise,
    write_json,
)
from bench_training import bench_pythae_trainer
from torch.nn import functional as F

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.models import build_model
from vaelens.training import TrainingHooks, train
from vaelens.training.ensemble import train_ensemble

TARGETS = {64: 25.0, 256: 10.0}
"""Issue 7: a 64-model ensemble's model-images/s >= this many times pythae BaseTrainer's single-model figure."""


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
    """Notes wall and process CPU time when each training step starts.

    Every strategy is timed the same way, between the start of step `warmup` and the start of the last
    step, so set-up, checkpoints and evaluation stay outside: vaelens' trainers report each finished step
    through their `on_step` hook (the next step starts then), the plain loop stamps its own steps. CPU time
    (all threads of this process) is the steadier figure on a machine shared with other jobs; wall time is
    what a user waits.
    """

    def __init__(self):
        self.stamps: dict[int, tuple[float, float]] = {}

    def stamp(self, step: int) -> None:
        self.stamps.setdefault(step, (time.perf_counter(), time.process_time()))

    def hooks(self) -> TrainingHooks:
        """Trainer hooks stamping step `done` when `done` steps are finished (= when step `done` starts)."""
        return TrainingHooks(on_step=self.stamp)

    def rates(self, warmup: int, last: int, model_images_per_step: int) -> tuple[float, float]:
        """(model-images per wall second, per CPU second) from step `warmup` to step `last`."""
        (wall0, cpu0), (wall1, cpu1) = self.stamps[warmup], self.stamps[last]
        images = (last - warmup) * model_images_per_step
        return images / (wall1 - wall0), images / (cpu1 - cpu0)


def timed(run, warmup: int, last: int, model_images_per_step: int) -> tuple[float, float]:
    """Run `run(hooks)` with a StepClock's hooks; return its rates."""
    clock = StepClock()
    run(clock.hooks())
    return clock.rates(warmup, last, model_images_per_step)


def bench_ensemble(configs: list, warmup: int, vectorise: bool) -> tuple[float, float]:
    settings = configs[0].train
    with tempfile.TemporaryDirectory() as folder:
        dirs = [Path(folder) / f"member{k}" for k in range(len(configs))]
        return timed(lambda hooks: train_ensemble(configs, dirs, progress=False, vectorise=vectorise, hooks=hooks),
                     warmup, settings.steps - 1, len(configs) * settings.batch_size)


def bench_ensemble_fast(configs: list, warmup: int, device) -> tuple[float, None]:
    """The vmapped ensemble with bf16 autocast and the step captured in a CUDA graph, timed from member 0's
    metrics.jsonl records at step `warmup` and at the end (each record reads the losses back: a sync)."""
    require_cuda(device)
    if warmup <= 3:
        raise ValueError("--warmup must be at least 4 for the CUDA-graph row (3 eager steps, then capture), "
                         f"got {warmup}")
    configs = copy.deepcopy(configs)
    for config in configs:
        config.train.bf16, config.train.cuda_graph = True, True
    settings = configs[0].train
    with tempfile.TemporaryDirectory() as folder:
        dirs = [Path(folder) / f"member{k}" for k in range(len(configs))]
        train_ensemble(configs, dirs, progress=False, vectorise=True)
        records = [json.loads(line) for line in (dirs[0] / "metrics.jsonl").read_text().splitlines()]
    first = next(record for record in records if record["step"] == warmup)
    last = records[-1]
    images = (last["step"] - first["step"]) * settings.batch_size * len(configs)
    return images / (last["elapsed_s"] - first["elapsed_s"]), None


def _mean(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)


def bench_sequential_vaelens(configs: list, warmup: int) -> tuple[float, float]:
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        for index, config in enumerate(configs):
            run_dir = Path(folder) / f"run{index}"
            rates.append(timed(lambda hooks, c=config, d=run_dir: train(c, d, hooks=hooks), warmup,
                               config.train.steps - 1, config.train.batch_size))
    return _mean(rates)


def bench_sequential_plain(configs: list, data, device, warmup: int) -> tuple[float, float]:
    """The loop a researcher writes by hand, once per model: same model, same data on the device, fp32."""
    rates = []
    for config in configs:
        clock = StepClock()
        torch.manual_seed(config.train.seed)
        model = build_model(config.model, data.image_shape).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
        batch_size, steps = config.train.batch_size, config.train.steps
        for step in range(steps):
            synchronise(device)
            clock.stamp(step)
            x = data.batch(step, batch_size, config.train.seed)
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


ROWS = {
    "plain": "K x plain loop",
    "vaelens": "K x vaelens train",
    "looped": "ensemble, looped",
    "vmap": "ensemble, vmap fp32",
    "vmap-fast": "ensemble, vmap bf16 + cuda_graph",
    "pythae-trainer": "pythae BaseTrainer (1 model)",
}


def run_row(key: str, count: int, configs: list, data, device, args) -> dict:
    """One row's figures: model-images/s (wall and CPU) or why there are none."""
    sequential = configs[:args.sequential_runs]
    functions = {
        "plain": lambda: bench_sequential_plain(sequential, data, device, args.warmup),
        "vaelens": lambda: bench_sequential_vaelens(sequential, args.warmup),
        "looped": lambda: bench_ensemble(configs, args.warmup, vectorise=False),
        "vmap": lambda: bench_ensemble(configs, args.warmup, vectorise=True),
        "vmap-fast": lambda: bench_ensemble_fast(configs, args.warmup, device),
        "pythae-trainer": lambda: (bench_pythae_trainer(configs[0], data, device, args.warmup, args.steps), None),
    }
    row = {"row": key, "strategy": ROWS[key], "models": 1 if key == "pythae-trainer" else count,
           "batch_size": configs[0].train.batch_size, "model_images_per_s": None, "model_images_per_cpu_s": None}
    try:
        wall, cpu = functions[key]()
        row.update(model_images_per_s=wall, model_images_per_cpu_s=cpu,
                   status="ok" if wall is not None else "not installed")
    except NeedsCuda as skipped:
        row["status"] = str(skipped)
    except Exception as error:  # noqa: BLE001 - one failing row must not lose the others
        row["status"] = f"failed: {type(error).__name__}: {error}"
    return row


def add_ratios(rows: list[dict]) -> None:
    """Each row over K x plain (CPU-s) and over pythae BaseTrainer's single-model images/s (wall)."""
    by_key = {row["row"]: row for row in rows}
    plain_cpu = by_key.get("plain", {}).get("model_images_per_cpu_s")
    pythae = by_key.get("pythae-trainer", {}).get("model_images_per_s")
    for row in rows:
        cpu, wall = row["model_images_per_cpu_s"], row["model_images_per_s"]
        row["vs_plain_cpu"] = cpu / plain_cpu if cpu and plain_cpu else None
        row["vs_pythae_trainer"] = wall / pythae if wall and pythae else None


def show(value, pattern: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, pattern) + suffix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[4, 16], help="ensemble sizes K")
    parser.add_argument("--batch-sizes", "--batch-size", dest="batch_sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per strategy (rounded up to a multiple "
                                                              "of --warmup)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps first (at least 4 for the CUDA-graph row)")
    parser.add_argument("--images", type=int, default=5000, help="dSprites images held in memory")
    parser.add_argument("--sequential-runs", type=int, default=2, help="runs timed for the sequential rows")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help=f"run only these rows: {', '.join(ROWS)}")
    parser.add_argument("--json", metavar="OUT", help="also write the table and device description to this file")
    args = parser.parse_args()
    rows_to_run = selected_rows(args.rows, list(ROWS))
    if args.threads:
        torch.set_num_threads(args.threads)
    args.steps = -(-args.steps // args.warmup) * args.warmup
    device = resolve_device(args.device)
    info = device_info(device)
    print(describe_device(info))
    print(f"conv64 dSprites, {args.images} images in memory, {args.warmup} warm-up + {args.steps} timed steps")
    print("| K | batch | strategy | model-images/s | model-images/CPU-s | vs K x plain (CPU) "
          "| vs pythae BaseTrainer |\n"
          "|---:|---:|---|---:|---:|---:|---:|")
    table, targets = [], []
    for batch_size in args.batch_sizes:
        config = resolve("dsprites-bvae", None, [
            f"data.subset={args.images}", f"train.batch_size={batch_size}", f"train.device={device}",
            f"train.steps={args.warmup + args.steps}", f"train.log_every={args.warmup}",
            "train.checkpoint_every=1000000000", "train.progress=false"])
        data = load_dataset(config.data).to(device)
        single = None
        for count in args.models:
            configs = members(config, count)
            rows = [run_row(key, count, configs, data, device, args) for key in rows_to_run if key != "pythae-trainer"]
            if "pythae-trainer" in rows_to_run:
                single = single or run_row("pythae-trainer", count, configs, data, device, args)
                rows.append(dict(single))
            add_ratios(rows)
            for row in rows:
                figures = (f"{show(row['model_images_per_s'], ',.0f')} | {show(row['model_images_per_cpu_s'], ',.0f')}"
                           if row["model_images_per_s"] is not None else f"{row['status']} | -")
                print(f"| {row['models']} | {batch_size} | {row['strategy']} | {figures} | "
                      f"{show(row['vs_plain_cpu'], '.2f', 'x')} | {show(row['vs_pythae_trainer'], '.2f', 'x')} |",
                      flush=True)
            best = max((row for row in rows if row["row"] in ("vmap", "vmap-fast", "looped")
                        and row["vs_pythae_trainer"] is not None), key=lambda row: row["vs_pythae_trainer"],
                       default=None)
            if best is not None and batch_size in TARGETS:
                verdict = "met" if best["vs_pythae_trainer"] >= TARGETS[batch_size] else "MISSED"
                targets.append(f"target K={count} batch {batch_size}: ensemble >= {TARGETS[batch_size]:g}x pythae "
                               f"BaseTrainer: best is {best['strategy']} at {best['vs_pythae_trainer']:.2f}x "
                               f"-> {verdict}"
                               + ("" if count == 64 else " (issue 7's target is for K = 64)"))
            table += rows
    print("\n".join(targets))
    write_json(args.json, info, table, units="model-images per second (every image every model trains on)",
               images=args.images, warmup=args.warmup, steps=args.steps, targets=targets,
               weighting_convention=config.loss.convention)


if __name__ == "__main__":
    main()
