"""Reports of a sweep: results.csv, claims.json (C1-C4, Holm-adjusted verdicts) and a self-contained report.html."""

from vaelens.report.claims import evaluate_claims, format_claims_table, write_claims
from vaelens.report.collect import RunRecord, load_sweep, loss_family, write_results_csv
from vaelens.report.html import build_report
from vaelens.report.statistics import holm_adjust, t_interval, t_test, verdict

__all__ = ["RunRecord", "build_report", "evaluate_claims", "format_claims_table", "holm_adjust", "load_sweep",
           "loss_family", "t_interval", "t_test", "verdict", "write_claims", "write_results_csv"]
