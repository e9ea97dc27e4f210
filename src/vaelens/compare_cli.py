"""`vaelens compare`: several models side by side, analysed on the same seeded images.

    vaelens compare runs/pointwise runs/perceptual --images 2000 --out compare/
    vaelens compare runs/b4 diffusers:~/models/sd-vae --data natural --image-size 64 --out compare/

Writes OUT/compare.html (one self-contained page), OUT/compare.csv and each model's analysis in OUT/<label>/.
Torch and the analysis are imported only when the command runs, so `vaelens --help` stays fast.
"""

from __future__ import annotations

import argparse

from vaelens.cli_options import add_analysis_switches, image_count_argument


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `compare` command on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "compare", help="several models side by side on the same images -> compare.html + compare.csv",
        description="Analyse two or more models (vaelens run directories, or diffusers:FOLDER for a local "
                    "AutoencoderKL) on the same seeded images and write one self-contained page and a CSV.")
    parser.add_argument("models", nargs="+", metavar="RUN_OR_MODEL",
                        help="a vaelens run directory, or diffusers:FOLDER (a local AutoencoderKL folder)")
    parser.add_argument("--out", required=True, help="output folder: compare.html, compare.csv, one folder per model")
    parser.add_argument("--label", action="append", default=None,
                        help="a model's name on the page, once per model in order (default: its folder's name)")
    parser.add_argument("--data", help="evaluation data as NAME or NAME:PATH (default: the runs' own test split), "
                                       "e.g. folder:~/images; pretrained models alone need it")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image size for --data (default: the runs', or 64 for pretrained models alone)")
    parser.add_argument("--images", type=image_count_argument, default=None,
                        help="images every model encodes, one count for all (default 2000: the fewest "
                             '"auto" encodes in `vaelens analyze`)')
    parser.add_argument("--seed", type=int, default=0, help="seed of the image draws (default 0)")
    add_analysis_switches(parser, "the mechanistic probe for the runs (their own loss)")
    parser.set_defaults(handler=command_compare)
    return parser


def command_compare(args) -> int:
    from vaelens.analysis.options import AnalysisOptions
    from vaelens.report.compare import DEFAULT_COMPARE_IMAGES, compare

    images = DEFAULT_COMPARE_IMAGES if args.images is None else args.images
    options = AnalysisOptions(images=images, seed=args.seed, probe=args.probe, quick=args.quick,
                              disentanglement=not args.no_disentanglement)
    result = compare(args.models, args.out, labels=args.label, data_spec=args.data, image_size=args.image_size,
                     options=options, device=args.device, progress=not args.no_progress,
                     allow_diverged=args.diverged)
    for model, analysis in zip(result.models, result.analyses):
        how = "reused (same settings)" if model.label in result.reused else "analysed"
        print(f"  {model.label}: {how}; rate {analysis.get('rate', float('nan')):.4g} nats, "
              f"I(x; z) {analysis.get('mutual_information', float('nan')):.4g} nats")
    print(f"comparison written: {result.page} (with {result.csv.name})")
    return 0
