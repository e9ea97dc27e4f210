"""Training throughput (images/s) of conv64 on dSprites: vaelens' trainer, a plain PyTorch loop, pythae.

All three train the same architecture (Burgess et al. conv64, 10 latents, Bernoulli likelihood, Adam)
on the same in-memory dSprites subset, in one process, one after another; each is timed after
warm-up steps. pythae runs only where it is installed (`pip install -e '.[bench]'`).

Rows marked CUDA-only below print "needs CUDA" elsewhere; `--rows` picks a subset, `--json OUT` also
writes the table. Rows (keys for --rows):

- plain: a hand-written loop, fp32, data on the device (the issue's reference);
- plain-compile: the same + bf16 autocast + channels_last + torch.compile (CUDA only);
- plain-graph: the same, bf16 + channels_last, whole step captured in a CUDA graph by hand (CUDA only);
- vaelens: `vaelens.training.train` with its defaults (train.channels_last on);
- vaelens-nchw: the same with train.channels_last=false (the layout the plain loop and pythae use);
- vaelens-graph: train.cuda_graph=true, fp32 (CUDA only);
- vaelens-fast: train.bf16, train.channels_last and train.cuda_graph all true (CUDA only);
- pythae-model: pythae's BetaVAE forward and loss around the same networks, stepped by the plain loop;
- pythae-trainer: pythae's own BaseTrainer.

    python benchmarks/bench_training.py --batch-sizes 64 256 --steps 30 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
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
from torch.nn import functional as F

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.models import build_model
from vaelens.training import train


def bench_vaelens(config, warmup: int, steps: int, overrides: dict | None = None) -> float:
    """Images/s of `vaelens.training.train` between the end of warm-up and the last step.

    Timed from the trainer's own metrics.jsonl: it logs only at step `warmup` and at the end (log_every =
    warmup, steps rounded up to a multiple of it), since a log record reads the loss back from the
    device, a host sync the CUDA-graph path otherwise avoids. `overrides` sets train.* keys (the fast path).
    """
    if (overrides or {}).get("cuda_graph") and warmup <= 3:
        raise ValueError("--warmup must be at least 4 for the CUDA-graph rows (3 eager steps, then capture), "
                         f"got {warmup}")
    config = copy.deepcopy(config)
    for key, value in (overrides or {}).items():
        setattr(config.train, key, value)
    timed_steps = -(-steps // warmup) * warmup
    config.train.steps = warmup + timed_steps
    config.train.log_every = warmup
    config.train.checkpoint_every = 10**9
    config.train.progress = False
    with tempfile.TemporaryDirectory() as folder:
        train(config, f"{folder}/run")
        records = [json.loads(line) for line in Path(folder, "run", "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]
    return (last["step"] - first["step"]) * config.train.batch_size / (last["elapsed_s"] - first["elapsed_s"])


def _timed_adam_loop(parameters, loss_of_batch, data, device, lr: float, batch_size: int, warmup: int,
                     steps: int) -> float:
    """Images/s of Adam steps on `loss_of_batch(x)`, timed after `warmup` steps (the peers' shared loop)."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    started = None
    for step in range(warmup + steps):
        if step == warmup:
            synchronise(device)
            started = time.perf_counter()
        loss = loss_of_batch(data.batch(step, batch_size, 0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronise(device)
    return steps * batch_size / (time.perf_counter() - started)


def _plain_loss(model, beta: float):
    """The hand-written beta-VAE loss (Bernoulli NLL + beta KL, batch means) of `model` on a batch."""

    def loss_of_batch(x):
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decode(z)
        nll = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none").flatten(1).sum(1).mean()
        kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(1).mean()
        return nll + beta * kl

    return loss_of_batch


def bench_plain_loop(config, data, device, warmup: int, steps: int) -> float:
    """The loop a researcher would write by hand: same model, same data on the device, fp32."""
    torch.manual_seed(0)
    model = build_model(config.model, data.image_shape).to(device)
    return _timed_adam_loop(model.parameters(), _plain_loss(model, config.loss.beta), data, device, config.train.lr,
                            config.train.batch_size, warmup, steps)


def bench_plain_compiled(config, data, device, warmup: int, steps: int) -> float:
    """The plain loop with the usual GPU tricks short of a graph: bf16 autocast, channels_last, and the
    forward + loss compiled by torch.compile (default mode; compilation falls in the warm-up steps)."""
    require_cuda(device)
    torch.manual_seed(0)
    model = build_model(config.model, data.image_shape).to(device, memory_format=torch.channels_last)
    loss = torch.compile(_plain_loss(model, config.loss.beta))

    def loss_of_batch(x):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return loss(x.contiguous(memory_format=torch.channels_last))

    return _timed_adam_loop(model.parameters(), loss_of_batch, data, device, config.train.lr,
                            config.train.batch_size, warmup, steps)


def bench_plain_graphed(config, data, device, warmup: int, steps: int) -> float:
    """The plain loop, bf16 + channels_last, with forward, backward and Adam captured in one CUDA graph.

    Written out by hand as torch's documentation does it: three eager steps on a side stream, capture with
    gradients allocated inside the graph's pool, then one replay per step after copying the batch into the
    static input buffer. The reparameterisation noise is drawn inside the graph (graph-safe RNG)."""
    require_cuda(device)
    if warmup <= 3:
        raise ValueError("--warmup must be at least 4 for the CUDA-graph rows (3 eager steps, then capture), "
                         f"got {warmup}")
    torch.manual_seed(0)
    batch_size = config.train.batch_size
    model = build_model(config.model, data.image_shape).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, capturable=True)
    loss_of_batch = _plain_loss(model, config.loss.beta)
    static_x = data.batch(0, batch_size, 0).contiguous(memory_format=torch.channels_last)

    def step():
        optimizer.zero_grad(set_to_none=True)
        # No autocast weight cache: casts made during capture would be stale on replay.
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            loss = loss_of_batch(static_x)
        loss.backward()
        optimizer.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for index in range(3):
            static_x.copy_(data.batch(index, batch_size, 0))
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()
    started = None
    for index in range(3, warmup + steps):
        if index == warmup:
            synchronise(device)
            started = time.perf_counter()
        static_x.copy_(data.batch(index, batch_size, 0))
        graph.replay()
    synchronise(device)
    return steps * batch_size / (time.perf_counter() - started)


def _pythae_model(config, data, device):
    """pythae's BetaVAE around vaelens' conv64 encoder and decoder (so the networks are identical)."""
    from pythae.models import BetaVAE, BetaVAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, x):
            mu, logvar = self.vae.encode(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.vae.decode(z)))

    torch.manual_seed(0)
    vae = build_model(config.model, data.image_shape)
    model_config = BetaVAEConfig(input_dim=data.image_shape, latent_dim=config.model.latent_dim,
                                 beta=config.loss.beta, reconstruction_loss="bce")
    return BetaVAE(model_config, encoder=Encoder(vae), decoder=Decoder(vae)).to(device)


def bench_pythae(config, data, device, warmup: int, steps: int) -> float | None:
    """pythae's BetaVAE model (its loss and forward) around the same networks, stepped by a plain loop.

    This isolates the model/loss overhead; pythae's BaseTrainer adds its own (issue: speed benchmarks).
    """
    try:
        import pythae  # noqa: F401
    except ImportError:
        return None
    model = _pythae_model(config, data, device)
    return _timed_adam_loop(model.parameters(), lambda x: model({"data": x}).loss, data, device, config.train.lr,
                            config.train.batch_size, warmup, steps)


def bench_pythae_trainer(config, data, device, warmup: int, steps: int) -> float | None:
    """pythae's own BaseTrainer (per-sample DataLoader, its loss, its logging) on the same networks.

    One epoch over `steps` batches is timed after a warm-up epoch over `warmup` batches; pythae has no
    notion of steps, so the data set is cut to whole batches of the requested count.
    """
    try:
        from pythae.data.datasets import BaseDataset
        from pythae.trainers import BaseTrainer, BaseTrainerConfig
    except ImportError:
        return None
    import logging

    # pythae's modules set their own loggers to INFO with console handlers: quiet each, not just the parent.
    for name in [name for name in logging.root.manager.loggerDict if name.startswith("pythae")]:
        logging.getLogger(name).setLevel(logging.ERROR)
    model = _pythae_model(config, data, device)
    batch_size = config.train.batch_size
    # Whole batches only, cycling through the data when the timed epoch is longer than the data set.
    images = data.images(torch.arange(steps * batch_size) % data.num_images).cpu()
    warm_images = images[: max(warmup, 1) * batch_size]
    with tempfile.TemporaryDirectory() as folder:
        trainer_config = BaseTrainerConfig(output_dir=folder, per_device_train_batch_size=batch_size,
                                           per_device_eval_batch_size=batch_size, num_epochs=1,
                                           learning_rate=config.train.lr, no_cuda=device.type != "cuda")
        labels = torch.zeros(len(images))
        trainer = BaseTrainer(model, BaseDataset(warm_images, labels[: len(warm_images)]), None, trainer_config)
        trainer.prepare_training()
        trainer.train_step(epoch=1)
        trainer.train_loader = trainer.get_train_dataloader(BaseDataset(images, labels))
        synchronise(device)
        started = time.perf_counter()
        trainer.train_step(epoch=2)
        synchronise(device)
    return steps * batch_size / (time.perf_counter() - started)


FAST_PATH = {"bf16": True, "channels_last": True, "cuda_graph": True}


def vaelens_row(overrides: dict):
    """A row function timing `train` with these train.* overrides (CUDA only with bf16 or cuda_graph)."""

    def row(config, data, device, warmup: int, steps: int) -> float:
        if overrides.get("cuda_graph") or overrides.get("bf16"):
            require_cuda(device)
        return bench_vaelens(config, warmup, steps, overrides)

    return row

ROWS = {
    "plain": ("plain PyTorch loop, fp32", bench_plain_loop),
    "plain-compile": ("plain + bf16 + channels_last + torch.compile", bench_plain_compiled),
    "plain-graph": ("plain, bf16 + channels_last, CUDA graph", bench_plain_graphed),
    "vaelens": ("vaelens (defaults)", vaelens_row({})),
    "vaelens-nchw": ("vaelens, channels_last=false", vaelens_row({"channels_last": False})),
    "vaelens-graph": ("vaelens fp32 + cuda_graph", vaelens_row({"cuda_graph": True})),
    "vaelens-fast": ("vaelens fast path (bf16, channels_last, cuda_graph)", vaelens_row(FAST_PATH)),
    "pythae-model": ("pythae BetaVAE (model, plain loop)", bench_pythae),
    "pythae-trainer": ("pythae BaseTrainer", bench_pythae_trainer),
}
"""Row key -> (label, function(config, data, device, warmup, steps) -> images/s, or None if not installed)."""

TARGETS = {64: 8.0, 256: 6.0}
"""Issue 7: vaelens (fast path on a GPU) >= this many times pythae's BaseTrainer, at these batch sizes."""


def run_row(key: str, config, data, device, warmup: int, steps: int) -> dict:
    label, function = ROWS[key]
    row = {"row": key, "trainer": label, "batch_size": config.train.batch_size, "images_per_s": None, "status": "ok"}
    try:
        value = function(config, data, device, warmup, steps)
        row.update(images_per_s=value, status="ok" if value is not None else "not installed")
    except NeedsCuda as skipped:
        row["status"] = str(skipped)
    except Exception as error:  # noqa: BLE001 - one failing row (e.g. torch.compile without a compiler) must not lose the rest
        row["status"] = f"failed: {type(error).__name__}: {error}"
    return row


def run_rounds(keys: list[str], rounds: int, config, data, device, warmup: int, steps: int) -> list[dict]:
    """Each row `rounds` times, round r starting at row r (so no row always runs first); one dict per row
    with the median images/s and every round's figure in `rounds`."""
    figures: dict[str, list[dict]] = {key: [] for key in keys}
    for round_index in range(rounds):
        shift = round_index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            figures[key].append(run_row(key, config, data, device, warmup, steps))
    rows = []
    for key in keys:
        measured = [row["images_per_s"] for row in figures[key] if row["images_per_s"] is not None]
        row = dict(figures[key][0], rounds=[row["images_per_s"] for row in figures[key]])
        if measured:
            row.update(images_per_s=statistics.median(measured), status="ok")
        rows.append(row)
    return rows


def add_ratios(rows: list[dict]) -> None:
    """Each row's images/s over the plain loop's and over pythae BaseTrainer's (None where either is missing)."""
    figures = {row["row"]: row["images_per_s"] for row in rows}
    for row in rows:
        for name, base in (("vs_plain", "plain"), ("vs_pythae_trainer", "pythae-trainer")):
            reference = figures.get(base)
            row[name] = row["images_per_s"] / reference if row["images_per_s"] and reference else None


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        if row["images_per_s"] is None:
            print(f"| {row['batch_size']} | {row['trainer']} | {row['status']} | - | - |", flush=True)
            continue
        ratios = [f"{row[key]:.2f}x" if row[key] is not None else "-" for key in ("vs_plain", "vs_pythae_trainer")]
        print(f"| {row['batch_size']} | {row['trainer']} | {row['images_per_s']:,.0f} | {' | '.join(ratios)} |",
              flush=True)


def target_lines(rows: list[dict]) -> list[str]:
    """Issue 7's single-model targets for the batch sizes run, from the fastest vaelens row present."""
    lines = []
    for batch_size, target in TARGETS.items():
        ours = [row for row in rows if row["batch_size"] == batch_size and row["row"].startswith("vaelens")
                and row["vs_pythae_trainer"] is not None]
        if ours:
            best = max(ours, key=lambda row: row["vs_pythae_trainer"])
            verdict = "met" if best["vs_pythae_trainer"] >= target else "MISSED"
            lines.append(f"target batch {batch_size}: vaelens >= {target:g}x pythae BaseTrainer: best is "
                         f"{best['trainer']} at {best['vs_pythae_trainer']:.2f}x -> {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (at least 4 for CUDA-graph rows)")
    parser.add_argument("--images", type=int, default=50_000, help="dSprites images held in memory")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help=f"run only these rows: {', '.join(ROWS)}")
    parser.add_argument("--json", metavar="OUT", help="also write the table and device description to this file")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every row this many times, each round in a rotated order, and report the median "
                             "(a row's place in the order can move its figure by 10-30%% on a shared CPU)")
    args = parser.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be at least 1, got {args.rounds}")
    rows_to_run = selected_rows(args.rows, list(ROWS))
    device = resolve_device(args.device)
    info = device_info(device)
    print(describe_device(info))
    print(f"conv64 dSprites, {args.images} images in memory, {args.warmup} warm-up + {args.steps} timed steps")
    print("| batch | trainer | images/s | vs plain loop | vs pythae BaseTrainer |\n|---:|---|---:|---:|---:|")
    table = []
    for batch_size in args.batch_sizes:
        config = resolve("dsprites-bvae", None, [f"data.subset={args.images}", f"train.batch_size={batch_size}",
                                                  f"train.device={device}"])
        data = load_dataset(config.data).to(device)
        rows = run_rounds(rows_to_run, args.rounds, config, data, device, args.warmup, args.steps)
        add_ratios(rows)
        print_rows(rows)
        table += rows
    targets = target_lines(table)
    print("\n".join(targets))
    write_json(args.json, info, table, units="training images per second (one model)", images=args.images,
               warmup=args.warmup, steps=args.steps, targets=targets, weighting_convention=config.loss.convention,
               model="conv64 (Burgess et al.), 10 latents, Bernoulli likelihood, Adam")


if __name__ == "__main__":
    main()
