"""Cost of the mechanistic probe in an analysis: conv64 on dSprites at the demo's and the quick study's sizes.

For each model size and loss, the probe (`vaelens.analysis.probe.run_probe`: one decoder JVP and one
Hessian-vector product of the run's loss per latent unit and batch) is timed on --images dSprites test
images, beside the rest of the analysis at the quick study's settings (the same images encoded,
128 distortion images, no disentanglement), so the probe's share of an analysis is visible. Weights
are random (the cost does not depend on them); the feature network has the built-in architecture.

    python benchmarks/bench_probe.py --images 256 --repeats 3 --device cpu
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vaelens.analysis import analyze
from vaelens.analysis.probe import run_probe
from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.features import DEFAULT_WIDTHS, FeatureNetwork, save_feature_network
from vaelens.losses import build_objective
from vaelens.models import build_model

SIZES = {
    "demo (16 ch, 64 hidden, 6 latents)": ["model.channels=16", "model.hidden_dim=64", "model.latent_dim=6"],
    "quick study (8 ch, 32 hidden, 10 latents)": ["model.channels=8", "model.hidden_dim=32", "model.latent_dim=10"],
}
LOSSES = {
    "pointwise (Bernoulli)": [],
    "+ features perceptual": ["loss.perceptual=features:{features}", "loss.perceptual_weight=100"],
    "+ SSIM": ["loss.ssim_weight=1.0"],
}


def seconds(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256, help="images the probe (and the analysis) measure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_dataset(resolve("dsprites-bvae", None, []).data, split="test")
    indices = torch.randperm(data.num_images, generator=torch.Generator().manual_seed(0))[:args.images].sort().values
    print(f"# device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} at start), torch {torch.__version__}, {datetime.date.today()}, "
          f"{args.images} dSprites test images, {args.repeats} repeats")
    print("| model | loss | probe s (median) | probe s (min) | analysis without probe s (median) |\n"
          "|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        features = str(Path(folder) / "random-features.safetensors")
        save_feature_network(FeatureNetwork(1, 64, DEFAULT_WIDTHS), {"method": "random (benchmark only)",
                                                                     "held_out": None}, features)
        for size, size_overrides in SIZES.items():
            for loss, loss_overrides in LOSSES.items():
                overrides = size_overrides + [o.format(features=features) for o in loss_overrides]
                config = resolve("dsprites-bvae", None, overrides)
                torch.manual_seed(0)
                model = build_model(config.model, data.image_shape).to(device).eval()
                objective = build_objective(config.loss, data.image_shape, model, device)
                probe = seconds(lambda: run_probe(model, objective, data, indices, args.images, 0, device),
                                args.repeats)
                rest = seconds(lambda: analyze(model, data, objective=objective, max_images=args.images,
                                               distortion_images=128, disentanglement=False, device=device,
                                               progress=False), args.repeats)
                print(f"| {size} | {loss} | {statistics.median(probe):.2f} | {min(probe):.2f} | "
                      f"{statistics.median(rest):.2f} |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
