"""`vaelens compare`: several models analysed on the same seeded images, side by side in one self-contained
page (compare.html) and one CSV (compare.csv).

Each model is analysed as `vaelens analyze` would (vaelens.analysis: a run through `analyze_run`, an
AutoencoderKL through `analyze_pretrained`) with one data config, image count and seed, into OUT/<label>/
(analysis.json, its figures, and compare-settings.json: what it was asked for). A model whose folder already
holds a finished analysis of the same settings is not analysed again, so an interrupted comparison resumes
where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.sample_size import AUTO, AUTO_MIN_IMAGES
from vaelens.analysis.saved_run import analyze_run
from vaelens.analysis.target import analyze_pretrained
from vaelens.config import DataConfig
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.io import atomic_write_csv, atomic_write_json, atomic_write_text, read_json
from vaelens.pretrained import load_diffusers_autoencoder
from vaelens.report.compare_content import comparison_csv_rows, comparison_sections
from vaelens.report.compare_models import (
    ComparedModel,
    check_image_shape,
    evaluation_data,
    resolve_models,
)
from vaelens.report.render_html import render_page
from vaelens.training.rundir import RunDirectory

logger = logging.getLogger("vaelens")

PAGE_FILE, CSV_FILE, SETTINGS_FILE = "compare.html", "compare.csv", "compare-settings.json"
DEFAULT_COMPARE_IMAGES = AUTO_MIN_IMAGES
"""Images every model is analysed on unless told otherwise (one count for all: "auto" chooses one per model)."""
PAGE_NOTE = ("Information quantities in nats. Every scalar of every model's analysis: compare.csv beside this page; "
             "each model's analysis.json and figures: the folder named by its label.")


@dataclass
class Comparison:
    """What `compare` wrote."""

    page: Path
    """compare.html."""
    csv: Path
    """compare.csv."""
    models: list[ComparedModel]
    """The models, labelled, in the order given."""
    analyses: list[dict]
    """Each model's analysis.json, in the same order."""
    reused: list[str]
    """Labels of the models whose finished analysis of the same settings was read back, not redone."""


def _settings(model: ComparedModel, data_config: DataConfig, options: AnalysisOptions) -> dict:
    """What a model's analysis was asked for: the model (a run's checkpoint and status too), data and options."""
    settings = {"model": model.spec, "checkpoint_step": model.checkpoint_step,
                "run_status": RunDirectory(model.path).status() if model.kind == "run" else None,
                "data": vars(data_config), "analysis": dataclasses.asdict(options)}
    return json.loads(json.dumps(settings))  # as read back from the file: tuples become lists


def _reusable(folder: Path, settings: dict) -> dict | None:
    """The analysis in `folder` when it finished under the same settings; None when it must be (re)done."""
    settings_path, analysis_path = folder / SETTINGS_FILE, folder / "analysis.json"
    if not (settings_path.is_file() and analysis_path.is_file()):
        return None
    try:
        if read_json(settings_path) != settings:
            return None
        return read_json(analysis_path)
    except ValueError:  # a file cut short: analyse again
        return None


def _analyse(model: ComparedModel, data_config: DataConfig, options: AnalysisOptions, folder: Path, device,
             progress: bool, allow_diverged: bool) -> dict:
    if model.kind == "run":
        return analyze_run(model.path, options, data_config=data_config, out=folder, device=device,
                           progress=progress, allow_diverged=allow_diverged)[1]
    autoencoder = load_diffusers_autoencoder(model.path, data_config.image_size, device)
    return analyze_pretrained(autoencoder, data_config, folder, options, device=device, progress=progress)[1]


def _check_options(options: AnalysisOptions) -> AnalysisOptions:
    if options.images == AUTO:
        raise ValueError('compare analyses every model on the same images: give --images N ("auto" would choose '
                         "a different count for each model)")
    return options.check()


def compare(specs: list[str], out, *, labels: list[str] | None = None, data_spec: str | None = None,
            image_size: int | None = None, options: AnalysisOptions | None = None, device="auto",
            progress: bool = True, allow_diverged: bool = False) -> Comparison:
    """Analyse the models `specs` (run directories or diffusers:FOLDER) on the same images and write
    OUT/compare.html and OUT/compare.csv. `options` say how each is analysed (default: DEFAULT_COMPARE_IMAGES
    images, seed 0); every model gets the same. Models that cannot take the same images are refused before
    anything is analysed."""
    options = _check_options(options or AnalysisOptions(images=DEFAULT_COMPARE_IMAGES))
    device = resolve_device(device)
    models = resolve_models(specs, labels)
    data_config = evaluation_data(models, data_spec, image_size)
    data = load_dataset(data_config, split="test")
    check_image_shape(models, data.image_shape, f"the evaluation data ({data_config.name}, test split)")
    out = Path(out).expanduser()
    analyses, reused = [], []
    for model in tqdm(models, desc="compare", disable=not progress, leave=False):
        folder = out / model.label
        settings = _settings(model, data_config, options)
        analysis = _reusable(folder, settings)
        if analysis is None:
            # The old settings go first: an analysis cut short must not pass for theirs on the next attempt.
            (folder / SETTINGS_FILE).unlink(missing_ok=True)
            analysis = _analyse(model, data_config, options, folder, device, progress, allow_diverged)
            atomic_write_json(folder / SETTINGS_FILE, settings)
        else:
            reused.append(model.label)
            logger.info("%s: reusing %s (same settings)", model.label, folder / "analysis.json")
        analyses.append(analysis)
    page, table = write_comparison(models, analyses, out)
    return Comparison(page, table, models, analyses, reused)


def write_comparison(models: list[ComparedModel], analyses: list[dict], out: Path) -> tuple[Path, Path]:
    """compare.csv and compare.html in `out` (atomic), from the models' analyses (their folders in `out`)."""
    header, rows = comparison_csv_rows(models, analyses)
    table = out / CSV_FILE
    atomic_write_csv(table, header, rows)
    title = "vaelens compare: " + ", ".join(model.label for model in models)
    page = out / PAGE_FILE
    sections = comparison_sections(models, analyses, [out / model.label for model in models])
    atomic_write_text(page, render_page(title, sections, note=PAGE_NOTE))
    return page, table
