"""Reports of a sweep: results.csv, claims.json (C1-C4, Holm-adjusted verdicts), a self-contained report.html and the
generated blocks of a study document, all rendered from one content model (vaelens.report.content); and the
side-by-side comparison of several models (vaelens.report.compare: compare.html, compare.csv)."""

from vaelens.report.build import BuiltReport, build_report, claims_text
from vaelens.report.claim_rows import ClaimRow, ClaimsReport
from vaelens.report.claims import evaluate_claims, write_claims
from vaelens.report.collect import write_results_csv
from vaelens.report.statistics import holm_adjust, t_interval, t_test, verdict

__all__ = ["BuiltReport", "ClaimRow", "ClaimsReport", "build_report", "claims_text", "evaluate_claims",
           "holm_adjust", "t_interval", "t_test", "verdict", "write_claims", "write_results_csv"]
