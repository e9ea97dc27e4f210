"""`vaelens publish STUDY_DIR --markdown STUDY.md`: a study's numbers and figures, in a document kept in git.

The document is prose written by people with generated blocks in it. A block sits between the lines
`<!-- vaelens:NAME -->` and `<!-- /vaelens:NAME -->`; publishing rewrites every block from the study
directory (claims.json, sweep.json, each run's summary.json and analysis.json) and leaves the prose alone.
With `check=True` nothing is written: the blocks are regenerated and compared, so anyone holding the
study directory can confirm that every published number comes from it.

Blocks: `provenance` (versions, runs, seconds), `verdicts` (counts per claim and comparison), `claims`
(the pooled rows of claims.json, one table per comparison, raw and Holm-adjusted p), `convergence` (per
loss setting), `plateau` (the paired plateau check per loss setting, from each run's plateau.json),
`probe` (the mechanistic probe's statistics per loss setting), `probe-rate` (how much of each neural
setting's rate difference the probe's curvature accounts for), `figures` (PNG links, written beside the
document), and `previous` when a previous study directory is given: each pooled row's effect and verdict
in both studies, side by side (how far a conclusion moved when the study changed). Numbers in the claims
table are claims.json's values printed by `cell_number`, so a test can map every cell back to its field.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from vaelens.io import atomic_write_bytes, atomic_write_text, read_json
from vaelens.report.claims import plateau_exclusion_text, seeds_text, summary_rows
from vaelens.report.collect import RunRecord, load_sweep
from vaelens.report.convergence import (
    COLUMNS,
    PLATEAU_COLUMNS,
    convergence_rows,
    convergence_text,
    plateau_rows,
    plateau_text,
    run_logs,
)
from vaelens.report.html import compared_over

BLOCK = re.compile(r"(<!-- vaelens:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /vaelens:(?P=name) -->)", re.DOTALL)
"""A generated block; its body is everything between the two marker lines."""
VERDICTS = ("supported", "contradicted", "inconclusive")
COMPARISON_TITLES = {"matched_beta": "Matched beta (pooled over the beta grid)",
                     "matched_rate": "Matched rate (C4)", "matched_distortion": "Matched distortion (C1)"}
CLAIMS_COLUMNS = ("claim", "metric (units)", "dataset", "convention (vs pointwise)", "family", "effect",
                  "95% CI (raw)", "p", "p (Holm)", "seeds", "compared over", "verdict", "why")
NUMERIC_FIELDS = {"effect": "effect", "95% CI (raw)": ("ci_low", "ci_high"), "p": "p_value", "p (Holm)": "p_holm",
                  "seeds": "n_pairs"}
"""Claims-table columns holding numbers -> the claims.json field(s) they print."""


def cell_number(value) -> str:
    """How the document prints a number of claims.json: 4 significant digits, "n/a" for none."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: tuple | list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(_cell(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def claims_table_rows(payload: dict, comparison: str) -> list[list]:
    """The document's rows of one comparison: claims.json's pooled rows, in its order."""
    return [[row["claim"], f"{row['metric']} ({row['metric_units']})", row["dataset"],
             f"{row['convention']} (vs {row['baseline_convention']})", row["neural_family"], cell_number(row["effect"]),
             f"[{cell_number(row['ci_low'])}, {cell_number(row['ci_high'])}]", cell_number(row["p_value"]),
             cell_number(row["p_holm"]), seeds_text(row, cell_number), compared_over(row, cell_number), row["verdict"],
             row["verdict_reason"]]
            for row in summary_rows(payload) if row["comparison"] == comparison]


def claims_block(payload: dict) -> str:
    multiplicity = payload["multiplicity"]
    parts = [f"Effect = neural-loss run minus its pointwise run; information in {payload['units']}. Intervals: "
             f"{payload['interval']}. Verdicts read p (Holm): {multiplicity['method']} over all "
             f"{multiplicity['tests']} rows of claims.json with a p-value, per-beta rows included. "
             f"{plateau_exclusion_text(payload)}"]
    for comparison, title in COMPARISON_TITLES.items():
        rows = claims_table_rows(payload, comparison)
        if rows:
            parts.append(f"#### {title}\n\n{markdown_table(CLAIMS_COLUMNS, rows)}")
    return "\n\n".join(parts)


def verdicts_block(payload: dict) -> str:
    """Verdict counts of the pooled rows per claim and comparison, and of every row."""
    pooled = summary_rows(payload)
    counts = Counter((row["claim"], row["comparison"], row["verdict"]) for row in pooled)
    keys = sorted({(row["claim"], row["comparison"]) for row in pooled})
    rows = [[claim, comparison, *(counts[(claim, comparison, verdict)] for verdict in VERDICTS)]
            for claim, comparison in keys]
    every = Counter(row["verdict"] for row in payload["results"])
    rows.append(["all pooled rows", "", *(sum(counts[(c, m, v)] for c, m in keys) for v in VERDICTS)])
    rows.append(["every row (per-beta too)", "", *(every[verdict] for verdict in VERDICTS)])
    return markdown_table(("claim", "comparison", *VERDICTS), rows)


PREVIOUS_COLUMNS = ("claim", "comparison", "metric (units)", "dataset", "convention", "family", "effect now",
                    "95% CI now", "verdict now", "effect before", "95% CI before", "verdict before")


def row_key(row: dict) -> tuple:
    """What identifies a pooled claims row across studies."""
    matched_on = (row.get("overlap") or {}).get("variable")
    return (row["claim"], row["comparison"], row["metric"], row["metric_key"], matched_on, row["dataset"],
            row["convention"], row["baseline_convention"], row["neural_family"])


def previous_block(payload: dict, previous: dict) -> str:
    """The pooled rows of `payload` that `previous` (an earlier study's claims.json) also has, effect and
    verdict in each; rows only one study has are counted, not listed."""
    before = {row_key(row): row for row in summary_rows(previous)}
    rows, only_now = [], 0
    for row in summary_rows(payload):
        old = before.pop(row_key(row), None)
        if old is None:
            only_now += 1
            continue
        rows.append([row["claim"], row["comparison"], f"{row['metric']} ({row['metric_units']})", row["dataset"],
                     row["convention"], row["neural_family"], cell_number(row["effect"]),
                     f"[{cell_number(row['ci_low'])}, {cell_number(row['ci_high'])}]", row["verdict"],
                     cell_number(old["effect"]), f"[{cell_number(old['ci_low'])}, {cell_number(old['ci_high'])}]",
                     old["verdict"]])
    changed = sum(row[8] != row[11] for row in rows)
    text = (f"{len(rows)} pooled rows in both studies; {changed} changed verdict. Rows only in this study: "
            f"{only_now}; only in the previous one: {len(before)}.")
    return f"{text}\n\n" + markdown_table(PREVIOUS_COLUMNS, rows) if rows else text


def convergence_block(records: list[RunRecord], logs: dict[str, list[dict]]) -> str:
    """Per data set and loss setting: runs, converged runs, median improvement and its standard error."""
    rows = convergence_rows(records, logs)
    if not rows:
        return "No run has a convergence figure."
    return f"{convergence_text(rows)}.\n\n" + markdown_table(COLUMNS, rows)


def plateau_block(records: list[RunRecord]) -> str:
    """Per data set and loss setting: the paired plateau check of the runs that have one (plateau.json)."""
    rows = plateau_rows(records)
    if not rows:
        return "No run has a paired plateau check: run `vaelens plateau STUDY_DIR`."
    return f"{plateau_text(rows)}.\n\n" + markdown_table(PLATEAU_COLUMNS, rows)


def probe_block(records: list[RunRecord]) -> str:
    """The mechanistic probe's statistics per loss setting (the report's Mechanism table)."""
    from vaelens.report.html import PROBE_COLUMNS, probe_rows
    from vaelens.report.plots import probe_runs

    rows = probe_rows(probe_runs(records))
    return markdown_table(PROBE_COLUMNS, rows) if rows else "No run was analysed with the probe."


def probe_rate_block(records: list[RunRecord]) -> str:
    """How much of each neural setting's rate difference the probe's curvature accounts for, per beta."""
    from vaelens.report.mechanism import RATE_ACCOUNT_COLUMNS, RATE_ACCOUNT_TEXT, rate_account_rows

    rows = rate_account_rows(records)
    return (f"{RATE_ACCOUNT_TEXT}.\n\n" + markdown_table(RATE_ACCOUNT_COLUMNS, rows) if rows
            else "No neural run and its pointwise run were both analysed with the probe.")


def provenance_block(study_dir: Path, records: list[RunRecord]) -> str:
    index = read_json(study_dir / "sweep.json")
    statuses = Counter(run["status"] for run in index["runs"])
    timed = [float(run["seconds"]) for run in index["runs"] if run.get("seconds")]
    versions = Counter((r.summary.get("vaelens_version"), r.summary.get("torch_version")) for r in records if r.usable)
    analysed = [record for record in records if record.usable]
    images = Counter(record.analysis.get("num_images") for record in analysed)
    probed = Counter(record.analysis.get("probe.num_images") for record in analysed if "probe.num_images" in
                     record.analysis)
    lines = [f"- runs: {len(index['runs'])} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}); "
             f"{len(analysed)} finished and analysed",
             f"- training + analysis time summed over runs: {sum(timed) / 3600:.2f} h over the {len(timed)} runs "
             "this directory's sweeps ran (runs in parallel overlap; runs found finished are not timed again)",
             "- versions (vaelens, torch): " + ", ".join(f"{v} / {t} ({n} runs)" for (v, t), n in versions.items()),
             "- images per analysis: " + ", ".join(f"{n} ({count} runs)" for n, count in sorted(
                 images.items(), key=lambda item: str(item[0]))),
             "- images per probe: " + (", ".join(f"{n} ({count} runs)" for n, count in sorted(probed.items()))
                                       or "no run was probed")]
    return "\n".join(lines)


FIGURES = (
    ("rate-distortion", "rate against each distortion metric, mean over seeds (bars: +-1 sd)"),
    ("geometry", "C2 and C3: IsoScore and participation ratio of posterior means (active units), normalised "
                 "entropy of the posterior-variance profile"),
    ("variance-profiles", "sorted share of posterior variance per unit; flatter = more even (C3)"),
    ("covariance-spectra", "eigenvalues of Cov(mu); flatter over the active units = more isotropic (C2)"),
    ("mechanism", "the probe: posterior variance predicted from the decoder Jacobian and the loss metric against "
                  "the encoder's (top), curvature per unit (bottom)"),
)
"""The figures of the document (the report has more: information vs beta, matched-rate curves, loss curves)."""
DOCUMENT_COLOURS = 64
"""Palette size of the document's PNGs: line plots need few colours, and the repository keeps every version."""


def _figure(name: str, records: list[RunRecord], dataset: str) -> bytes | None:
    from vaelens.report import plots
    from vaelens.report.collect import distortion_keys
    if name == "rate-distortion":
        keys = distortion_keys(records)
        return plots.rate_distortion_figure(records, dataset, keys) if keys else None
    if name == "geometry":
        return plots.metrics_vs_beta_figure(records, dataset, ["isoscore_active", "participation_ratio_active",
                                                               "variance_entropy"], "geometry")
    if name == "variance-profiles":
        return plots.profiles_figure(records, dataset, "posterior_variance.profile", "E_x sigma_j^2 / sum",
                                     "variance profile", True)
    if name == "covariance-spectra":
        return plots.profiles_figure(records, dataset, "geometry.covariance_spectrum", "eigenvalue of Cov(mu)",
                                     "spectrum", False)
    probed = plots.probe_runs(records)
    return plots.mechanism_figure(probed, dataset) if probed else None


def _compact(image: bytes) -> bytes:
    """The PNG re-quantised to DOCUMENT_COLOURS colours."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(image)) as opened:
        palette = opened.convert("RGB").quantize(colors=DOCUMENT_COLOURS, method=Image.Quantize.MEDIANCUT,
                                                 dither=Image.Dither.NONE)
    compact = io.BytesIO()
    palette.save(compact, format="PNG", optimize=True)
    return compact.getvalue()


def figures_block(records: list[RunRecord], markdown_path: Path, figures_dir: Path, write: bool) -> str:
    """Write every figure as PNG into `figures_dir` (unless `write` is False) and link them."""
    from vaelens.report import plots

    lines = []
    relative = Path(os.path.relpath(figures_dir.resolve(), markdown_path.resolve().parent))
    for dataset in plots.datasets(records):
        lines.append(f"#### {dataset}\n")
        for name, caption in FIGURES:
            filename = f"{dataset}-{name}.png"
            if write:
                image = _figure(name, records, dataset)
                if image is None:
                    continue
                atomic_write_bytes(figures_dir / filename, _compact(image))
            elif not (figures_dir / filename).is_file():
                continue
            lines.append(f"![{dataset}: {name}]({relative.as_posix()}/{filename})  \n*{caption}*\n")
    return "\n".join(lines).rstrip()


def generated_blocks(study_dir: Path, markdown_path: Path, figures_dir: Path, write_figures: bool,
                     previous_dir: Path | None = None) -> dict[str, str]:
    records = load_sweep(study_dir)
    payload = read_json(study_dir / "claims.json")
    logs = run_logs(records)
    blocks = {"provenance": provenance_block(study_dir, records), "verdicts": verdicts_block(payload),
              "claims": claims_block(payload), "convergence": convergence_block(records, logs),
              "plateau": plateau_block(records), "probe": probe_block(records),
              "probe-rate": probe_rate_block(records),
              "figures": figures_block(records, markdown_path, figures_dir, write_figures)}
    if previous_dir is not None:
        blocks["previous"] = previous_block(payload, read_json(_claims_path(previous_dir)))
    return blocks


def _claims_path(study_dir: Path) -> Path:
    path = study_dir / "claims.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `vaelens report {study_dir}` first")
    return path


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """`text` with the body of each generated block replaced; a block name vaelens does not make is an error."""
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name == "previous" and name not in blocks:
            raise ValueError("the document has a 'previous' block (effects beside an earlier study's): give the "
                             "earlier study directory with --previous DIR")
        if name not in blocks:
            raise ValueError(f"unknown generated block '{name}'; vaelens writes: {', '.join(blocks)}")
        return f"{match.group(1)}{blocks[name]}\n{match.group(4)}"
    return BLOCK.sub(replace, text)


def publish(study_dir, markdown_path, figures_dir=None, check: bool = False, previous_dir=None) -> list[str]:
    """Regenerate the blocks of `markdown_path` (and, unless `check`, its figures) from `study_dir`; the
    `previous` block from `previous_dir`, an earlier study, when given. With `check`, write nothing and return
    the names of the blocks that differ (empty: the document matches)."""
    study_dir, markdown_path = Path(study_dir).expanduser(), Path(markdown_path).expanduser()
    previous_dir = Path(previous_dir).expanduser() if previous_dir else None
    _claims_path(study_dir)
    if previous_dir is not None:
        _claims_path(previous_dir)
    if not markdown_path.is_file():
        raise FileNotFoundError(f"{markdown_path} does not exist: create it with the block markers "
                                "(<!-- vaelens:claims --> ... <!-- /vaelens:claims -->) where the numbers go")
    figures_dir = Path(figures_dir) if figures_dir else markdown_path.parent / "docs" / "study"
    text = markdown_path.read_text()
    present = [match.group("name") for match in BLOCK.finditer(text)]
    if not present:
        raise ValueError(f"{markdown_path} has no generated block (<!-- vaelens:NAME --> ... <!-- /vaelens:NAME -->)")
    blocks = generated_blocks(study_dir, markdown_path, figures_dir, write_figures=not check,
                              previous_dir=previous_dir)
    updated = fill_blocks(text, blocks)
    if check:
        old = {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}
        new = {m.group("name"): m.group("body") for m in BLOCK.finditer(updated)}
        return [name for name in present if old[name] != new[name]]
    atomic_write_text(markdown_path, updated)
    return []
