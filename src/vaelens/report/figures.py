"""Every figure of the report, declared once with its caption: the per-data-set figures (the page shows each in
its section, the study document the ones marked for it), the matched-rate curves, and the per-run panels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vaelens.losses.families import family_order
from vaelens.quantities import claim_quantities
from vaelens.report import images, plots
from vaelens.report.claim_rows import ClaimsReport
from vaelens.report.collect import usable_distortion_keys
from vaelens.report.mechanism import probe_runs
from vaelens.report.model import Figure, Paragraph, Section
from vaelens.report.pairing import curve_runs
from vaelens.training.sweepdir import RunRecord


@dataclass(frozen=True)
class FigureSpec:
    """A figure drawn once per data set."""

    name: str
    """File stem in the study document (<data set>-<name>.png)."""
    section: str
    """The page section it is shown in."""
    caption: str
    """What it shows and how to read it."""
    draw: Callable[[list[RunRecord], str], bytes | None]
    """(runs, data set) -> PNG bytes, or None when the runs hold nothing to draw."""
    in_document: bool
    """Also written beside the study document (the page has every figure)."""


def _information_quantities() -> list[str]:
    return list(claim_quantities("C1"))


def _geometry_quantities() -> list[str]:
    """The quantities of the geometry and uniformity claims (C2, C3), in registry order."""
    return list(dict.fromkeys(claim_quantities("C2") + claim_quantities("C3")))


def _rate_distortion(records, dataset):
    keys = usable_distortion_keys(records)
    return plots.rate_distortion_figure(records, dataset, keys) if keys else None


def _mechanism(records, dataset):
    probed = probe_runs(records)
    return plots.mechanism_figure(probed, dataset) if probed else None


DATASET_FIGURES = (
    FigureSpec("rate-distortion", "Rate-distortion", "rate against each distortion metric of the analysis; one point "
               "per beta (mean over seeds, bars +-1 sd)", _rate_distortion, True),
    FigureSpec("information", "Information vs beta", "C1: lower is less information",
               lambda records, dataset: plots.metrics_vs_beta_figure(records, dataset, _information_quantities(),
                                                                     "information"), False),
    FigureSpec("geometry", "Isotropy and uniformity vs beta", "C2: IsoScore and participation ratio of posterior "
               "means over active units; C3: normalised entropy of the posterior-variance profile (1 = perfectly even)",
               lambda records, dataset: plots.metrics_vs_beta_figure(records, dataset, _geometry_quantities(),
                                                                     "geometry"), True),
    FigureSpec("variance-profiles", "Posterior-variance profiles", "sorted share of posterior variance per unit, mean "
               "over seeds; flatter = more even (C3)",
               lambda records, dataset: plots.profiles_figure(records, dataset, "posterior_variance.profile",
                                                              "E_x sigma_j^2 / sum", "variance profile", True), True),
    FigureSpec("covariance-spectra", "Covariance spectra of mu", "eigenvalues of the covariance of posterior means; "
               "flatter over the active units = more isotropic (C2)",
               lambda records, dataset: plots.profiles_figure(records, dataset, "geometry.covariance_spectrum",
                                                              "eigenvalue of Cov(mu)", "spectrum", False), True),
    FigureSpec("mechanism", "Mechanism", "top: posterior variance per unit predicted from the decoder Jacobian and the "
               "loss metric, sigma_j^2 = 1 / (1 + (2/beta) (J^T M J)_jj), against the encoder's; bottom: the "
               "curvature per unit; mean over seeds", _mechanism, True),
    FigureSpec("loss-curves", "Training", "logged training objective of the lowest seed at every beta (interval means "
               "where the log has them); shaded: the last 20% of the steps, over which the convergence rule is "
               "judged", plots.loss_curves_figure, False),
)


def dataset_figures(records: list[RunRecord], spec: FigureSpec) -> list[Figure]:
    """`spec` drawn for each data set that has something to draw, in data-set order."""
    figures = []
    for dataset in plots.datasets(records):
        image = spec.draw(records, dataset)
        if image is not None:
            figures.append(Figure(dataset, image, spec.caption, name=f"{dataset}-{spec.name}"))
    return figures


MATCHED_CAPTION = ("each seed's curve over the beta grid (pointwise grey); the shaded range is covered by every seed's "
                   "curves of both families, and the C4 (matched-rate) and C1 (matched-distortion) effects are the "
                   "mean vertical gap over it, uniform in log x")


def matched_rate_section(records: list[RunRecord], report: ClaimsReport) -> Section:
    """Per data set, convention and neural family: every seed's metric-vs-rate curves (and rate against MSE)
    of the family and its pointwise baseline, the range both cover shaded; a note where no curve comparison
    has a range (no figure: nothing was averaged)."""
    section = Section("Matched rate")
    rows = {(r.comparison, r.metric, r.dataset, r.convention, r.neural_family): r
            for r in report.pooled_rows() if r.comparison != "matched_beta"}
    for group, by_seed in sorted(curve_runs(records).items(),
                                 key=lambda item: (item[0][0], family_order(item[0][2]), item[0][2], item[0][1])):
        dataset, convention, family = group
        panels = [("rate", metric, rows.get(("matched_rate", metric, *group))) for metric in claim_quantities("C4")]
        panels.append(("distortion.mse", "rate", rows.get(("matched_distortion", "rate", *group))))
        label = f"{dataset} | {family} | {convention}"
        if not any(row and row.overlap.low is not None for _, _, row in panels):
            reasons = sorted({row.verdict_reason.split(":")[0] for _, _, row in panels if row})
            section.items.append(Paragraph(f"{label}: no matched comparison ({'; '.join(reasons) or 'no curves'})",
                                           role="note"))
            continue
        image = plots.matched_curves_figure(label, family, by_seed,
                                            [(x, y, row.overlap if row else None) for x, y, row in panels])
        section.items.append(Figure(label, image, MATCHED_CAPTION))
    return section


def run_label(record: RunRecord) -> str:
    beta = "?" if record.beta is None else f"{record.beta:g}"
    return (f"{record.dataset} | {record.loss_family} | {record.convention} | beta={beta} | seed={record.seed} "
            f"| {record.run_id}")


def reconstructions_section(records: list[RunRecord]) -> Section:
    """Each usable run's reconstruction grid, grouped by data set, loss family and convention."""
    section = Section("Reconstructions")
    for record in records:
        if not record.usable:
            continue
        try:
            panel = images.reconstruction_panel(record)
        except ValueError as error:
            section.items.append(Paragraph(f"{run_label(record)}: no reconstructions ({error})", role="note"))
            continue
        if panel is not None:
            section.items.append(Figure(run_label(record), panel.data, "originals (top) above posterior-mean "
                                        "reconstructions", panel.mime,
                                        f"{record.dataset} | {record.loss_family} | {record.convention}"))
    return section


def traversals_section(runs: list[RunRecord]) -> Section:
    """Latent traversals of `runs` (images.traversal_runs picks one per loss setting)."""
    section = Section("Latent traversals")
    for record in runs:
        try:
            panel = images.traversal_panel(record)
        except (ValueError, FileNotFoundError, RuntimeError) as error:
            section.items.append(Paragraph(f"{run_label(record)}: no traversal ({error})", role="note"))
            continue
        section.items.append(Figure(run_label(record), panel.data, "rows: the units with the largest KL; columns: "
                                    "mu_j + t, t from -2.5 to 2.5", panel.mime))
    return section
