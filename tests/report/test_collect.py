"""results.csv as a pandas user reads it: every scalar analysis key a column, numbers as numbers, and no cell a
spreadsheet would run as a formula."""

import csv
import dataclasses

from vaelens.report.collect import results_table, write_results_csv

ANALYSIS = {"mutual_information": -0.004, "mutual_information_stderr": 0.011, "num_images": 512,
            "latent_stats.scaling_factor": 0.18, "latent_stats.channel_std": [1.0, 2.0],
            "mutual_information_saturated": False, "total_correlation_skipped": "too many units",
            "data.path": "=HYPERLINK(\"http://example.com\")", "data.name": "@folder"}


def _run(make_run, seed: int):
    """A run record whose analysis holds ANALYSIS and its own seed (3), which differs from the training seed."""
    record = make_run("pointwise", seed, 2.0, **ANALYSIS)
    record.analysis["seed"] = 3
    return record


def _read(path):
    return list(csv.DictReader(path.open()))


def test_every_scalar_analysis_key_is_a_column_and_numbers_stay_numbers(make_run, tmp_path):
    record = _run(make_run, 0)
    header, _ = results_table([record])
    [row] = _read(write_results_csv([record], tmp_path / "results.csv"))
    scalars = [key for key, value in record.analysis.items() if not isinstance(value, list)]
    assert set(scalars) - {"seed"} <= set(header) and "analysis:seed" in header
    assert "latent_stats.channel_std" not in header, "lists are not cells"
    assert header.count("mutual_information") == 1, "a registry column is not repeated under its key"
    assert float(row["mutual_information"]) == -0.004 and float(row["mutual_information_stderr"]) == 0.011
    # The analysis' seed beside the training's, which owns the name `seed`.
    assert (row["seed"], row["analysis:seed"]) == ("0", "3")
    assert row["latent_stats.scaling_factor"] == "0.18" and row["mutual_information_saturated"] == "False"
    assert row["total_correlation_skipped"] == "too many units"


def test_user_strings_that_look_like_formulas_are_quoted(make_run, tmp_path):
    record = dataclasses.replace(_run(make_run, 0), run_id="=cmd|' /C calc'!A0",
                                 axes={"data.name": "+folder", "loss.beta": -1.5}, status="failed",
                                 error="-rf: not a run")
    [row] = _read(write_results_csv([record], tmp_path / "results.csv"))
    assert row["run_id"] == "'=cmd|' /C calc'!A0" and row["axis:data.name"] == "'+folder"
    assert row["error"] == "'-rf: not a run" and row["axis:loss.beta"] == "-1.5"
    perceptual = make_run("+perceptual", 0, 2.0, **{"objective.family": "+perceptual"})
    [row] = _read(write_results_csv([perceptual], tmp_path / "family.csv"))
    assert row["loss_family"] == row["objective.family"] == "+perceptual", "vaelens' own vocabulary stays as it is"
    failed_has_no_analysis_columns = "data.path" not in row
    assert failed_has_no_analysis_columns, "keys come from usable runs"
    usable = _run(make_run, 1)
    rows = _read(write_results_csv([record, usable], tmp_path / "both.csv"))
    assert rows[1]["data.path"] == "'=HYPERLINK(\"http://example.com\")" and rows[1]["data.name"] == "'@folder"
    assert float(rows[1]["mutual_information"]) == -0.004
