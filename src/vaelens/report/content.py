"""The report's content, specified once: the page's sections (report.html) and the study document's generated
blocks (STUDY.md) are both assembled here from one sweep and its claims, out of the same tables, figures and
captions; the renderers (render_html, render_markdown, render_terminal) only print them."""

from __future__ import annotations

from collections import Counter

from tqdm.auto import tqdm

from vaelens.report import images
from vaelens.report.claim_rows import ClaimsReport
from vaelens.report.claims_content import claims_section, previous_items, verdicts_table
from vaelens.report.convergence import NO_PLATEAU_CHECK, convergence_table, plateau_table
from vaelens.report.figures import (
    DATASET_FIGURES,
    dataset_figures,
    matched_rate_section,
    reconstructions_section,
    traversals_section,
)
from vaelens.report.mechanism import probe_table, rate_account_table
from vaelens.report.model import Bullets, Figure, Item, Paragraph, Section
from vaelens.report.plots import datasets
from vaelens.training.sweepdir import RunRecord, Sweep

PAGE_SECTIONS = ("Rate-distortion", "Information vs beta", "Isotropy and uniformity vs beta", "Matched rate",
                 "Posterior-variance profiles", "Covariance spectra of mu", "Mechanism", "Training", "Reconstructions",
                 "Latent traversals")
"""The page's sections after Runs and Claims, in order; an empty one is left out."""
BLOCKS = ("provenance", "verdicts", "claims", "convergence", "plateau", "probe", "probe-rate", "figures", "previous")
"""The study document's generated blocks (`previous` only with an earlier study to compare with)."""
NO_PROBE = "No run was analysed with the probe."
NO_PROBE_PAIRS = "No neural run and its pointwise run were both analysed with the probe."


def runs_section(records: list[RunRecord]) -> Section:
    """How many runs, in which status, and why each failed one failed."""
    counts = Counter(record.status for record in records)
    analysed = sum(record.usable for record in records)
    items: list[Item] = [Paragraph(f"{len(records)} runs: " + ", ".join(f"{count} {status}" for status, count in
                                                                         sorted(counts.items()))
                                   + f"; {analysed} finished and analysed (only these enter figures and claims).")]
    failed = [record for record in records if record.status == "failed"]
    if failed:
        items.append(Bullets([(record.run_id, str(record.error)) for record in failed], role="error"))
    return Section("Runs", items)


def _spec_figures(records: list[RunRecord], section: str) -> list[Figure]:
    return [figure for spec in DATASET_FIGURES if spec.section == section for figure in dataset_figures(records, spec)]


def mechanism_section(records: list[RunRecord], figures: list[Figure] | None = None) -> Section:
    """The probe's predicted vs actual profiles per data set (`figures`, drawn when not given), its statistics per
    loss setting and its account of the rate; a note with the reasons where runs skipped it."""
    figures = _spec_figures(records, "Mechanism") if figures is None else figures
    skipped = Counter(str(r.analysis["probe_skipped"]) for r in records if r.usable and "probe_skipped" in r.analysis)
    items: list[Item] = [Paragraph(f"{count} run(s) without the probe: {reason}", role="note")
                         for reason, count in sorted(skipped.items())]
    items += figures
    items += [table for table in (probe_table(records), rate_account_table(records)) if table is not None]
    return Section("Mechanism", items)


def training_section(records: list[RunRecord], figures: list[Figure] | None = None) -> Section:
    """Did the runs reach their plateau? The logged convergence rule and the paired check per loss setting, and
    the loss curves per data set (`figures`, drawn when not given)."""
    figures = _spec_figures(records, "Training") if figures is None else figures
    items: list[Item] = [convergence_table(records)]
    checked = plateau_table(records)
    if checked is not None:
        items.append(checked)
    return Section("Training", items + figures)


def page_sections(sweep: Sweep, claims: ClaimsReport, traversals: bool = True, progress: bool = True) -> list[Section]:
    """Every section of the page, in order, empty ones left out."""
    records = sweep.runs
    figures = {spec.section: dataset_figures(records, spec)
               for spec in tqdm(DATASET_FIGURES, desc="report figures", disable=not progress, leave=False)}
    sections = {title: Section(title, list(figures.get(title, []))) for title in PAGE_SECTIONS}
    sections["Matched rate"] = matched_rate_section(records, claims)
    sections["Mechanism"] = mechanism_section(records, figures["Mechanism"])
    sections["Training"] = training_section(records, figures["Training"])
    sections["Reconstructions"] = reconstructions_section(records)
    if traversals:
        chosen = tqdm(images.traversal_runs(records), desc="traversals", disable=not progress, leave=False)
        sections["Latent traversals"] = traversals_section(list(chosen))
    return [runs_section(records), claims_section(claims),
            *(section for section in sections.values() if not section.empty)]


def provenance_items(sweep: Sweep) -> list[Item]:
    """What the study directory holds and what made it: runs and statuses, time, versions, images analysed."""
    entries = sweep.index.runs
    statuses = Counter(entry.status for entry in entries)
    timed = [float(entry.seconds) for entry in entries if entry.seconds]
    analysed = sweep.usable
    versions = Counter((r.summary.get("vaelens_version"), r.summary.get("torch_version")) for r in analysed)
    counts = Counter(record.analysis.get("num_images") for record in analysed)
    probed = Counter(record.analysis.get("probe.num_images") for record in analysed
                     if "probe.num_images" in record.analysis)
    lines = [f"runs: {len(entries)} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}); "
             f"{len(analysed)} finished and analysed",
             f"training + analysis time summed over runs: {sum(timed) / 3600:.2f} h over the {len(timed)} runs "
             "this directory's sweeps ran (runs in parallel overlap; runs found finished are not timed again)",
             "versions (vaelens, torch): " + ", ".join(f"{v} / {t} ({n} runs)" for (v, t), n in versions.items()),
             "images per analysis: " + ", ".join(f"{n} ({count} runs)" for n, count in sorted(
                 counts.items(), key=lambda item: str(item[0]))),
             "images per probe: " + (", ".join(f"{n} ({count} runs)" for n, count in sorted(probed.items()))
                                     or "no run was probed")]
    return [Bullets([("", line) for line in lines])]


def document_figures(records: list[RunRecord]) -> list[tuple[str, list[Figure]]]:
    """(data set, its figures) of the figures marked for the study document, data sets in order."""
    specs = [spec for spec in DATASET_FIGURES if spec.in_document]
    groups = []
    for dataset in datasets(records):
        figures = [Figure(dataset, image, spec.caption, name=f"{dataset}-{spec.name}") for spec in specs
                   if (image := spec.draw(records, dataset)) is not None]
        groups.append((dataset, figures))
    return groups


def document_blocks(sweep: Sweep, claims: ClaimsReport, previous: ClaimsReport | None = None) -> dict[str, list[Item]]:
    """The content of each generated block of the study document but `figures` (document_figures draws those
    only when they are written), with the sentence a block holds where its content is absent."""
    records = sweep.runs
    probe, rate = probe_table(records), rate_account_table(records)
    plateau = plateau_table(records)
    blocks = {"provenance": provenance_items(sweep), "verdicts": [verdicts_table(claims)],
              "claims": claims_section(claims).items, "convergence": [convergence_table(records)],
              "plateau": [plateau if plateau is not None else Paragraph(NO_PLATEAU_CHECK)],
              "probe": [probe if probe is not None else Paragraph(NO_PROBE)],
              "probe-rate": [rate if rate is not None else Paragraph(NO_PROBE_PAIRS)]}
    if previous is not None:
        blocks["previous"] = previous_items(claims, previous)
    return blocks
