"""Speed and memory of the full-data I(x; z) estimator: vaelens against two hand-written versions.

- vaelens: `vaelens.metrics.mutual_information`, chunked, one (B, 2d) x (2d, N) matmul per chunk.
- broadcast: chunks of samples scored with a (B, N, d) broadcast, the way beta-TCVAE-style code does it.
- naive: the whole (N, N, d) tensor at once; skipped, with the memory it would need, above a limit.

All three use the same posterior and the same standard-normal draws, in float64, and their results
are checked against each other. Each measurement runs in a fresh process so that memory figures do
not mix. What "peak memory" means here:
- CPU: the rise of the process's peak resident set size (ru_maxrss) during the call, measured from
  just before it; allocator caching and the inputs already resident are not counted.
- CUDA: torch.cuda.max_memory_allocated during the call minus the memory allocated before it.

`--json OUT` also writes the table (seconds, bytes, nats) with the device description.

    python benchmarks/bench_mutual_information.py --sizes 10000 50000 --dims 10 --devices cpu cuda
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import platform
import resource
import time

import torch
from bench_common import NEEDS_CUDA, device_info, write_json

LOG_2PI = math.log(2 * math.pi)
NAIVE_LIVE_COPIES = 2
"""(N, N, d) float64 tensors alive at the naive version's peak (measured ~1.9 at N = 3000 on CPU)."""


def posterior(num_points: int, num_units: int, device: str):
    """A fixed, moderately informative posterior and its draws: mu ~ N(0, I), sigma^2 in (0.05, 0.5)."""
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(num_points, num_units, generator=generator, dtype=torch.float64)
    logvar = torch.empty(num_points, num_units, dtype=torch.float64).uniform_(math.log(0.05), math.log(0.5),
                                                                            generator=generator)
    noise = torch.randn(num_points, num_units, generator=generator, dtype=torch.float64)
    return mu.to(device), logvar.to(device), noise.to(device)


def naive_mutual_information(mu, logvar, noise) -> float:
    samples = mu + (0.5 * logvar).exp() * noise
    squared = (samples[:, None, :] - mu[None]).square() * (-logvar).exp()[None]
    pairwise = -0.5 * (squared + logvar[None] + LOG_2PI).sum(-1)
    own = pairwise.diagonal()
    return float((own - torch.logsumexp(pairwise, dim=1) + math.log(len(mu))).mean())


def broadcast_mutual_information(mu, logvar, noise, chunk_size: int = 256) -> float:
    samples = mu + (0.5 * logvar).exp() * noise
    precision = (-logvar).exp()
    terms = []
    for start in range(0, len(mu), chunk_size):
        chunk = samples[start:start + chunk_size]
        pairwise = -0.5 * ((chunk[:, None, :] - mu[None]).square() * precision[None] + logvar[None] + LOG_2PI).sum(-1)
        own = pairwise[torch.arange(len(chunk)), torch.arange(start, start + len(chunk))]
        terms.append(own - torch.logsumexp(pairwise, dim=1) + math.log(len(mu)))
    return float(torch.cat(terms).mean())


def vaelens_mutual_information(mu, logvar, noise) -> float:
    from vaelens.metrics.information import mutual_information

    return mutual_information(mu, logvar, noise=noise)


METHODS = {"vaelens": vaelens_mutual_information, "broadcast": broadcast_mutual_information,
           "naive": naive_mutual_information}


def measure(method: str, num_points: int, num_units: int, device: str, queue) -> None:
    """Child process: time one call and record its peak-memory rise; put (seconds, bytes, value) on `queue`."""
    torch.manual_seed(0)
    function = METHODS[method]
    warm = posterior(64, num_units, device)
    function(*warm)
    mu, logvar, noise = posterior(num_points, num_units, device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    value = function(mu, logvar, noise)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    queue.put((seconds, peak, value))


def run_in_fresh_process(method: str, num_points: int, num_units: int, device: str):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(method, num_points, num_units, device, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000], help="numbers of points N")
    parser.add_argument("--dims", type=int, default=10, help="latent units d")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="devices to try (cuda skipped if absent)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--naive-limit-gib", type=float, default=4.0,
                        help="skip the naive version when its (N, N, d) tensors would need more than this")
    parser.add_argument("--json", metavar="OUT", help="also write the table and device description to this file")
    args = parser.parse_args()

    devices = [device for device in args.devices if device != "cuda" or torch.cuda.is_available()]
    table = [{"device": "cuda", "status": NEEDS_CUDA} for device in args.devices if device not in devices]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads, d={args.dims}, float64")
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
    header = f"{'device':>6} {'N':>7} {'method':>10} {'seconds':>9} {'peak MiB':>10} {'I (nats)':>10}  note"
    print(header)
    print("-" * len(header))
    if table:
        print(f"{'cuda':>6} {'-':>7} {'-':>10} {'-':>9} {'-':>10} {'-':>10}  {NEEDS_CUDA} (not available here)")
    for device in devices:
        for num_points in args.sizes:
            reference = None
            for method in args.methods:
                needed = NAIVE_LIVE_COPIES * num_points**2 * args.dims * 8 / 2**30
                if method == "naive" and needed > args.naive_limit_gib:
                    print(f"{device:>6} {num_points:>7} {method:>10} {'-':>9} {'-':>10} {'-':>10}  "
                          f"skipped: would need ~{needed:.1f} GiB (> {args.naive_limit_gib} GiB limit)")
                    table.append({"device": device, "N": num_points, "method": method,
                                  "status": f"skipped: would need ~{needed:.1f} GiB"})
                    continue
                seconds, peak, value = run_in_fresh_process(method, num_points, args.dims, device)
                reference = value if reference is None else reference
                note = "" if abs(value - reference) < 1e-9 else f"differs from first by {value - reference:.2e}"
                print(f"{device:>6} {num_points:>7} {method:>10} {seconds:>9.2f} {peak / 2**20:>10.1f} "
                      f"{value:>10.5f}  {note}", flush=True)
                table.append({"device": device, "N": num_points, "method": method, "seconds": seconds,
                              "peak_bytes": peak, "mutual_information_nats": value, "status": note or "ok"})
    info = device_info(torch.device("cuda" if "cuda" in devices else "cpu"))
    write_json(args.json, info, table, units="seconds per call; peak memory rise in bytes; I(x; z) in nats",
               dims=args.dims, dtype="float64", devices=devices)


if __name__ == "__main__":
    main()
