"""The comparison's content: which images, the models, their key numbers with what bounds them, their latent
statistics and the overlaid figures (rendered by vaelens.report.render_html), and the rows of compare.csv.

Every number comes from a model's analysis.json (vaelens.analysis); labels come from the quantity registry
(vaelens.quantities) where it declares the key, else the key itself, so keys added to analysis.json later
(latent_stats.*) show without a change here.
"""

from __future__ import annotations

from pathlib import Path

from vaelens.quantities import QUANTITIES, distortion_keys, finite_number, quantity_of
from vaelens.report.compare_models import ComparedModel
from vaelens.report.compare_plots import overlaid_profiles_figure, probe_profiles_figure
from vaelens.report.images import png_panel
from vaelens.report.model import Cell, Figure, Number, Paragraph, Section, Table

LATENT_STATISTICS_PREFIX = "latent_stats."
CONFIGURED_SCALING_KEY = "model.configured_scaling_factor"
PROBE_KEYS = ("probe.pearson_log", "probe.spearman_log", "probe.profile_pearson_log", "probe.median_log_ratio")
PROBE_LABELS = {"probe.pearson_log": "probe: Pearson r, log predicted vs actual sigma^2 (image-unit pairs)",
                "probe.spearman_log": "probe: Spearman rho, log predicted vs actual sigma^2 (image-unit pairs)",
                "probe.profile_pearson_log": "probe: Pearson r of the per-unit profiles (log)",
                "probe.median_log_ratio": "probe: median log(actual / predicted)"}
"""A text cell starting with one of these is read as a formula by spreadsheets."""


def key_label(key: str) -> str:
    """The registry's label of an analysis.json key (the first quantity read from it), else the key."""
    declared = next((quantity for quantity in QUANTITIES if key in quantity.keys), None)
    return declared.label if declared is not None else quantity_of(key).label


def _number(analysis: dict, key: str, kind: str = "value") -> Cell:
    value = analysis.get(key)
    return Number(value, kind) if finite_number(value) else "n/a"


def _count_of_d(analysis: dict) -> Cell:
    mask = analysis.get("active_mask")
    units = len(mask) if isinstance(mask, list) else None
    return "n/a" if units is None else (_number(analysis, "active_units", "count"), f" of {units}")


def _mutual_information(analysis: dict) -> Cell:
    if not finite_number(analysis.get("mutual_information")):
        return "n/a"
    return (Number(analysis["mutual_information"]), " ± ", _number(analysis, "mutual_information_stderr"))


def _saturated(analysis: dict) -> Cell:
    flag = analysis.get("mutual_information_saturated")
    return "n/a" if flag is None else ("yes: a floor, not an estimate" if flag else "no")


def _geometry(prefix: str, statistic: str):
    """A cell of a geometry statistic, with its sample bound where the sample binds it, or why it is missing."""
    def cell(analysis: dict) -> Cell:
        if f"{prefix}skipped" in analysis:
            return f"n/a: {analysis[f'{prefix}skipped']}"
        value = _number(analysis, f"{prefix}{statistic}")
        if statistic == "participation_ratio":
            points, dimensions = analysis.get(f"{prefix}num_points"), analysis.get(f"{prefix}num_dimensions")
            if finite_number(points) and finite_number(dimensions):
                return (value, " (≤ ", Number(min(dimensions, points - 1), "count"), ")")
        if statistic == "isoscore" and analysis.get(f"{prefix}bounded_by_sample"):
            return (value, " (≤ ", _number(analysis, f"{prefix}isoscore_bound", "bound"), ": N ≤ d)")
        return value
    return cell


def _numbers_rows(analyses: list[dict]) -> list[tuple[str, str, object]]:
    """(quantity, bound or how to read it, cell of an analysis) for the key numbers table."""
    rows = [
        ("rate R (nats)", "E_x KL(q(z|x) || N(0, I)) summed over units, closed form", lambda a: _number(a, "rate")),
        ("I(x; z) (nats)", "estimate ± standard error; at most log N", _mutual_information),
        ("ceiling of I(x; z): log N (nats)", "log of the images the estimator saw",
         lambda a: _number(a, "mutual_information_ceiling")),
        ("I(x; z) saturated", "within 0.5 nats of log N", _saturated),
        ("active units", "Var_x(mu_j) > 0.01, of the d units", _count_of_d),
        ("IsoScore of mu (all units)", "0 to 1, 1 = isotropic", _geometry("geometry.", "isoscore")),
        ("IsoScore of mu (active units)", "0 to 1, 1 = isotropic", _geometry("geometry_active.", "isoscore")),
        ("participation ratio of Cov(mu) (all units)", "at most min(d, N - 1)",
         _geometry("geometry.", "participation_ratio")),
        ("participation ratio of Cov(mu) (active units)", "at most min(d active, N - 1)",
         _geometry("geometry_active.", "participation_ratio")),
        ("normalised entropy of E sigma^2", "variance profile: 0 to 1, 1 = even over units",
         lambda a: _number(a, "posterior_variance.normalized_entropy")),
    ]
    for key in distortion_keys(analyses):
        quantity = quantity_of(key)
        rows.append((quantity.label, f"{quantity.better} is better" if quantity.better else "",
                     lambda a, key=key: _number(a, key)))
    for key in PROBE_KEYS:
        if any(key in analysis for analysis in analyses):
            rows.append((PROBE_LABELS[key], "-1 to 1" if "ratio" not in key else "0 = as predicted",
                         lambda a, key=key: _number(a, key)))
    return rows


def numbers_table(labels: list[str], analyses: list[dict]) -> Table:
    """Quantities (rows) against models (columns), each row saying what bounds it or how to read it."""
    rows = [[quantity, bound, *(cell(analysis) for analysis in analyses)]
            for quantity, bound, cell in _numbers_rows(analyses)]
    return Table(["quantity", "bound / reading", *labels], rows)


def latent_statistics_table(labels: list[str], analyses: list[dict]) -> Table | None:
    """Every scalar latent_stats.* key (and a pretrained model's configured scaling factor) any model has."""
    keys = sorted({key for analysis in analyses for key, value in analysis.items()
                   if (key.startswith(LATENT_STATISTICS_PREFIX) or key == CONFIGURED_SCALING_KEY)
                   and not isinstance(value, (list, dict))})
    if not keys:
        return None
    rows = [[key_label(key), key, *(_scalar_cell(analysis.get(key)) for analysis in analyses)] for key in keys]
    return Table(["statistic", "analysis.json key", *labels], rows)


def _scalar_cell(value) -> Cell:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return Number(value) if finite_number(value) else str(value)


def models_table(models: list[ComparedModel], analyses: list[dict]) -> Table:
    """What each model is: kind, source, latent shape, what was measured of it."""
    rows = []
    for model, analysis in zip(models, analyses):
        shape = analysis.get("latent_shape") or []
        units = len(analysis.get("active_mask") or [])
        if model.kind == "run":
            what = (f"vaelens run, checkpoint step {analysis.get('run.checkpoint_step')} "
                    f"({analysis.get('run.status')}); {analysis.get('objective.likelihood')}, "
                    f"beta={analysis.get('objective.beta')}, {analysis.get('weighting_convention')}")
        else:
            what = str(analysis.get("model.model", "pretrained model"))
        rows.append([model.label, what, str(model.path), f"{' x '.join(map(str, shape))} ({units} units)"])
    return Table(["model", "what", "source", "latent shape (d)"], rows)


def _images_text(analysis: dict) -> str:
    shape = " x ".join(map(str, analysis.get("data.image_shape") or []))
    return (f"N = {analysis.get('num_images')} images drawn at random (seed {analysis.get('seed')}) from the "
            f"{analysis.get('data.split', 'test')} split of {analysis.get('data.name')} "
            f"({analysis.get('data.num_images')} images of {shape}); distortions on "
            f"{analysis.get('distortion.num_images', 'none')} of them (seed {analysis.get('distortion.seed')})")


def images_paragraphs(labels: list[str], analyses: list[dict]) -> list[Paragraph]:
    """The line saying which images every number was computed on (one per model where they differ)."""
    texts = [_images_text(analysis) for analysis in analyses]
    if len(set(texts)) == 1:
        return [Paragraph(f"Every number on this page was computed on the same images: {texts[0]}. Information in "
                          "nats; spatial latents count every element as a unit.", lead="Images.")]
    return [Paragraph("The models were analysed on different images: " + "; ".join(
        f"{label}: {text}" for label, text in zip(labels, texts)) + ".", role="note")]


def _probe_paragraph(labels: list[str], analyses: list[dict]) -> Paragraph | None:
    """Which models were not probed, and why (one clause per reason)."""
    reasons: dict[str, list[str]] = {}
    for label, analysis in zip(labels, analyses):
        if "probe_skipped" in analysis:
            reasons.setdefault(str(analysis["probe_skipped"]), []).append(label)
    if not reasons:
        return None
    text = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in reasons.items())
    return Paragraph(text + ".", lead="Without the probe.")


def figure_sections(labels: list[str], analyses: list[dict], folders: list[Path]) -> list[Section]:
    """The overlaid profiles, the probe's profiles and each model's reconstructions."""
    by_label = dict(zip(labels, analyses))
    sections = []
    variance = overlaid_profiles_figure(by_label, [("posterior_variance.profile", "E_x sigma_j^2"),
                                                   ("mean_variance.profile", "Var_x(mu_j)")])
    if variance is not None:
        sections.append(Section("Posterior-variance profiles", [Figure(
            "Variance profiles", variance, "each model's per-unit E_x sigma_j^2 (left) and Var_x(mu_j) (right), "
            "sorted descending, log scale; x is rank / d where the models' unit counts d differ")]))
    spectrum = overlaid_profiles_figure(by_label, [("geometry.covariance_spectrum", "eigenvalue of Cov(mu)")])
    if spectrum is not None:
        sections.append(Section("Covariance spectra of mu", [Figure(
            "Covariance spectra", spectrum, "eigenvalues of the covariance of the posterior means over the N "
            "images, descending, log scale; at most N - 1 are non-zero")]))
    probe = probe_profiles_figure(by_label)
    if probe is not None:
        sections.append(Section("Probe profiles", [Figure(
            "Probe", probe, "the probe's predicted (dotted) against the encoder's actual (solid) posterior "
            "variance per unit, under each run's own loss")]))
    panels = []
    for label, folder in zip(labels, folders):
        path = folder / "analysis" / "reconstructions.png"
        if path.is_file():
            panel = png_panel(path, f"delete {folder / 'analysis.json'} and rerun the comparison to draw it anew")
            panels.append(Figure(label, panel.data, "images (top) above their posterior-mean reconstructions",
                                 mime=panel.mime))
    if panels:
        sections.append(Section("Reconstructions", panels))
    return sections


def comparison_sections(models: list[ComparedModel], analyses: list[dict], folders: list[Path]) -> list[Section]:
    """Every section of the page, in order, empty ones left out."""
    labels = [model.label for model in models]
    numbers: list = [numbers_table(labels, analyses)]
    probe = _probe_paragraph(labels, analyses)
    numbers += [probe] if probe is not None else []
    sections = [Section("Models", [*images_paragraphs(labels, analyses), models_table(models, analyses)]),
                Section("Key numbers", numbers)]
    statistics = latent_statistics_table(labels, analyses)
    if statistics is not None:
        sections.append(Section("Latent statistics", [statistics]))
    return sections + figure_sections(labels, analyses, folders)


def comparison_csv_rows(models: list[ComparedModel], analyses: list[dict]) -> tuple[list[str], list[list]]:
    """Header and rows of compare.csv: one row per model, every scalar analysis.json key any model has (in the
    order first seen), blank where a model lacks it (the writer, vaelens.io.atomic_write_csv, makes text cells
    safe for spreadsheets and keeps numbers)."""
    keys: dict[str, None] = {}
    for analysis in analyses:
        keys.update((key, None) for key, value in analysis.items() if not isinstance(value, (list, dict)))
    header = ["label", "kind", "source", *keys]
    rows = []
    for model, analysis in zip(models, analyses):
        values = [model.label, model.kind, str(model.path), *(analysis.get(key) for key in keys)]
        rows.append(["" if value is None else value for value in values])
    return header, rows
