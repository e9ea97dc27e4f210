"""What encoding once saves `vaelens analyze` on a diffusers AutoencoderKL: the same analysis from two source trees.

A scaled-down Stable Diffusion v1 AutoencoderKL (SD v1's layout: 4 blocks, 2 layers each, mid-block attention,
4 latent channels, downsampling 8; channels 32-64-128-128 instead of 128-256-512-512; random weights, seeded,
since the cost does not depend on them) is saved with `save_pretrained` and analysed on --images natural-image
test patches, as `vaelens analyze --model diffusers:FOLDER --data natural` does, once per source tree and round.
Each analysis runs in a fresh process whose PYTHONPATH is that tree's `src`; the timer wraps `analyze()` only
(not the imports or the loading), and the autoencoder's encode and decode are wrapped to count the images
each sees and the seconds spent in them. The trees run in a rotated order each round; the table gives medians.
The numbers of the two trees' first-round analyses are then compared key by key.

    git worktree add /tmp/old-main <commit>      # the tree to compare against
    python benchmarks/bench_analyze_encode.py --old-src /tmp/old-main/src --rounds 3 --images 256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEW_SOURCE = HERE.parent / "src"


def build_autoencoder(folder: Path) -> None:
    """The scaled-down SD v1 AutoencoderKL described above, saved to `folder` (kept between runs)."""
    if (folder / "config.json").is_file():
        return
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
                  block_out_channels=(32, 64, 128, 128), sample_size=64,
                  down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4).save_pretrained(folder)


def _counted(function, tally: dict, name: str):
    def wrapped(x, *args, **kwargs):
        started = time.perf_counter()
        result = function(x, *args, **kwargs)
        tally[f"{name}_seconds"] += time.perf_counter() - started
        tally[f"{name}_images"] += len(x)
        return result
    return wrapped


def child(model_folder: str, images: int, image_size: int, out: str) -> None:
    """One analysis in this process (whichever vaelens PYTHONPATH gives); prints its timings as JSON."""
    import torch

    import vaelens
    from vaelens.analysis import analyze
    from vaelens.config import DataConfig
    from vaelens.data import load_dataset
    from vaelens.pretrained import load_diffusers_autoencoder

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    model = load_diffusers_autoencoder(model_folder, image_size, "cpu")
    # As `vaelens analyze --model` loads --data: every image of the split is evaluation data.
    data = load_dataset(DataConfig(name="natural", image_size=image_size, test_fraction=0.0), split="test")
    tally = {"encode_seconds": 0.0, "encode_images": 0, "decode_seconds": 0.0, "decode_images": 0}
    model.autoencoder.encode = _counted(model.autoencoder.encode, tally, "encode")
    model.autoencoder.decode = _counted(model.autoencoder.decode, tally, "decode")
    started = time.perf_counter()
    results = analyze(model, data, objective=None, max_images=images, device="cpu", progress=False)
    tally["seconds"] = time.perf_counter() - started
    Path(out).write_text(json.dumps(results))
    print(json.dumps({**tally, "source": str(Path(vaelens.__file__).parents[1]), "threads": torch.get_num_threads()}))


def run_tree(source: Path, args, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, __file__, "--child", str(args.out / "vae"), str(args.images), str(args.image_size),
               str(out)]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if finished.returncode:
        raise SystemExit(f"{source}: {finished.stderr.strip().splitlines()[-1]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def compare(old: dict, new: dict) -> str:
    """How the numbers of two analyses differ: identical keys, the largest relative difference, added keys."""
    identical, differences = 0, {}
    for key, value in old.items():
        if key not in new:
            continue
        a, b = (v if isinstance(v, list) else [v] for v in (value, new[key]))
        if a == b:
            identical += 1
            continue
        differences[key] = max((abs(x - y) / max(abs(x), abs(y)) for x, y in zip(a, b)
                                if isinstance(x, (int, float)) and isinstance(y, (int, float))), default=float("nan"))
    added = [key for key in new if key not in old]
    worst = max(differences.items(), key=lambda item: item[1], default=None)
    lines = [f"{len(old)} keys of the old analysis: {identical} identical, {len(differences)} differ"
             + (f" (largest relative difference {worst[1]:.1e}, {worst[0]})" if worst else ""),
             f"{len([k for k in old if k not in new])} removed, {len(added)} added ({', '.join(added)})"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-src", type=Path, help="the source tree to compare against (its src/ folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-analyze-encode"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_folder, images, image_size, out = args.child
        return child(model_folder, int(images), int(image_size), out)
    args.out.mkdir(parents=True, exist_ok=True)
    build_autoencoder(args.out / "vae")
    trees = {"before (--old-src)": args.old_src, "after (this tree)": NEW_SOURCE} if args.old_src \
        else {"this tree": NEW_SOURCE}
    labels = list(trees)
    rows: dict[str, list[dict]] = {label: [] for label in labels}
    for round_index in range(args.rounds):
        order = labels[round_index % len(labels):] + labels[:round_index % len(labels)]
        for label in order:
            out = args.out / f"{labels.index(label)}-{round_index}.json"
            rows[label].append(run_tree(trees[label], args, out))
            print(f"round {round_index + 1} {label}: {rows[label][-1]['seconds']:.2f} s", flush=True)
    print(f"\n{args.images} natural test patches at {args.image_size} px, {args.rounds} rounds (rotated), "
          f"{rows[labels[0]][0]['threads']} torch threads\n")
    print("| tree | analyze s (median) | rounds | images encoded | encode s (median) | images decoded | decode s |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for label in labels:
        runs = rows[label]
        median = {key: statistics.median(run[key] for run in runs) for key in ("seconds", "encode_seconds",
                                                                                "decode_seconds")}
        spread = ", ".join(f"{run['seconds']:.2f}" for run in runs)
        print(f"| {label} | {median['seconds']:.2f} | {spread} | "
              f"{runs[0]['encode_images']} | {median['encode_seconds']:.2f} | {runs[0]['decode_images']} | "
              f"{median['decode_seconds']:.2f} |")
    if args.old_src:
        old, new = (json.loads((args.out / f"{index}-0.json").read_text()) for index in (0, 1))
        print("\n" + compare(old, new))


if __name__ == "__main__":
    main()
