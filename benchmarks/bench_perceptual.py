"""Achieved TFLOP/s of a perceptual-loss training step: conv64 on 64x64 RGB patches with LPIPS-vgg.

The model is the natural-image preset (`natural-bvae`: conv64, 32 latents, Gaussian likelihood) with
loss.perceptual=lpips-vgg; the VGG backbone is random (loss.lpips_random_backbone=true: the ImageNet
weights cannot be downloaded here, and the FLOPs do not depend on the weights). FLOPs of one whole
training step (VAE forward, LPIPS on x and x-hat, backward through x-hat's branch and the VAE; Adam's
elementwise work is not counted) are counted once with torch.utils.flop_counter.FlopCounterMode;
the steps are then timed in steady state. Rows (keys for --rows):

- vaelens: `vaelens.training.train` with train.bf16 and train.channels_last (bf16 applies on CUDA only);
  timed from its metrics.jsonl, which logs only at step `--warmup` and at the end;
- vaelens-graph: the same plus train.cuda_graph (CUDA only);
- all-bf16: vaelens' own model and objective stepped by a hand-written loop with the whole step under
  bf16 autocast. The trainer autocasts the model and the LPIPS network but keeps the pixel and KL terms
  in float32; this row shows what the trainer's bookkeeping and those float32 terms cost.

Achieved TFLOP/s = counted FLOPs per step x steps per second. The fraction is of the device's dense bf16
tensor-core peak (bench_common.DENSE_BF16_PEAK_TFLOPS; none on a CPU or an unknown GPU). Issue 7 aims at
>= 30% of it.

    python benchmarks/bench_perceptual.py --batch-sizes 64 256 --steps 100 --warmup 10

`--distance-costs` measures something else: the seconds per image of one forward + backward (to x-hat) of each
perceptual distance alone, at 32 and 64 px: effnet-lite0 (the ImageNet EfficientNet-Lite0, its first four
maps), vaelens's fitted networks (features:natural-denoising on RGB, features:dsprites-supervised on grayscale;
fitted on first use if not cached) and LPIPS-squeeze with a random backbone (the FLOPs do not depend on the
weights). `--smoke` runs it with 2 images and 1 repeat, only to check that every row runs:

    python benchmarks/bench_perceptual.py --distance-costs --device cpu --distance-batch 32 --repeats 20
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_common import (
    NeedsCuda,
    describe_device,
    device_info,
    peak_bf16_tflops,
    require_cuda,
    selected_rows,
    synchronise,
    write_json,
)
from bench_training import bench_vaelens
from torch.utils.flop_counter import FlopCounterMode

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.distances.efficientnet import efficientnet_distance
from vaelens.distances.features import feature_distance
from vaelens.distances.lpips import build_lpips, lpips_between
from vaelens.features import resolve_feature_network
from vaelens.losses import build_objective
from vaelens.models import build_model

PERCEPTUAL = ["loss.perceptual=lpips-vgg", "loss.lpips_random_backbone=true", "train.bf16=true",
              "train.channels_last=true"]
ROWS = {"vaelens": "vaelens train (bf16 model and LPIPS)",
        "vaelens-graph": "vaelens train + cuda_graph",
        "all-bf16": "whole step under bf16 autocast (hand-written loop)"}
TARGET_FRACTION = 0.30


class Step:
    """One training step of vaelens' model and objective for `config`, run eagerly: encode, reparameterise,
    decode, objective, backward, Adam. `whole_step_autocast` puts the objective under bf16 autocast too."""

    def __init__(self, config, data, device, whole_step_autocast: bool):
        torch.manual_seed(0)
        layout = torch.channels_last if config.train.channels_last else torch.contiguous_format
        self.model = build_model(config.model, data.image_shape).to(device, memory_format=layout)
        self.objective = build_objective(config.loss, data.image_shape, self.model, device)
        parameters = list(self.model.parameters()) + self.objective.generator_parameters()
        self.optimizer = torch.optim.Adam(parameters, lr=config.train.lr, fused=device.type == "cuda" or None)
        self.data, self.device, self.layout = data, device, layout
        self.batch_size = config.train.batch_size
        self.autocast = config.train.bf16 and device.type == "cuda"
        self.whole_step_autocast = whole_step_autocast

    def __call__(self, index: int) -> None:
        x = self.data.batch(index, self.batch_size, 0).contiguous(memory_format=self.layout)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)
        with autocast:
            mu, logvar = self.model.encode(x)
            output = self.model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
        if self.whole_step_autocast:
            with autocast:
                terms = self.objective(x, output, mu, logvar, index)
        else:
            terms = self.objective(x, output, mu, logvar, index)
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.optimizer.step()


def count_step_flops(config, data, device) -> int:
    """FLOPs of one training step (forward + backward; matmuls and convolutions, as FlopCounterMode counts)."""
    step = Step(config, data, device, whole_step_autocast=False)
    step(0)  # lazily built state (Adam's moments, LPIPS' buffers) outside the count
    with FlopCounterMode(display=False) as counter:
        step(1)
    return counter.get_total_flops()


def time_hand_written(config, data, device, warmup: int, steps: int) -> float:
    """Images/s of `Step` with the whole step under autocast, after `warmup` steps."""
    step = Step(config, data, device, whole_step_autocast=True)
    for index in range(warmup):
        step(index)
    synchronise(device)
    started = time.perf_counter()
    for index in range(warmup, warmup + steps):
        step(index)
    synchronise(device)
    return steps * config.train.batch_size / (time.perf_counter() - started)


def run_row(key: str, config, data, device, warmup: int, steps: int) -> tuple[float | None, str]:
    try:
        if key == "vaelens":
            return bench_vaelens(config, warmup, steps), "ok"
        if key == "vaelens-graph":
            require_cuda(device)
            return bench_vaelens(config, warmup, steps, {"cuda_graph": True}), "ok"
        return time_hand_written(config, data, device, warmup, steps), "ok"
    except NeedsCuda as skipped:
        return None, str(skipped)
    except Exception as error:  # noqa: BLE001 - one failing row must not lose the others
        return None, f"failed: {type(error).__name__}: {error}"


DISTANCE_SIDES = (32, 64)
DISTANCES = {"effnet-lite0": "efficientnet-lite0 (ImageNet), stem + stages 2-4, RGB",
             "features:natural-denoising": "vaelens natural-denoising network, RGB",
             "features:dsprites-supervised": "vaelens dsprites-supervised network, grayscale",
             "lpips-squeeze-random": "LPIPS-squeeze, RANDOM backbone (cost only), RGB"}


def distance_under_test(key: str, device):
    """(distance(x, x_hat) -> (N,), channels it takes) for a row of --distance-costs."""
    if key == "effnet-lite0":
        return efficientnet_distance, 3
    if key.startswith("features:"):
        network, metadata = resolve_feature_network(key[len("features:"):], device=device)
        return (lambda x, x_hat: feature_distance(x, x_hat, network)), metadata["in_channels"]
    model = build_lpips("squeeze", pnet_rand=True).to(device)
    return (lambda x, x_hat: lpips_between(model, x, x_hat)), 3


def seconds_per_image(distance, channels: int, side: int, batch: int, repeats: int, device) -> float:
    """Mean seconds per image of distance(x, x_hat).sum().backward() to x_hat, after one untimed call."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, side, side, generator=generator).to(device)
    x_hat = (x + 0.05 * torch.randn(x.shape, generator=generator).to(device)).clamp(0, 1).requires_grad_()
    for repeat in range(repeats + 1):
        if repeat == 1:
            synchronise(device)
            started = time.perf_counter()
        x_hat.grad = None
        distance(x, x_hat).sum().backward()
    synchronise(device)
    return (time.perf_counter() - started) / (repeats * batch)


def distance_costs(device, batch: int, repeats: int, json_path: str | None, smoke: bool) -> None:
    """The --distance-costs table: forward + backward seconds per image of each distance at each side."""
    info = device_info(device)
    print(describe_device(info))
    if smoke:
        print("SMOKE RUN: checks that every row runs; its milliseconds are not a timing (2 images, 1 repeat)")
    print(f"forward + backward to x_hat, batches of {batch}, {repeats} timed repeats after 1 untimed")
    print("| distance | side | ms / image |\n|---|---:|---:|")
    table = []
    for key, what in DISTANCES.items():
        distance, channels = distance_under_test(key, device)
        for side in DISTANCE_SIDES:
            seconds = seconds_per_image(distance, channels, side, batch, repeats, device)
            table.append({"distance": key, "what": what, "side": side, "channels": channels,
                          "seconds_per_image": seconds})
            print(f"| {what} | {side} | {1e3 * seconds:.3g} |", flush=True)
    write_json(json_path, info, table, batch=batch, repeats=repeats, smoke=smoke,
               units="seconds per image, forward + backward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (at least 4 for cuda_graph)")
    parser.add_argument("--images", type=int, default=4096, help="64x64 natural patches held in memory")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help=f"run only these rows: {', '.join(ROWS)}")
    parser.add_argument("--json", metavar="OUT", help="also write the table and device description to this file")
    parser.add_argument("--distance-costs", action="store_true",
                        help="time each perceptual distance alone instead (forward + backward per image)")
    parser.add_argument("--distance-batch", type=int, default=32, help="--distance-costs: images per call")
    parser.add_argument("--repeats", type=int, default=10, help="--distance-costs: timed calls per row")
    parser.add_argument("--smoke", action="store_true", help="--distance-costs with 2 images and 1 repeat")
    args = parser.parse_args()
    if args.distance_costs or args.smoke:
        batch, repeats = (2, 1) if args.smoke else (args.distance_batch, args.repeats)
        distance_costs(resolve_device(args.device), batch, repeats, args.json, args.smoke)
        return
    rows_to_run = selected_rows(args.rows, list(ROWS))
    device = resolve_device(args.device)
    info = device_info(device)
    peak = peak_bf16_tflops(device)
    print(describe_device(info))
    print(f"conv64 + LPIPS-vgg (random backbone) on {args.images} natural 64x64 RGB patches; {args.warmup} warm-up + "
          f"{args.steps} timed steps; dense bf16 peak: {f'{peak:g} TFLOP/s' if peak else 'unknown (no fraction shown)'}"
          + ("" if device.type == "cuda" else "; not CUDA, so autocast is off and every row runs in fp32"))
    print("| batch | step | GFLOP/step | images/s | TFLOP/s | of bf16 peak |\n|---:|---|---:|---:|---:|---:|")
    table = []
    for batch_size in args.batch_sizes:
        config = resolve("natural-bvae", None, [f"data.subset={args.images}", f"train.batch_size={batch_size}",
                                                 f"train.device={device}", *PERCEPTUAL])
        data = load_dataset(config.data, split="train").to(device)
        flops = count_step_flops(config, data, device)
        for key in rows_to_run:
            images_per_s, status = run_row(key, config, data, device, args.warmup, args.steps)
            tflops = flops * images_per_s / batch_size / 1e12 if images_per_s else None
            fraction = tflops / peak if tflops is not None and peak else None
            table.append({"row": key, "step": ROWS[key], "batch_size": batch_size, "flops_per_step": flops,
                          "images_per_s": images_per_s, "tflops_per_s": tflops, "fraction_of_bf16_peak": fraction,
                          "status": status})
            shown = (f"{images_per_s:,.0f} | {tflops:.3g} | {f'{100 * fraction:.1f}%' if fraction is not None else '-'}"
                     if images_per_s else f"{status} | - | -")
            print(f"| {batch_size} | {ROWS[key]} | {flops / 1e9:,.1f} | {shown} |", flush=True)
    fractions = [row["fraction_of_bf16_peak"] for row in table if row["fraction_of_bf16_peak"] is not None]
    if fractions:
        best = max(fractions)
        print(f"target: >= {TARGET_FRACTION:.0%} of the bf16 peak; best row {best:.1%} -> "
              f"{'met' if best >= TARGET_FRACTION else 'MISSED'}")
    write_json(args.json, info, table, units="FLOPs per training step; TFLOP/s achieved", images=args.images,
               warmup=args.warmup, steps=args.steps, dense_bf16_peak_tflops=peak, target_fraction=TARGET_FRACTION,
               weighting_convention=config.loss.convention)


if __name__ == "__main__":
    main()
