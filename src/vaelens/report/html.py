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

from vaelens.io import atomic_write_text
from vaelens.report import images, plots
from vaelens.report.claims import CLAIMS, evaluate_claims, summary_rows, write_claims
from vaelens.report.collect import RunRecord, distortion_keys, load_sweep, write_results_csv

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
.supported { background: #d8f5d0; } .contradicted { background: #f8d4d4; } .inconclusive { background: #f4f4f4; }
figure { margin: 1.2em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; } .error { color: #a00; }
summary { cursor: pointer; margin: 0.4em 0; }
"""


SECTION_TITLES = ("Rate-distortion", "Information vs beta", "Isotropy and uniformity vs beta",
                  "Posterior-variance profiles", "Covariance spectra of mu", "Reconstructions", "Latent traversals")


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


def data_uri(image: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(image).decode("ascii")


def _figure_sections(records: list[RunRecord], traversals: bool, progress: bool) -> list[Section]:
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
    return [section for section in sections.values() if section.figures or section.notes]


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


def _table(header: list[str], rows: list[list], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:+.4g}"


def claims_html(payload: dict) -> str:
    """The claims table (pooled over betas) plus the statements and the verdict rule."""
    rows = summary_rows(payload)
    statements = "".join(f"<li><b>{claim.claim_id}</b>: {html.escape(claim.statement)}</li>" for claim in CLAIMS)
    intro = (f"<ul>{statements}</ul><p>Effect = {html.escape(payload['effect'])}, pooled over betas "
             f"(per-beta results in claims.json). {int(payload['confidence'] * 100)}% interval: "
             f"{html.escape(payload['interval'])}. Verdict: {html.escape(payload['verdict_rule'])}.</p>")
    if not rows:
        return intro + ("<p>No claim could be tested: the sweep has no neural-loss run with a matching pointwise "
                        "run.</p>")
    table = _table(["claim", "metric", "units", "dataset", "convention", "vs pointwise", "neural family",
                    "effect", "95% CI", "seeds", "verdict"],
                   [[r["claim"], r["metric"], r["metric_units"], r["dataset"], r["convention"],
                     r["baseline_convention"], r["neural_family"], _number(r["effect"]),
                     f"[{_number(r['ci_low'])}, {_number(r['ci_high'])}]", r["n_pairs"], r["verdict"]]
                    for r in rows], [r["verdict"] for r in rows])
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
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(sweep_dir: str | Path, *, traversals: bool = True, progress: bool = True) -> Path:
    """Write results.csv, claims.json and report.html into `sweep_dir`; return the report's path."""
    sweep_dir = Path(sweep_dir).expanduser()
    records = load_sweep(sweep_dir)
    write_results_csv(records, sweep_dir / "results.csv")
    payload = evaluate_claims(records)
    write_claims(payload, sweep_dir / "claims.json")
    sections = _figure_sections(records, traversals, progress)
    path = sweep_dir / "report.html"
    atomic_write_text(path, render_html(f"vaelens report: {sweep_dir.name}", records, payload, sections))
    return path
