"""`vaelens theory` on the command line: options generated from TheoryConfig, the run, bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vaelens.cli import build_parser, main
from vaelens.options import dataclass_from_options
from vaelens.theory.cli import OPTION_NAMES
from vaelens.theory.config import TheoryConfig

HAND_WRITTEN_DEFAULTS = {
    "sources": "gaussian,natural", "side": 8, "spectrum": "power:2", "num_samples": 2048, "latent_dim": 16,
    "betas": None, "sigma": 0.1, "perceptual_weight": 1.0, "neural_fraction": 0.5, "features": "random",
    "metric_images": 64, "steps": 3000, "lr": 0.02, "seed": 0, "progress": True,
}
"""Defaults of the hand-written `vaelens theory` options that the generated ones replaced."""
EVERY_OPTION = ["--sources", "natural", "--side", "4", "--spectrum", "power:1", "--samples", "64", "--latent-dim",
                "3", "--betas", "2,0.5", "--sigma", "0.2", "--perceptual-weight", "2", "--neural-fraction", "0.25",
                "--features", "random", "--metric-images", "8", "--steps", "5", "--lr", "0.1", "--seed", "1",
                "--no-progress"]


def _parse(*arguments):
    return build_parser().parse_args(["theory", "--out", "x", *arguments])


def test_generated_options_keep_the_names_and_defaults_of_the_hand_written_ones(capsys):
    defaults = vars(_parse())
    assert {key: defaults[key] for key in HAND_WRITTEN_DEFAULTS} == HAND_WRITTEN_DEFAULTS
    assert set(defaults) == {*HAND_WRITTEN_DEFAULTS, "out", "command", "handler", "debug"}  # debug: vaelens --debug
    config = dataclass_from_options(TheoryConfig, _parse(*EVERY_OPTION), OPTION_NAMES)
    assert dataclasses.asdict(config) == {
        "sources": ["natural"], "side": 4, "spectrum": "power:1", "num_samples": 64, "latent_dim": 3,
        "betas": [2.0, 0.5], "sigma": 0.2, "perceptual_weight": 2.0, "neural_fraction": 0.25, "features": "random",
        "metric_images": 8, "steps": 5, "lr": 0.1, "seed": 1, "progress": False}
    with pytest.raises(SystemExit):
        main(["theory", "--help"])
    assert "--samples SAMPLES" in capsys.readouterr().out.replace("\n", " ")


def test_help_is_the_field_docstrings(capsys):
    with pytest.raises(SystemExit):
        main(["theory", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Training vectors per source (Gaussian draws, natural patches) (default 2048)" in text
    assert "(comma-separated; default gaussian,natural)" in text and "do not show a progress bar" in text


def test_defaults_reach_the_config_unchanged():
    assert dataclass_from_options(TheoryConfig, _parse(), OPTION_NAMES) == TheoryConfig()


def test_a_bad_list_item_names_the_option(tmp_path, capsys):
    assert main(["theory", "--out", str(tmp_path / "out"), "--betas", "1,two"]) == 2
    assert "--betas must be a comma-separated list, got '1,two'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_theory_command_writes_json_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "theory"
    code = main(["theory", "--out", str(out), "--side", "4", "--samples", "128", "--latent-dim", "3",
                 "--steps", "20", "--betas", "20,4", "--metric-images", "4", "--no-progress"])
    assert code == 0
    assert "additive - pixel rate" in capsys.readouterr().out
    report = json.loads((out / "theory.json").read_text())
    assert report["units"] == "nats" and set(report["weighting_conventions"]) == {"pixel", "additive", "convex"}
    for name in ("gaussian", "natural"):
        source = report["sources"][name]
        assert len(source["runs"]) == 6 and (out / f"theory_{name}.png").stat().st_size > 0
        assert {run["convention"] for run in source["runs"]} == {"pixel", "additive", "convex"}
        for run in source["runs"]:
            assert len(run["trained"]["posterior_variance"]) == 3 and run["predicted"]["rate"] >= 0
            assert (out / run["run_dir"] / "summary.json").is_file()
        for rows in source["perceptual_effect"].values():
            assert [row["beta"] for row in rows] == [20.0, 4.0]
        # Theory: adding a quadratic term can only raise the rate.
        assert all(row["change_predicted"] >= -1e-9 for row in source["perceptual_effect"]["additive"])
        assert all(row["direction_trained"] in ("raised", "lowered", "unchanged")
                   for rows in source["perceptual_effect"].values() for row in rows)


@pytest.mark.parametrize("arguments,message", [
    (["--sources", "gaussian,mnist"], "unknown or empty sources"),
    (["--spectrum", "1,2"], "positive numbers"),
    (["--neural-fraction", "1.0"], "neural fraction"),
    (["--betas", "1,-2"], "positive numbers"),
    (["--steps", "0"], "steps must be a positive integer"),
    (["--side", "5", "--sources", "natural"], "divide 32"),
    (["--features", "no-such-network"], "no-such-network"),
])
def test_theory_command_rejects_bad_input(tmp_path, capsys, arguments, message):
    code = main(["theory", "--out", str(tmp_path / "out"), "--no-progress", "--samples", "16", "--side", "2",
                 *arguments])
    assert code == 2
    assert message in capsys.readouterr().err
