"""`vaelens report SWEEP_DIR`: results.csv, claims.json and one self-contained report.html, from the sweep read
once (vaelens.training.sweepdir)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vaelens.claims_design import ClaimsDesign
from vaelens.io import atomic_write_text
from vaelens.report.claim_rows import ClaimsReport
from vaelens.report.claims import evaluate_claims, write_claims
from vaelens.report.claims_content import claims_digest
from vaelens.report.collect import write_results_csv
from vaelens.report.content import page_sections
from vaelens.report.planner import power, spreads_from_claims
from vaelens.report.render_html import render_page
from vaelens.report.render_terminal import render_section
from vaelens.training.sweepdir import Sweep, SweepDirectory


@dataclass
class BuiltReport:
    """What `build_report` wrote, and the claims it decided."""

    page: Path
    """report.html."""
    results_csv: Path
    """results.csv."""
    claims_json: Path
    """claims.json."""
    claims: ClaimsReport
    """The claims, typed (what claims.json holds)."""


def claims_text(claims: ClaimsReport) -> str:
    """The pooled claims as a terminal table, with what the verdicts were adjusted for."""
    return render_section(claims_digest(claims))


def sweep_claims(sweep: Sweep) -> ClaimsReport:
    """The claims of a loaded sweep, decided by the design its index declares (runs still improving left out as it
    says), with each primary endpoint's power at the seed count the study used (vaelens.report.planner)."""
    design = ClaimsDesign.from_json(sweep.index.design)
    claims = evaluate_claims(sweep.runs, leave_out_still_improving=sweep.index.leave_out_still_improving,
                             design=design)
    spreads = spreads_from_claims(claims, design)
    if spreads:
        seeds = max(row.n_pairs for row in claims.family_rows("primary"))
        claims.power = [{**row.to_json(), "seeds": seeds, "effect": spread.effect, "sd": spread.sd}
                        for row, spread in zip(power(spreads, seeds, design), spreads)]
    return claims


def build_report(sweep: Sweep | str | Path, *, traversals: bool = True, progress: bool = True) -> BuiltReport:
    """Write results.csv, claims.json and report.html into the sweep directory. `sweep` is a loaded Sweep or its
    directory; its index says whether the claims leave out runs still improving, and by which declared design
    they are decided."""
    if not isinstance(sweep, Sweep):
        sweep = SweepDirectory(sweep).load()
    csv_path = write_results_csv(sweep.runs, sweep.path / "results.csv")
    claims = sweep_claims(sweep)
    claims_path = write_claims(claims, sweep.path / "claims.json")
    page = sweep.path / "report.html"
    atomic_write_text(page, render_page(f"vaelens report: {sweep.path.name}",
                                        page_sections(sweep, claims, traversals, progress)))
    return BuiltReport(page, csv_path, claims_path, claims)
