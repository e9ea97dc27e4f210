"""Reports of a sweep: results.csv, claims.json (C1-C3 with verdicts) and a self-contained report.html."""

from vaelens.report.claims import evaluate_claims, format_claims_table, t_interval, verdict, write_claims
from vaelens.report.collect import RunRecord, load_sweep, loss_family, write_results_csv
from vaelens.report.html import build_report

__all__ = ["RunRecord", "build_report", "evaluate_claims", "format_claims_table", "load_sweep", "loss_family",
           "t_interval", "verdict", "write_claims", "write_results_csv"]
