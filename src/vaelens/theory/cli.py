"""`vaelens theory`: its options are the fields of `TheoryConfig`, documented by their docstrings.

    vaelens theory --out theory/ --sources gaussian --betas 20,4 --steps 3000

Torch is imported only when the command runs, so `vaelens --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vaelens.options import add_dataclass_options, dataclass_from_options
from vaelens.theory.config import TheoryConfig

OPTION_NAMES = {"num_samples": "--samples"}
"""Options whose name is not the field's (--samples predates the num_samples field)."""


def add_theory_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `theory` command on an argparse subparsers object."""
    parser = subparsers.add_parser("theory", help="linear VAEs trained under pixel/additive/convex metrics vs the "
                                                  "closed form -> theory.json + plots")
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    add_dataclass_options(parser, TheoryConfig, OPTION_NAMES)
    parser.set_defaults(handler=command_theory)
    return parser


def command_theory(args) -> int:
    from vaelens.theory.experiment import run_theory

    config = dataclass_from_options(TheoryConfig, args, OPTION_NAMES)
    report = run_theory(config, args.out)
    print(f"theory written: {Path(args.out) / 'theory.json'} (rates in nats)")
    for name, source in report["sources"].items():
        agreeing = sum(run["agreement"]["within_tolerance"] for run in source["runs"])
        print(f"  {name}: {agreeing}/{len(source['runs'])} runs within 2% (rate) and 5% (variances) of theory")
        for convention, rows in source["perceptual_effect"].items():
            changes = ", ".join(f"beta={row['beta']:.3g}: {row['change_trained']:+.3f} {row['direction_trained']} "
                                f"(theory {row['change_predicted']:+.3f})" for row in rows)
            print(f"    {convention} - pixel rate: {changes}")
    return 0
