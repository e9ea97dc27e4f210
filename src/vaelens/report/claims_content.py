"""The claims as report content: the claims section (the page's and STUDY.md's), the terminal's digest, the
verdict counts, and the comparison with an earlier study. Every renderer prints these objects."""

from __future__ import annotations

from collections import Counter

from vaelens.report.claim_rows import ClaimRow, ClaimsReport
from vaelens.report.claims import CLAIMS, COMPARISONS
from vaelens.report.model import Bullets, Cell, Number, Paragraph, Section, Table

VERDICTS = ("supported", "contradicted", "inconclusive")
NO_PAIRS = "the sweep has no neural-loss run with a matching pointwise run"
CLAIMS_COLUMNS = ["claim", "comparison", "metric (units)", "dataset", "convention (vs pointwise)", "family", "effect",
                  "95% CI (raw)", "p", "p (Holm)", "seeds", "compared over", "verdict", "why"]


def seeds_cell(row: ClaimRow) -> tuple:
    """A row's seed count, with the seeds whose runs the plateau check left out of it: a matched-beta row loses
    those seeds, a curve row their runs' points: '4 (seed 2 left out)'; the claims' plateau paragraph says why."""
    lost = row.seeds_not_on_plateau
    if not lost:
        return (Number(row.n_pairs, "count"),)
    return (Number(row.n_pairs, "count"), f" (seed{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost))} left out)")


def compared_over(row: ClaimRow) -> Cell:
    """What a claims row compared over: "same beta", "no overlap", or the range of the matching variable."""
    if row.overlap is None:
        return "same beta"
    if row.overlap.low is None:
        return "no overlap"
    return (f"{row.overlap.variable} in [", Number(row.overlap.low, "bound"), ", ", Number(row.overlap.high, "bound"),
            f"] {row.overlap.units}")


def interval_cell(row: ClaimRow) -> tuple:
    return ("[", Number(row.ci_low, "effect"), ", ", Number(row.ci_high, "effect"), "]")


def plateau_exclusion_text(report: ClaimsReport) -> str:
    """One paragraph: which runs the claims leave out as still improving, or that none were."""
    plateau = report.plateau
    left_out, improving = plateau.runs_left_out, plateau.runs_still_improving
    if improving and not plateau.leave_out_still_improving:
        return (f"{len(improving)} run{'s' if len(improving) > 1 else ''} still improving by the paired plateau "
                f"check, none left out: {plateau.policy}.")
    if not left_out:
        return ("Every run the claims use is on the plateau by the paired plateau check (or has no check); none "
                "was left out.")
    groups: dict[tuple, list[str]] = {}
    for run in left_out:
        figure = run.relative_improvement
        groups.setdefault((run.dataset, run.convention, run.neural_family), []).append(
            f"beta {run.beta:g} seed {run.seed}" + ("" if figure is None else f" ({100 * figure:.2f}%)"))
    listed = "; ".join(f"{dataset} {convention} {family}: {', '.join(runs)}"
                       for (dataset, convention, family), runs in groups.items())
    return (f"{len(left_out)} run{'s' if len(left_out) > 1 else ''} still improving by the paired plateau check "
            f"{'are' if len(left_out) > 1 else 'is'} left out of the claims: {listed}. Rule: {plateau.policy}.")


def multiplicity_paragraph(report: ClaimsReport) -> Paragraph:
    """What the verdicts' p-values were adjusted for, and how."""
    multiplicity = report.multiplicity
    return Paragraph(f"{multiplicity['method']} over {multiplicity['tests']} tests at family-wise error rate "
                     f"{multiplicity['alpha']}: the family is {multiplicity['family']}. p-values: "
                     f"{multiplicity['p_value']}. Adjustment: {multiplicity['adjustment']}. The intervals shown are "
                     "raw (unadjusted) 95% intervals; the verdict reads the adjusted p (p_holm).", "Multiplicity.",
                     "multiplicity")


def claims_table(report: ClaimsReport) -> Table:
    """The pooled rows, every comparison, grouped by comparison (a document prints one table per comparison)."""
    rows = report.pooled_rows()
    cells = [[row.claim, row.comparison, f"{row.metric} ({row.metric_units})", row.dataset,
              f"{row.convention} (vs {row.baseline_convention})", row.neural_family, Number(row.effect, "effect"),
              interval_cell(row), Number(row.p_value, "p"), Number(row.p_holm, "p"), seeds_cell(row),
              compared_over(row), row.verdict, row.verdict_reason] for row in rows]
    return Table(list(CLAIMS_COLUMNS), cells, row_classes=[row.verdict for row in rows], role="claims", group_by=1,
                 group_titles={name: comparison.title for name, comparison in COMPARISONS.items()})


def claims_section(report: ClaimsReport) -> Section:
    """The claims: what each states, how effects are compared and decided, which runs were left out, the table."""
    statements = Bullets([(claim.claim_id, claim.statement) for claim in CLAIMS])
    comparisons = Bullets(list(report.comparisons.items()))
    items = [statements,
             Paragraph("Effect = neural-loss run minus pointwise run, compared as follows (per-beta matched-beta rows "
                       "in claims.json):"), comparisons,
             Paragraph(f"{int(report.confidence * 100)}% interval: {report.interval}. Verdict: {report.verdict_rule}."),
             multiplicity_paragraph(report),
             Paragraph(plateau_exclusion_text(report), "Trained models only.", "plateau")]
    if report.pooled_rows():
        items.append(claims_table(report))
    else:
        items.append(Paragraph(f"No claim could be tested: {NO_PAIRS}."))
    return Section("Claims", items)


def claims_digest(report: ClaimsReport) -> Section:
    """The terminal's view of the pooled rows: raw 95% interval, raw and Holm-adjusted p, and why a table is empty."""
    rows = report.pooled_rows()
    if not rows:
        if report.plateau.runs_left_out:
            return Section("Claims", [Paragraph("no claim could be tested. " + plateau_exclusion_text(report))])
        return Section("Claims", [Paragraph(f"no claim could be tested: {NO_PAIRS}")])
    header = ["claim", "comparison", "metric", "dataset", "convention", "family", "effect", "95% CI (raw)", "p",
              "p_holm", "n", "verdict", "basis"]
    table = Table(header, [[row.claim, row.comparison, row.metric, row.dataset, row.convention, row.neural_family,
                            Number(row.effect, "effect"), interval_cell(row), Number(row.p_value, "p"),
                            Number(row.p_holm, "p"), str(row.n_pairs), row.verdict, row.verdict_basis]
                           for row in rows])
    items = [table]
    if report.plateau.runs_still_improving:
        items.append(Paragraph(plateau_exclusion_text(report)))
    method, tests = report.multiplicity.get("method", "Holm"), report.multiplicity.get("tests", "?")
    items.append(Paragraph(f"verdicts: {method}-adjusted p over all {tests} rows with a p-value (per-beta rows in "
                           "claims.json)"))
    return Section("Claims", items)


def verdicts_table(report: ClaimsReport) -> Table:
    """Verdict counts of the pooled rows per claim and comparison, and of every row."""
    pooled = report.pooled_rows()
    counts = Counter((row.claim, row.comparison, row.verdict) for row in pooled)
    keys = sorted({(row.claim, row.comparison) for row in pooled})
    rows = [[claim, comparison, *(Number(counts[(claim, comparison, verdict)], "count") for verdict in VERDICTS)]
            for claim, comparison in keys]
    every = Counter(row.verdict for row in report.results)
    rows.append(["all pooled rows", "", *(Number(sum(counts[(c, m, v)] for c, m in keys), "count")
                                          for v in VERDICTS)])
    rows.append(["every row (per-beta too)", "", *(Number(every[verdict], "count") for verdict in VERDICTS)])
    return Table(["claim", "comparison", *VERDICTS], rows)


def row_key(row: ClaimRow) -> tuple:
    """What identifies a pooled claims row across studies."""
    matched_on = row.overlap.variable if row.overlap is not None else None
    return (row.claim, row.comparison, row.metric, row.metric_key, matched_on, row.dataset, row.convention,
            row.baseline_convention, row.neural_family)


PREVIOUS_COLUMNS = ["claim", "comparison", "metric (units)", "dataset", "convention", "family", "effect now",
                    "95% CI now", "verdict now", "effect before", "95% CI before", "verdict before"]


def previous_items(report: ClaimsReport, previous: ClaimsReport) -> list:
    """The pooled rows of `report` that `previous` (an earlier study) also has, effect and verdict in each; rows
    only one study has are counted, not listed."""
    before = {row_key(row): row for row in previous.pooled_rows()}
    rows, only_now = [], 0
    for row in report.pooled_rows():
        old = before.pop(row_key(row), None)
        if old is None:
            only_now += 1
            continue
        rows.append([row.claim, row.comparison, f"{row.metric} ({row.metric_units})", row.dataset, row.convention,
                     row.neural_family, Number(row.effect), interval_cell(row), row.verdict, Number(old.effect),
                     interval_cell(old), old.verdict])
    changed = sum(row[8] != row[11] for row in rows)
    text = Paragraph(f"{len(rows)} pooled rows in both studies; {changed} changed verdict. Rows only in this study: "
                     f"{only_now}; only in the previous one: {len(before)}.")
    return [text, Table(PREVIOUS_COLUMNS, rows)] if rows else [text]
