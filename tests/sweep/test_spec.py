from pathlib import Path

import pytest
import yaml

from vaelens.config import ConfigError, config_hash
from vaelens.sweep import expand, load_spec
from vaelens.sweep.spec import axis_points

SHIPPED = Path(__file__).resolve().parents[2] / "src" / "vaelens" / "configs" / "sweeps"


def test_grid_expands_to_every_combination_last_axis_fastest(tiny_spec, tmp_path):
    tiny_spec["grid"] = {"loss.beta": [1.0, 4.0], "train.seed": [0, 1, 2]}
    tasks = expand(load_spec(tiny_spec), tmp_path)
    assert [task.axes for task in tasks] == [{"loss.beta": b, "train.seed": s} for b in (1.0, 4.0) for s in (0, 1, 2)]
    for task in tasks:
        assert task.config.loss.beta == task.axes["loss.beta"] and task.config.train.seed == task.axes["train.seed"]
        assert task.config.data.subset == 64  # the base overrides hold in every run
        assert task.run_dir == tmp_path / "runs" / task.run_id


def test_zip_axes_move_together_and_combine_with_the_grid(tiny_spec):
    tiny_spec["zip"] = [{"loss.convention": ["additive", "ldm"], "loss.likelihood": ["bernoulli", "laplace"]}]
    points = axis_points(load_spec(tiny_spec))
    assert len(points) == 4
    assert {(p["loss.convention"], p["loss.likelihood"]) for p in points} == {("additive", "bernoulli"),
                                                                              ("ldm", "laplace")}


@pytest.mark.parametrize("change, message", [
    ({"grids": {}}, "unknown key(s) grids"),
    ({"grid": {"loss.betta": [1.0]}}, "unknown config key 'loss.betta'"),
    ({"overrides": {"model.chanels": 4}}, "unknown config key 'model.chanels'"),
    ({"grid": {"loss.beta": ["high"]}}, "loss.beta expects a number"),
    ({"grid": {"loss.beta": []}}, "non-empty list"),
    ({"grid": {"loss.beta": 4.0}}, "non-empty list"),
    ({"zip": [{"loss.beta": [1.0, 2.0], "train.seed": [0]}]}, "equal lengths"),
    ({"zip": [{"loss.beta": [1.0]}]}, "more than one axis"),
    ({"analysis_images": 0}, "analysis_images"),
    ({"analysis": {"distortion_images": 1}}, "analysis_distortion_images must be an integer of at least 2"),
    ({"analysis": {"distortion": 1}}, "unknown analysis option(s) distortion; valid: enabled, images"),
    ({"executors": {"ensemble": {"max_modles": 4}}}, "the ensemble executor takes no option max_modles"),
    ({"executors": {"slurm": {}}}, "unknown executor 'slurm'"),
    ({"executors": {"ensemble": {"max_models": 0}}}, "max_models must be at least 1"),
    ({"preset": "no-such-preset"}, "unknown preset"),
])
def test_invalid_specs_are_clear_errors(tiny_spec, change, message):
    tiny_spec.update(change)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec(tiny_spec)


def test_spec_file_with_a_relative_config_file_and_list_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"model": {"latent_dim": 3}}))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "config": "base.yaml", "overrides": ["train.steps=5", "loss.beta=2"], "grid": {"train.seed": [0, 1]}}))
    tasks = expand(load_spec(tmp_path / "spec.yaml"))
    assert [(t.config.model.latent_dim, t.config.train.steps, t.config.loss.beta) for t in tasks] == [(3, 5, 2.0)] * 2
    with pytest.raises(ConfigError, match="sweep spec not found"):
        load_spec(tmp_path / "missing.yaml")


def test_run_ids_hash_the_resolved_config(tiny_spec, tmp_path):
    first, second = expand(load_spec(tiny_spec), tmp_path), expand(load_spec(tiny_spec), tmp_path / "elsewhere")
    assert [t.run_id for t in first] == [t.run_id for t in second]  # stable across expansions and folders
    assert len({t.run_id for t in first}) == 2  # different beta, different run
    assert all(t.run_id == config_hash(t.config) for t in first)
    tiny_spec["grid"] = {"loss.beta": [1.0, 1]}  # the same value twice resolves to one run
    assert len(expand(load_spec(tiny_spec))) == 1


def test_shipped_specs_load_and_expand():
    assert len(expand(load_spec(SHIPPED / "tiny.yaml"))) == 4
    assert len(expand(load_spec(SHIPPED / "dsprites-beta.yaml"))) == 42
