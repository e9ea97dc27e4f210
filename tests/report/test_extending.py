"""Extending the results layer: a new latent metric is its function, an entry in the analysis' list of latent
statistics and one line in the quantity registry; a new claim comparison is one registry entry named by a claim.
Each shows up everywhere a reader looks (analysis.json, results.csv, claims.json, report.html, STUDY.md blocks)."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import torch

from vaelens import quantities
from vaelens.analysis import latents
from vaelens.analysis.latents import LatentStatistic
from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.saved_run import analyze_run
from vaelens.quantities import Quantity
from vaelens.report import build_report, claims
from vaelens.report.claims import Comparison, evaluate_claims
from vaelens.report.claims_content import claims_section
from vaelens.report.render_html import render_page
from vaelens.report.render_markdown import block_markdown
from vaelens.training.rundir import RunDirectory


def log_std_range(sample) -> dict:
    """The spread of the units' mean log posterior standard deviation: a toy latent metric."""
    per_unit = 0.5 * sample.logvar.mean(0)
    return {"spread.log_std_range": float(per_unit.max() - per_unit.min())}


def test_a_new_metric_reaches_the_analysis_the_csv_the_claims_and_the_report(tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.setattr(latents, "LATENT_STATISTICS", (*latents.LATENT_STATISTICS,
                                                       LatentStatistic("log-std range", log_std_range)))
    spread = Quantity("log_std_range", ("spread.log_std_range",), "range of mean log sigma", "nats", claims=("C2",),
                      csv=True)
    monkeypatch.setattr(quantities, "QUANTITIES", (*quantities.QUANTITIES, spread))
    monkeypatch.setitem(quantities.BY_NAME, spread.name, spread)
    sweep = shutil.copytree(tiny_sweep, tmp_path / "sweep")
    finished = [path for path in sorted((sweep / "runs").iterdir()) if RunDirectory(path).status() == "finished"]
    for run_dir in finished:
        (run_dir / "analysis.json").unlink()
        analyze_run(run_dir, AnalysisOptions(images=64, distortion_images=32, disentanglement=False), device="cpu",
                    progress=False)
        analysis = json.loads((run_dir / "analysis.json").read_text())
        assert analysis["spread.log_std_range"] >= 0
    report = build_report(sweep, traversals=False, progress=False)
    rows = list(csv.DictReader(report.results_csv.open()))
    assert all(row["log_std_range"] != "" for row in rows if row["status"] == "finished")
    tested = [row for row in report.claims.results if row.metric == "log_std_range"]
    assert {(row.claim, row.comparison, row.metric_units) for row in tested} == {("C2", "matched_beta", "nats")}
    assert any(row.pooled and row.n_pairs == 2 for row in tested)
    assert "<td>log_std_range (nats)</td>" in report.page.read_text()


def test_a_new_comparison_reaches_the_claims_the_page_and_the_document(make_run, monkeypatch):
    along_information = Comparison("matched_information", "Matched I(x; z)", "per seed, the mean gap of the curves "
                                   "against I(x; z) over the range both cover", along="mutual_information")
    monkeypatch.setitem(claims.COMPARISONS, along_information.name, along_information)
    monkeypatch.setattr(claims, "CLAIMS", tuple(
        dataclasses.replace(claim, comparisons=(*claim.comparisons, along_information.name))
        if claim.claim_id == "C2" else claim for claim in claims.CLAIMS))
    generator = torch.Generator().manual_seed(0)
    runs = []
    for seed in range(3):
        for beta in (1.0, 2.0, 4.0):
            for family, shift in (("pointwise", 1.0), ("+perceptual", 1.5)):
                information = 8.0 / (shift * beta) + 0.1 * seed
                noise = float(torch.randn(1, generator=generator)) * 0.01
                runs.append(make_run(family, seed, beta, mutual_information=information,
                                     **{"geometry_active.isoscore": 0.9 - 0.02 * information + noise}))
    payload = evaluate_claims(runs)
    rows = [row for row in payload.pooled_rows() if row.comparison == "matched_information"]
    assert {row.metric for row in rows} == {"isoscore_active", "participation_ratio_active"}
    assert payload.comparisons["matched_information"].startswith("per seed")
    isoscore = next(row for row in rows if row.metric == "isoscore_active")
    assert isoscore.overlap.variable == "mutual_information" and isoscore.n_pairs == 3
    # not a declared endpoint: its rows are exploratory, shown under their own heading and never decided
    assert {row.test_family for row in rows} == {"exploratory"} and {row.verdict for row in rows} == {"exploratory"}
    section = claims_section(payload)
    assert "<td>matched_information</td>" in render_page("claims", [section])
    assert "#### Exploratory: Matched I(x; z)" in block_markdown(section.items)
