"""Training throughput (images/s) of conv64 on dSprites: vaelens' trainer, a plain PyTorch loop, pythae.

All three train the same architecture (Burgess et al. conv64, 10 latents, Bernoulli likelihood, Adam)
on the same in-memory dSprites subset, in one process, one after another; each is timed after
warm-up steps. pythae runs only where it is installed (`pip install -e '.[bench]'`).

    python benchmarks/bench_training.py --batch-sizes 64 256 --steps 30 --device cpu
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch
from torch.nn import functional as F

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.models import build_model
from vaelens.training import resolve_device, train


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_vaelens(config, warmup: int, steps: int) -> float:
    """Images/s between the warm-up and the last step, from the trainer's own metrics.jsonl timestamps."""
    import json

    config.train.steps = warmup + steps
    config.train.log_every = 1
    config.train.checkpoint_every = 10**9
    config.train.progress = False
    with tempfile.TemporaryDirectory() as folder:
        train(config, f"{folder}/run")
        records = [json.loads(line) for line in open(f"{folder}/run/metrics.jsonl")]
    first, last = records[warmup - 1], records[-1]
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


def bench_plain_loop(config, data, device, warmup: int, steps: int) -> float:
    """The loop a researcher would write by hand: same model, same data on the device, fp32."""
    torch.manual_seed(0)
    model = build_model(config.model, data.image_shape).to(device)

    def loss_of_batch(x):
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decode(z)
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        return nll + config.loss.beta * kl

    return _timed_adam_loop(model.parameters(), loss_of_batch, data, device, config.train.lr,
                            config.train.batch_size, warmup, steps)


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

    logging.getLogger("pythae").setLevel(logging.ERROR)
    model = _pythae_model(config, data, device)
    batch_size = config.train.batch_size
    images = data.images(torch.arange(steps * batch_size)).cpu()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--images", type=int, default=50_000, help="dSprites images held in memory")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {torch.__version__}")
    print(f"{'batch':>6} {'trainer':>22} {'images/s':>10} {'vs plain':>9}")
    for batch_size in args.batch_sizes:
        config = resolve("dsprites-bvae", None, [f"data.subset={args.images}", f"train.batch_size={batch_size}",
                                                  f"train.device={device}"])
        data = load_dataset(config.data).to(device)
        plain = bench_plain_loop(config, data, device, args.warmup, args.steps)
        figures = {"plain PyTorch loop": plain, "vaelens": bench_vaelens(config, args.warmup, args.steps),
                   "pythae BetaVAE (model)": bench_pythae(config, data, device, args.warmup, args.steps),
                   "pythae BaseTrainer": bench_pythae_trainer(config, data, device, args.warmup, args.steps)}
        for name, value in figures.items():
            shown = "not installed" if value is None else f"{value:10.0f} {value / plain:8.2f}x"
            print(f"{batch_size:>6} {name:>22} {shown}")


if __name__ == "__main__":
    main()
