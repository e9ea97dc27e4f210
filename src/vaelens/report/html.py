"""`vaelens report SWEEP_DIR`: results.csv, claims.json and one self-contained report.html.

Every image is embedded as a base64 data URI, so the page has no external reference and can be
mailed or archived as one file. To keep that file small (BENCHMARKS.md, Report size) the sweep's
figures are palette PNGs and per-run panels mostly lossy WebP (report/images.py); each run's
reconstruction grid sits in a collapsed <details> per data set, loss family and convention, so a
108-run page opens on its figures.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from vaelens.io import atomic_write_text, read_json
from vaelens.losses.families import family_order
from vaelens.report import images, plots
from vaelens.report.claims import (
    CLAIMS,
    GEOMETRY_METRICS,
    evaluate_claims,
    plateau_exclusion_text,
    seeds_text,
    summary_rows,
    write_claims,
)
from vaelens.report.collect import RunRecord, distortion_keys, load_sweep, write_results_csv
from vaelens.report.convergence import COLUMNS as CONVERGENCE_COLUMNS
from vaelens.report.convergence import (
    PLATEAU_COLUMNS,
    convergence_rows,
    convergence_text,
    plateau_rows,
    plateau_text,
    run_logs,
)
from vaelens.report.mechanism import RATE_ACCOUNT_COLUMNS, RATE_ACCOUNT_TEXT, rate_account_rows
from vaelens.report.pairing import curve_runs

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
.scroll { overflow-x: auto; } table.claims { font-size: 0.78em; } table.claims td:last-child { min-width: 14em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
.supported { background: #d8f5d0; } .contradicted { background: #f8d4d4; } .inconclusive { background: #f4f4f4; }
figure { margin: 1.2em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; } .error { color: #a00; }
summary { cursor: pointer; margin: 0.4em 0; }
"""


SECTION_TITLES = ("Rate-distortion", "Information vs beta", "Isotropy and uniformity vs beta", "Matched rate",
                  "Posterior-variance profiles", "Covariance spectra of mu", "Mechanism", "Training", "Reconstructions",
                  "Latent traversals")
PROBE_STATISTICS = ("pearson_log", "spearman_log", "profile_pearson_log", "median_log_ratio", "curvature_spread",
                    "curvature_cv")
"""probe.* numbers of analysis.json in the Mechanism table."""


@dataclass
class Figure:
    """One embedded image with a caption."""

    title: str
    """Short heading of the figure."""
    image: bytes
    """The encoded image, of media type `mime`."""
    caption: str = ""
    """What the figure shows and how to read it."""
    mime: str = "image/png"
    """Media type of `image`: image/png, or image/webp for lossy per-run panels."""
    group: str = ""
    """Figures of one non-empty group are collapsed together under this summary; "" = always shown."""


@dataclass
class Section:
    """A titled group of figures."""

    title: str
    """Section heading."""
    figures: list[Figure] = field(default_factory=list)
    """Figures in display order."""
    notes: list[str] = field(default_factory=list)
    """Plain-text remarks (e.g. why a figure is missing)."""
    tables: list[str] = field(default_factory=list)
    """Tables, as HTML, shown after the figures."""


def data_uri(image: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(image).decode("ascii")


def matched_rate_section(records: list[RunRecord], payload: dict) -> Section:
    """Per data set, convention and neural family: every seed's metric-vs-rate curves (and rate against MSE)
    of the family and its pointwise baseline, the range both cover shaded; a note where no curve comparison
    has a range (no figure: nothing was averaged)."""
    section = Section("Matched rate")
    rows = {(r["comparison"], r["metric"], r["dataset"], r["convention"], r["neural_family"]): r
            for r in summary_rows(payload) if r["comparison"] != "matched_beta"}
    for group, by_seed in sorted(curve_runs(records).items(),
                                 key=lambda item: (item[0][0], family_order(item[0][2]), item[0][2], item[0][1])):
        dataset, convention, family = group
        panels = [("rate", metric, rows.get(("matched_rate", metric, *group))) for metric in GEOMETRY_METRICS]
        panels.append(("distortion.mse", "rate", rows.get(("matched_distortion", "rate", *group))))
        label = f"{dataset} | {family} | {convention}"
        if not any(row and row["overlap"]["low"] is not None for _, _, row in panels):
            reasons = sorted({row["verdict_reason"].split(":")[0] for _, _, row in panels if row})
            section.notes.append(f"{label}: no matched comparison ({'; '.join(reasons) or 'no curves'})")
            continue
        image = plots.matched_curves_figure(label, family, by_seed,
                                            [(x, y, row["overlap"] if row else None) for x, y, row in panels])
        section.figures.append(Figure(label, image, "each seed's curve over the beta grid (pointwise grey); the "
                                      "shaded range is covered by every seed's curves of both families, and the "
                                      "C4 (matched-rate) and C1 (matched-distortion) effects are the mean vertical "
                                      "gap over it, uniform in log x"))
    return section


def mechanism_section(records: list[RunRecord]) -> Section:
    """The probe's predicted vs actual posterior-variance profiles and curvature profiles per data set, its
    correlations per loss setting; a note with the reasons where runs skipped it."""
    section = Section("Mechanism")
    probed = plots.probe_runs(records)
    skipped = Counter(str(r.analysis["probe_skipped"]) for r in records if r.usable and "probe_skipped" in r.analysis)
    section.notes.extend(f"{count} run(s) without the probe: {reason}" for reason, count in sorted(skipped.items()))
    if not probed:
        return section
    for dataset in plots.datasets(probed):
        image = plots.mechanism_figure(probed, dataset)
        if image is not None:
            section.figures.append(Figure(dataset, image, "top: posterior variance per unit predicted from the "
                                          "decoder Jacobian and the loss metric, sigma_j^2 = 1 / (1 + (2/beta) "
                                          "(J^T M J)_jj), against the encoder's; bottom: the curvature per unit; "
                                          "mean over seeds"))
    rows = probe_rows(probed)
    section.tables.append("<p>Probe statistics per loss setting, mean +- sd over its runs (all betas and seeds); "
                          "correlations of log predicted with log actual posterior variance (over image-unit pairs; "
                          "profile: over units), median log(actual / predicted), and the spread (normalised "
                          "entropy, 1 = even) and coefficient of variation of the curvature profile.</p>"
                          + _table(list(PROBE_COLUMNS), rows))
    accounts = rate_account_rows(records)
    if accounts:
        section.tables.append(f"<p>{html.escape(RATE_ACCOUNT_TEXT)}.</p>"
                              + _table(list(RATE_ACCOUNT_COLUMNS), accounts))
    return section


PROBE_COLUMNS = ("dataset", "family", "convention", "runs", *PROBE_STATISTICS)


def probe_rows(probed: list[RunRecord]) -> list[list]:
    """Per data set, loss family and convention (PROBE_COLUMNS): the probe statistics, mean +- sd over runs."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in probed:
        groups.setdefault((record.dataset, record.loss_family, record.convention), []).append(record)
    rows = []
    for (dataset, family, convention), runs in sorted(groups.items(), key=lambda item: (
            item[0][0], family_order(item[0][1]), item[0][1], item[0][2])):
        rows.append([dataset, family, convention, len(runs), *(_mean_sd(runs, f"probe.{name}")
                                                               for name in PROBE_STATISTICS)])
    return rows


def training_section(records: list[RunRecord]) -> Section:
    """Did the runs reach their plateau? Per loss setting, how many runs meet the convergence rule, and the
    loss curves of one seed per beta and setting."""
    section = Section("Training")
    logs = run_logs(records)
    rows = convergence_rows(records, logs)
    if not rows:
        section.notes.append("no run has a convergence figure (a log with records near 80% and 100% of its "
                             "steps)")
    else:
        section.tables.append(f"<p>{html.escape(convergence_text(rows))}.</p>"
                              + _table(list(CONVERGENCE_COLUMNS), rows))
    checked = plateau_rows(records)
    if checked:
        section.tables.append(f"<p>{html.escape(plateau_text(checked))}.</p>" + _table(list(PLATEAU_COLUMNS), checked))
    for dataset in plots.datasets(records):
        image = plots.loss_curves_figure(records, dataset, logs)
        if image is not None:
            section.figures.append(Figure(dataset, image, "logged training objective of the lowest seed at every "
                                          "beta (interval means where the log has them); shaded: the last 20% of "
                                          "the steps, over which the convergence rule is judged"))
    return section


def _mean_sd(runs: list[RunRecord], key: str) -> str:
    values = [value for value in (run.metric(key) for run in runs) if value is not None]
    if not values:
        return "n/a"
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.3g} (n=1)"
    sd = (sum((value - mean) ** 2 for value in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.3g} +- {sd:.2g} (n={len(values)})"


def _figure_sections(records: list[RunRecord], payload: dict, traversals: bool, progress: bool) -> list[Section]:
    distortions = distortion_keys(records)
    sections = {name: Section(name) for name in SECTION_TITLES}
    for dataset in tqdm(plots.datasets(records), desc="report figures", disable=not progress, leave=False):
        if distortions:
            sections["Rate-distortion"].figures.append(Figure(dataset, plots.rate_distortion_figure(
                records, dataset, distortions), "rate against each distortion metric of the analysis; "
                "one point per beta (mean over seeds, bars +-1 sd)"))
        sections["Information vs beta"].figures.append(Figure(dataset, plots.metrics_vs_beta_figure(
            records, dataset, ["rate", "mutual_information"], "information"), "C1: lower is less information"))
        sections["Isotropy and uniformity vs beta"].figures.append(Figure(dataset, plots.metrics_vs_beta_figure(
            records, dataset, ["isoscore_active", "participation_ratio_active", "variance_entropy"],
            "geometry"), "C2: IsoScore and participation ratio of posterior means over active units; "
            "C3: normalised entropy of the posterior-variance profile (1 = perfectly even)"))
        sections["Posterior-variance profiles"].figures.append(Figure(dataset, plots.profiles_figure(
            records, dataset, "posterior_variance.profile", "E_x sigma_j^2 / sum", "variance profile", True),
            "sorted share of posterior variance per unit, mean over seeds; flatter = more even (C3)"))
        sections["Covariance spectra of mu"].figures.append(Figure(dataset, plots.profiles_figure(
            records, dataset, "geometry.covariance_spectrum", "eigenvalue of Cov(mu)", "spectrum", False),
            "eigenvalues of the covariance of posterior means; flatter over the active units = more isotropic"))
    sections["Training"] = training_section(records)
    sections["Matched rate"] = matched_rate_section(records, payload)
    sections["Mechanism"] = mechanism_section(records)
    _add_reconstructions(records, sections["Reconstructions"])
    if traversals:
        for record in tqdm(images.traversal_runs(records), desc="traversals", disable=not progress, leave=False):
            try:
                panel = images.traversal_panel(record)
            except (ValueError, FileNotFoundError, RuntimeError) as error:
                sections["Latent traversals"].notes.append(f"{_run_label(record)}: no traversal ({error})")
                continue
            sections["Latent traversals"].figures.append(Figure(_run_label(record), panel.data,
                "rows: the units with the largest KL; columns: mu_j + t, t from -2.5 to 2.5", panel.mime))
    return [section for section in sections.values() if section.figures or section.notes or section.tables]


def _add_reconstructions(records: list[RunRecord], section: Section) -> None:
    """Each usable run's reconstruction grid, grouped by data set, loss family and convention."""
    for record in records:
        if not record.usable:
            continue
        try:
            panel = images.reconstruction_panel(record)
        except ValueError as error:
            section.notes.append(f"{_run_label(record)}: no reconstructions ({error})")
            continue
        if panel is not None:
            section.figures.append(Figure(_run_label(record), panel.data, "originals (top) above posterior-mean "
                                          "reconstructions", panel.mime,
                                          f"{record.dataset} | {record.loss_family} | {record.convention}"))


def _run_label(record: RunRecord) -> str:
    beta = "?" if record.beta is None else f"{record.beta:g}"
    return (f"{record.dataset} | {record.loss_family} | {record.convention} | beta={beta} | seed={record.seed} "
            f"| {record.run_id}")


def _table(header: list[str], rows: list[list], row_classes: list[str] | None = None, css_class: str = "") -> str:
    """An HTML table in a horizontally scrolling box (a wide table never widens the page)."""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>")
    table_class = f' class="{css_class}"' if css_class else ""
    return (f"<div class='scroll'><table{table_class}><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:+.4g}"


def _p(value) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def compared_over(row: dict, number=lambda value: f"{value:.3g}") -> str:
    """What a claims row compared over: "same beta", "no overlap", or the range of the matching variable
    (its ends printed by `number`)."""
    overlap = row["overlap"]
    if overlap is None:
        return "same beta"
    if overlap["low"] is None:
        return "no overlap"
    return f"{overlap['variable']} in [{number(overlap['low'])}, {number(overlap['high'])}] {overlap['units']}"


def multiplicity_html(payload: dict) -> str:
    """What the verdicts' p-values were adjusted for, and how."""
    multiplicity = payload["multiplicity"]
    return (f"<p class='multiplicity'><b>Multiplicity.</b> {html.escape(multiplicity['method'])} over "
            f"{multiplicity['tests']} tests at family-wise error rate {multiplicity['alpha']}: the family is "
            f"{html.escape(multiplicity['family'])}. p-values: {html.escape(multiplicity['p_value'])}. "
            f"Adjustment: {html.escape(multiplicity['adjustment'])}. The intervals shown are raw (unadjusted) "
            f"95% intervals; the verdict reads the adjusted p (p_holm).</p>")


def claims_html(payload: dict) -> str:
    """The claims table (pooled over betas, every comparison) with the statements, comparisons, verdict rule and
    multiplicity statement."""
    rows = summary_rows(payload)
    statements = "".join(f"<li><b>{claim.claim_id}</b>: {html.escape(claim.statement)}</li>" for claim in CLAIMS)
    comparisons = "".join(f"<li><b>{html.escape(name)}</b>: {html.escape(text)}</li>"
                          for name, text in payload["comparisons"].items())
    intro = (f"<ul>{statements}</ul><p>Effect = neural-loss run minus pointwise run, compared as follows "
             f"(per-beta matched-beta rows in claims.json):</p><ul>{comparisons}</ul>"
             f"<p>{int(payload['confidence'] * 100)}% interval: {html.escape(payload['interval'])}. "
             f"Verdict: {html.escape(payload['verdict_rule'])}.</p>{multiplicity_html(payload)}"
             f"<p class='plateau'><b>Trained models only.</b> {html.escape(plateau_exclusion_text(payload))}</p>")
    if not rows:
        return intro + ("<p>No claim could be tested: the sweep has no neural-loss run with a matching pointwise "
                        "run.</p>")
    table = _table(["claim", "comparison", "metric (units)", "dataset", "convention (vs pointwise)",
                    "neural family", "effect", "95% CI (raw)", "p", "p (Holm)", "seeds", "compared over", "verdict",
                    "why"],
                   [[r["claim"], r["comparison"], f"{r['metric']} ({r['metric_units']})", r["dataset"],
                     f"{r['convention']} (vs {r['baseline_convention']})", r["neural_family"], _number(r["effect"]),
                     f"[{_number(r['ci_low'])}, {_number(r['ci_high'])}]", _p(r["p_value"]), _p(r["p_holm"]),
                     seeds_text(r), compared_over(r), r["verdict"], r["verdict_reason"]]
                    for r in rows], [r["verdict"] for r in rows], css_class="claims")
    return intro + table


def _status_html(records: list[RunRecord]) -> str:
    counts = Counter(record.status for record in records)
    analysed = sum(record.usable for record in records)
    text = (f"<p>{len(records)} runs: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
            + f"; {analysed} finished and analysed (only these enter figures and claims).</p>")
    failed = [record for record in records if record.status == "failed"]
    if failed:
        text += "<ul>" + "".join(f'<li class="error">{html.escape(r.run_id)}: {html.escape(str(r.error))}</li>'
                                 for r in failed) + "</ul>"
    return text


def _figure_html(figure: Figure) -> str:
    return (f"<figure><img src='{data_uri(figure.image, figure.mime)}' alt='{html.escape(figure.title, quote=True)}'>"
            f"<figcaption><b>{html.escape(figure.title)}</b>: {html.escape(figure.caption)}</figcaption></figure>")


def _figures_html(figures: list[Figure]) -> list[str]:
    """Ungrouped figures in order; each group as one collapsed <details> where its first figure stood."""
    groups: dict[str, list[Figure]] = {}
    for figure in figures:
        if figure.group:
            groups.setdefault(figure.group, []).append(figure)
    parts = []
    for figure in figures:
        if not figure.group:
            parts.append(_figure_html(figure))
        elif groups[figure.group][0] is figure:
            members = groups[figure.group]
            count = f"{len(members)} run{'s' if len(members) != 1 else ''}"
            parts.append(f"<details><summary>{html.escape(figure.group)} ({count})</summary>"
                         + "".join(_figure_html(member) for member in members) + "</details>")
    return parts


def render_html(title: str, records: list[RunRecord], payload: dict, sections: list[Section]) -> str:
    """The whole page as one string."""
    parts = [(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
              f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"),
             ("<p>Information quantities in nats. Every row names its weighting convention. "
              "Per-run numbers: results.csv beside this page; claims: claims.json.</p>"),
             "<h2>Runs</h2>", _status_html(records), "<h2>Claims</h2>", claims_html(payload)]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(f"<p class='error'>{html.escape(note)}</p>" for note in section.notes)
        parts.extend(_figures_html(section.figures))
        parts.extend(section.tables)
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(sweep_dir: str | Path, *, traversals: bool = True, progress: bool = True) -> Path:
    """Write results.csv, claims.json and report.html into `sweep_dir`; return the report's path."""
    sweep_dir = Path(sweep_dir).expanduser()
    records = load_sweep(sweep_dir)
    write_results_csv(records, sweep_dir / "results.csv")
    # The sweep index may say how the claims treat runs still improving (vaelens.study.write_index).
    options = read_json(sweep_dir / "sweep.json").get("claims") or {}
    payload = evaluate_claims(records, leave_out_still_improving=options.get("leave_out_still_improving", True))
    write_claims(payload, sweep_dir / "claims.json")
    sections = _figure_sections(records, payload, traversals, progress)
    path = sweep_dir / "report.html"
    atomic_write_text(path, render_html(f"vaelens report: {sweep_dir.name}", records, payload, sections))
    return path
