"""Command-line options several commands share (analyze and compare analyse models the same way), declared
once. Nothing heavy is imported here, so `vaelens --help` stays fast."""

from __future__ import annotations

import argparse


def image_count_argument(text: str):
    """--images: an integer or "auto" (the parser is imported when used)."""
    from vaelens.analysis.sample_size import image_count

    return image_count(text)


def add_analysis_switches(parser: argparse.ArgumentParser, probe_help: str) -> None:
    """The switches of an analysis: --probe, --quick, --no-disentanglement, --diverged, --device, --no-progress."""
    parser.add_argument("--probe", action="store_true", help=probe_help)
    parser.add_argument("--quick", action="store_true", help="smaller disentanglement estimates")
    parser.add_argument("--no-disentanglement", action="store_true",
                        help="skip the disentanglement scores (FactorVAE renders ~10^5 dSprites)")
    parser.add_argument("--diverged", action="store_true",
                        help="analyse a diverged run at its last good checkpoint (refused otherwise)")
    parser.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default auto)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
