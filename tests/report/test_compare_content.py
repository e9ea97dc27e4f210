"""The comparison's content from analysis.json dicts: the key numbers with their bounds, latent statistics shown
generically, the line on the images, and compare.csv made safe for spreadsheets."""

import csv
import io
import math
import re
from pathlib import Path

from vaelens.io import atomic_write_csv
from vaelens.report.compare import write_comparison
from vaelens.report.compare_content import (
    comparison_csv_rows,
    comparison_sections,
    key_label,
)
from vaelens.report.compare_models import ComparedModel
from vaelens.report.render_html import cell_text


def _analysis(seed: int = 0, units: int = 4, **extra) -> dict:
    """An analysis.json of a run with `units` units on 64 dSprites test images, `extra` keys added."""
    profile = [1.0 / (j + 1) for j in range(units)]
    return {"units": "nats", "num_images": 64, "log_num_images": math.log(64), "seed": seed, "latent_shape": [units],
            "data.name": "dsprites", "data.split": "test", "data.num_images": 73728, "data.image_shape": [1, 64, 64],
            "rate": 12.5, "rate_per_unit": profile, "mutual_information": 4.1, "mutual_information_stderr": 0.05,
            "mutual_information_ceiling": math.log(64), "mutual_information_saturated": False,
            "active_units": 3, "active_mask": [True] * 3 + [False] * (units - 3),
            "geometry.isoscore": 0.4, "geometry.participation_ratio": 2.5, "geometry.num_points": 64,
            "geometry.num_dimensions": units, "geometry.covariance_spectrum": profile,
            "geometry_active.isoscore": 0.6, "geometry_active.participation_ratio": 2.2,
            "geometry_active.num_points": 64, "geometry_active.num_dimensions": 3,
            "posterior_variance.profile": profile, "posterior_variance.normalized_entropy": 0.9,
            "mean_variance.profile": profile, "distortion.num_images": 64, "distortion.seed": seed,
            "distortion.mse": 0.02, "distortion.psnr": 17.0, "distortion.ssim": 0.5, "distortion.effnet_lite0": 1.2,
            "probe_skipped": "not requested (analysis option probe=false)", "run.checkpoint_step": 6,
            "run.status": "finished", **extra}


def _models(*labels: str) -> list[ComparedModel]:
    return [ComparedModel(label, "run", Path(f"/runs/{label}"), 1, 64, checkpoint_step=6) for label in labels]


def _table(sections, title: str):
    return next(section for section in sections if section.title == title).tables[0]


def _row(table, first: str) -> list[str]:
    return [cell_text(cell) for cell in next(row for row in table.rows if row[0] == first)]


def test_key_numbers_state_their_bounds():
    sections = comparison_sections(_models("a", "b"), [_analysis(), _analysis(units=6)], [Path("/none")] * 2)
    numbers = _table(sections, "Key numbers")
    assert numbers.columns == ["quantity", "bound / reading", "a", "b"]
    assert _row(numbers, "I(x; z) (nats)")[2:] == ["4.1 ± 0.05", "4.1 ± 0.05"]
    assert _row(numbers, "ceiling of I(x; z): log N (nats)")[2] == f"{math.log(64):.4g}"
    assert _row(numbers, "I(x; z) saturated")[2] == "no"
    assert _row(numbers, "active units")[2:] == ["3 of 4", "3 of 6"]
    assert _row(numbers, "participation ratio of Cov(mu) (all units)")[2:] == ["2.5 (≤ 4)", "2.5 (≤ 6)"]
    assert _row(numbers, "participation ratio of Cov(mu) (active units)")[2] == "2.2 (≤ 3)"
    assert _row(numbers, "EfficientNet-Lite0 distance (ImageNet)")[1:] == ["lower is better", "1.2", "1.2"]
    assert "Latent statistics" not in [section.title for section in sections]


def test_sample_bounds_and_skipped_views_are_said():
    bounded = _analysis(**{"geometry.bounded_by_sample": True, "geometry.isoscore_bound": 0.25,
                           "mutual_information_saturated": True, "geometry_active.skipped": "no units"})
    for key in ("geometry_active.isoscore", "geometry_active.participation_ratio"):
        del bounded[key]
    numbers = _table(comparison_sections(_models("a"), [bounded], [Path("/none")]), "Key numbers")
    assert _row(numbers, "IsoScore of mu (all units)")[2] == "0.4 (≤ 0.25: N ≤ d)"
    assert _row(numbers, "IsoScore of mu (active units)")[2] == "n/a: no units"
    assert _row(numbers, "I(x; z) saturated")[2] == "yes: a floor, not an estimate"


def test_latent_statistics_show_whichever_keys_are_present():
    with_statistics = _analysis(**{"latent_stats.sample_std": 0.98, "latent_stats.scaling_factor": 1.02,
                                   "latent_stats.num_images": 64, "latent_stats.channel_mean": [0.1, -0.2],
                                   "model.configured_scaling_factor": 0.18215})
    sections = comparison_sections(_models("sd", "plain"), [with_statistics, _analysis()], [Path("/none")] * 2)
    table = _table(sections, "Latent statistics")
    keys = [row[1] for row in table.rows]
    assert keys == ["latent_stats.num_images", "latent_stats.sample_std", "latent_stats.scaling_factor",
                    "model.configured_scaling_factor"]  # scalars only: the per-channel lists are left out
    assert _row(table, key_label("latent_stats.scaling_factor"))[2:] == ["1.02", "n/a"]
    assert _row(table, key_label("model.configured_scaling_factor"))[2] == "0.1822"
    assert key_label("geometry.isoscore") == "IsoScore of mu (all units)"  # declared: the registry's label
    assert key_label("latent_stats.sample_std") == "std of z"  # declared by the latent statistics
    assert key_label("latent_stats.num_images") == "latent_stats.num_images"  # undeclared: the key itself


def test_the_images_line_names_data_split_count_and_seed():
    sections = comparison_sections(_models("a", "b"), [_analysis(), _analysis()], [Path("/none")] * 2)
    (paragraph,) = [item for item in sections[0].items if getattr(item, "lead", "") == "Images."]
    assert "N = 64 images drawn at random (seed 0) from the test split of dsprites (73728 images of 1 x 64 x 64)" \
           in paragraph.text
    differing = comparison_sections(_models("a", "b"), [_analysis(), _analysis(seed=3)], [Path("/none")] * 2)
    assert differing[0].notes and "a: N = 64" in differing[0].notes[0] and "(seed 3)" in differing[0].notes[0]


def test_csv_cells_that_look_like_formulas_stay_text(tmp_path):
    models = [ComparedModel("=HYPERLINK", "run", Path("/runs/x"), 1, 64), ComparedModel("b", "run", Path("/b"), 1, 64)]
    header, rows = comparison_csv_rows(models, [_analysis(note="+1 nat", mutual_information=-0.5),
                                                _analysis(**{"@key": "@x"})])
    atomic_write_csv(tmp_path / "compare.csv", header, rows)  # the writer compare uses
    header, *rows = list(csv.reader((tmp_path / "compare.csv").open()))
    assert rows[0][:3] == ["'=HYPERLINK", "run", "/runs/x"]
    column = dict(zip(header, rows[0]))
    assert column["note"] == "'+1 nat" and column["mutual_information"] == "-0.5" and column["rate"] == "12.5"
    assert column["'@key"] == "" and dict(zip(header, rows[1]))["'@key"] == "'@x"
    assert "rate_per_unit" not in header


def test_written_page_is_self_contained_and_csv_reads_back(tmp_path):
    models = _models("a", "b")
    page, table = write_comparison(models, [_analysis(), _analysis(units=6)], tmp_path)
    html = page.read_text()
    assert re.findall(r"src='([^']{0,22})", html) == ["data:image/png;base64,"] * 2  # the two overlaid figures
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [row["label"] for row in rows] == ["a", "b"] and rows[1]["rate"] == "12.5"
