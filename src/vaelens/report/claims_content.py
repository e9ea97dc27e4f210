"""The claims as report content: the claims section (the page's and STUDY.md's), the terminal's digest, the
verdict counts, and the comparison with an earlier study. Every renderer prints these objects."""

from __future__ import annotations

from collections import Counter

from vaelens.report.claim_rows import ClaimRow, ClaimsReport
from vaelens.report.claims import CLAIMS, COMPARISONS
from vaelens.report.model import Bullets, Cell, Number, Paragraph, Section, Table
from vaelens.report.statistics import EXPLORATORY

VERDICTS = ("supported", "contradicted", "no effect", "inconclusive")
NO_PAIRS = "the sweep has no neural-loss run with a matching pointwise run"
DECIDED_COLUMNS = ["claim", "endpoint (units)", "setting (vs pointwise)", "effect", "95% CI (raw)", "bound", "p",
                   "p (adjusted)", "p sign-flip", "p equivalence (adjusted)", "seeds", "compared over", "outcome",
                   "why"]
EXPLORATORY_COLUMNS = ["claim", "comparison", "metric (units)", "dataset", "convention (vs pointwise)", "family",
                       "effect", "95% CI (raw)", "p (raw)", "p sign-flip (raw)", "seeds", "compared over", "note"]
FAMILY_TITLES = {"primary": "Primary family (one endpoint per claim, Holm)",
                 "secondary": "Secondary family (the endpoints in every other setting, Benjamini-Hochberg)",
                 "exploratory": "Exploratory rows (raw intervals, no decision)"}


def _seed_list(seeds) -> str:
    seeds = sorted(set(seeds))
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def seeds_cell(row: ClaimRow) -> tuple:
    """A row's seed count, with what happened to the others: '5 (seed 2 at beta 4 imputed)' when a pooled row filled
    a missing run from the additive model, 'seed 2 with fewer points' when a curve lost a run still improving, 'seed 3
    left out' or 'dropped' when the seed is not in the row; the claims' paragraphs say why."""
    kept, notes = set(row.seeds), []
    lost = row.seeds_not_on_plateau
    imputed_seeds = {seed for seed, _ in row.imputed}
    if [seed for seed in lost if seed not in kept]:
        notes.append(f"{_seed_list(seed for seed in lost if seed not in kept)} left out")
    if row.imputed:
        notes.append(", ".join(f"seed {seed} at beta {beta:g}" for seed, beta in row.imputed) + " imputed")
    fewer = [seed for seed in lost if seed in kept and seed not in imputed_seeds]
    if fewer:
        notes.append(f"{_seed_list(fewer)} with fewer points")
    dropped = [item["seed"] for item in row.seeds_dropped if item["seed"] not in kept and item["seed"] not in lost]
    if dropped:
        notes.append(f"{_seed_list(dropped)} dropped")
    if not notes:
        return (Number(row.n_pairs, "count"),)
    return (Number(row.n_pairs, "count"), f" ({'; '.join(notes)})")


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


def design_items(report: ClaimsReport) -> list:
    """The design the verdicts follow, as declared before the data: who declared it, the primary setting, each
    endpoint with its bound and reason, the rate windows, and each family's rule and size."""
    design = report.design
    if not design:
        return [Paragraph("This claims file records no design (an earlier version: Holm over every row).",
                          "Design.", "multiplicity")]
    setting = design["primary_setting"]
    primary = f"{setting['dataset']} {setting['convention']} {setting['neural_family']}"
    chosen = "" if design["primary_setting_chosen_by"] == "declared" else f" ({design['primary_setting_chosen_by']})"
    windows = "; ".join(f"{name}: [{low:g}, {high:g}] nats" for name, (low, high) in design["rate_windows"].items())
    endpoints = Table(["claim", "endpoint", "comparison", "bound (smallest effect of interest)", "why this bound"],
                      [[item["claim"], item["metric"] + (f" (read from {item['key']})" if item["key"] else ""),
                        item["comparison"], Number(item["bound"], "bound") if item["bound"] is not None else "none",
                        item["bound_reason"]] for item in design["endpoints"]])
    families = Bullets([(family, f"{values['rule']} ({values['rows']} rows"
                                 + (f", {values['adjusted_rows']} with p-values in the adjustment)" if family !=
                                    "exploratory" else ")")) for family, values in design["families"].items()])
    return [Paragraph(f"Declared by {design['declared_by']}. Primary setting: {primary}{chosen}. Rate windows of the "
                      f"matched-rate rows: {windows or 'none declared (the range every seed covers)'}. Level "
                      f"{design['alpha']}; a decision needs at least {design['min_seeds']} seeds.", "Design.",
                      "multiplicity"), endpoints, families,
            Paragraph(f"p-values: {report.multiplicity['p_values']}.", "Tests.", "multiplicity")]


def _decided_cells(row: ClaimRow) -> list:
    return [row.test_family, row.claim, f"{row.metric} ({row.metric_units}), {row.comparison}",
            f"{row.dataset} {row.convention} {row.neural_family} (vs {row.baseline_convention})",
            Number(row.effect, "effect"), interval_cell(row),
            Number(row.bound, "bound") if row.bound is not None else "none", Number(row.p_value, "p"),
            Number(row.p_adjusted, "p"),
            (Number(row.p_sign_flip, "p"), " (adj. ", Number(row.p_sign_flip_adjusted, "p"), ")")
            if row.test_family == "primary" else Number(row.p_sign_flip, "p"),
            Number(row.p_equivalence_adjusted, "p"), seeds_cell(row), compared_over(row), row.verdict,
            row.verdict_reason]


def decided_table(report: ClaimsReport) -> Table | None:
    """The primary family's rows, then the secondary family's: adjusted p-values, bound and outcome."""
    rows = report.family_rows("primary") + report.family_rows("secondary")
    if not rows:
        return None
    return Table(["family", *DECIDED_COLUMNS], [_decided_cells(row) for row in rows],
                 row_classes=[row.verdict.replace(" ", "-") for row in rows], role="claims", group_by=0,
                 group_titles={family: FAMILY_TITLES[family] for family in ("primary", "secondary")})


def _note(row: ClaimRow) -> str:
    """What would withhold an exploratory row's numbers (an estimator limit, no overlap), if anything."""
    return "" if row.verdict_basis == EXPLORATORY else row.verdict_reason


def exploratory_table(report: ClaimsReport) -> Table | None:
    """The exploratory pooled rows by comparison, raw: effect, interval, raw p-values, no outcome."""
    rows = report.family_rows("exploratory")
    if not rows:
        return None
    cells = [[row.claim, row.comparison, f"{row.metric} ({row.metric_units})", row.dataset,
              f"{row.convention} (vs {row.baseline_convention})", row.neural_family, Number(row.effect, "effect"),
              interval_cell(row), Number(row.p_value, "p"), Number(row.p_sign_flip, "p"), seeds_cell(row),
              compared_over(row), _note(row)] for row in rows]
    return Table(list(EXPLORATORY_COLUMNS), cells, role="claims", group_by=1,
                 group_titles={name: f"Exploratory: {comparison.title}" for name, comparison in COMPARISONS.items()})


def power_table(report: ClaimsReport) -> Table | None:
    """Each primary endpoint's power at the seed count used, from this study's own spread (report.power)."""
    if not report.power:
        return None
    return Table(["claim", "endpoint", "seeds", "effect", "sd", "power to decide the effect",
                  "power to find no effect (true effect 0)"],
                 [[item["claim"], item["metric"], Number(item["seeds"], "count"), Number(item["effect"], "effect"),
                   Number(item["sd"], "effect"), Number(item["decide_effect"], "value"),
                   Number(item["decide_no_effect"], "value")] for item in report.power],
                 intro="Power of the primary family at this study's seed count, by simulation from each endpoint's own "
                       "effect and spread (independent endpoints, normal differences; `vaelens plan` for other seed "
                       "counts).")


def claims_section(report: ClaimsReport) -> Section:
    """The claims: what each states, the declared design, how effects are compared and decided, which runs were left
    out, then the primary family, the secondary family, the exploratory rows and the primary endpoints' power."""
    statements = Bullets([(claim.claim_id, claim.statement) for claim in CLAIMS])
    comparisons = Bullets([(COMPARISONS[name].title if name in COMPARISONS else name, method)
                           for name, method in report.comparisons.items()])
    items = [statements, *design_items(report),
             Paragraph("Effect = neural-loss run minus pointwise run, compared as follows (per-beta matched-beta rows "
                       "in claims.json):"), comparisons,
             Paragraph(f"{int(report.confidence * 100)}% interval: {report.interval}. Outcome: {report.verdict_rule}."),
             Paragraph(plateau_exclusion_text(report), "Trained models only.", "plateau")]
    if not report.pooled_rows():
        return Section("Claims", [*items, Paragraph(f"No claim could be tested: {NO_PAIRS}.")])
    for family in ("primary", "secondary"):
        if not report.family_rows(family):
            items.append(Paragraph(f"{FAMILY_TITLES[family]}: no row (the sweep has no such setting).", role="note"))
    items += [table for table in (decided_table(report), exploratory_table(report)) if table is not None]
    power = power_table(report)
    if power is not None:
        items.append(power)
    return Section("Claims", items)


def claims_digest(report: ClaimsReport) -> Section:
    """The terminal's view: the primary and secondary families' rows with adjusted p-values and outcome, and how many
    exploratory rows claims.json holds."""
    rows = report.family_rows("primary") + report.family_rows("secondary")
    if not report.pooled_rows():
        if report.plateau.runs_left_out:
            return Section("Claims", [Paragraph("no claim could be tested. " + plateau_exclusion_text(report))])
        return Section("Claims", [Paragraph(f"no claim could be tested: {NO_PAIRS}")])
    header = ["family", "claim", "metric", "comparison", "dataset", "convention", "neural", "effect", "95% CI (raw)",
              "p_adj", "p_equiv_adj", "n", "outcome"]
    table = Table(header, [[row.test_family, row.claim, row.metric, row.comparison, row.dataset, row.convention,
                            row.neural_family, Number(row.effect, "effect"), interval_cell(row),
                            Number(row.p_adjusted, "p"), Number(row.p_equivalence_adjusted, "p"), str(row.n_pairs),
                            row.verdict] for row in rows])
    items = [table] if rows else []
    if report.plateau.runs_still_improving:
        items.append(Paragraph(plateau_exclusion_text(report)))
    setting = report.design.get("primary_setting", {})
    items.append(Paragraph(f"primary family: Holm over {len(report.family_rows('primary'))} endpoints in "
                           f"{setting.get('dataset')} {setting.get('convention')} {setting.get('neural_family')}; "
                           f"secondary: Benjamini-Hochberg over {len(report.family_rows('secondary'))} rows; "
                           f"{len(report.family_rows('exploratory'))} exploratory pooled rows (no decision) and the "
                           "per-beta rows in claims.json"))
    return Section("Claims", items)


def verdicts_table(report: ClaimsReport) -> Table:
    """Outcome counts of the primary and secondary families per claim, and the exploratory rows' count."""
    decided = report.family_rows("primary") + report.family_rows("secondary")
    counts = Counter((row.test_family, row.claim, row.verdict) for row in decided)
    keys = sorted({(row.test_family, row.claim) for row in decided}, key=lambda key: (key[0] != "primary", key[1]))
    rows = [[family, claim, *(Number(counts[(family, claim, verdict)], "count") for verdict in VERDICTS)]
            for family, claim in keys]
    rows.append(["exploratory", "all", "", "", "", f"{len(report.family_rows('exploratory'))} pooled rows, no "
                                                   "decision"])
    return Table(["family", "claim", *VERDICTS], rows)


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
