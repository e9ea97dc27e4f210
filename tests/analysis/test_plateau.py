"""The paired plateau check: the objective at two checkpoints on the same images and posterior noise."""

import json
import math

import pytest
import torch

from vaelens.analysis.plateau import (
    check_run,
    check_runs,
    paired_improvement,
    per_image_objective,
    plateau_steps,
    run_directories,
)
from vaelens.errors import VaelensError
from vaelens.training.rundir import PLATEAU_FILE as FILE_NAME


def test_the_relative_improvement_and_its_standard_error_in_closed_form():
    after = torch.tensor([10.0, 12.0, 14.0, 16.0])
    before = after + torch.tensor([1.0, 2.0, 3.0, 2.0])
    figure = paired_improvement(before, after, origin=-7.0)
    scale = 15.0 + 7.0  # mean before is 15; measured from the origin -7
    assert figure["improvement_nats"] == pytest.approx(2.0)
    assert figure["relative_improvement"] == pytest.approx(2.0 / scale)
    # The differences 1, 2, 3, 2: sample sd sqrt(2/3), over sqrt(4) images.
    assert figure["standard_error"] == pytest.approx(math.sqrt(2 / 3) / 2 / scale)
    assert figure["converged"] is False and figure["images"] == 4 and "note" not in figure


def test_a_learned_scale_is_measured_on_the_raw_value_and_says_so():
    figure = paired_improvement(torch.tensor([100.0, 100.0]), torch.tensor([99.5, 99.5]), origin=None)
    assert figure["relative_improvement"] == pytest.approx(0.005) and figure["converged"] is True
    assert "no fixed origin" in figure["note"]


def test_unpaired_series_are_refused():
    with pytest.raises(ValueError, match="equal-length"):
        paired_improvement(torch.ones(3), torch.ones(4), origin=0.0)


@pytest.mark.parametrize("steps, total, expected", [
    ([400, 800, 1200, 1600, 2000], 2000, (1600, 2000)),  # checkpoint_every = T / 5 lands on 0.8 T
    ([1500, 2000], 2000, (1500, 2000)),                  # T / 4: a longer, stricter stretch
    ([1700, 2000], 2000, None),                          # nothing at or before 0.8 T
    ([1200, 1600], 2000, None),                          # no final checkpoint
])
def test_the_checkpoints_compared(steps, total, expected):
    assert plateau_steps(steps, total) == expected


def test_the_per_image_objective_matches_the_training_objective(tiny_config, tmp_path):
    from vaelens import train
    from vaelens.training.run import evaluate

    result = train(tiny_config, tmp_path / "run")
    images = torch.rand(20, *result.summary["data"]["image_shape"], generator=torch.Generator().manual_seed(1))
    values = per_image_objective(result.model, result.objective, images, seed=5, chunk_size=32)
    # One chunk draws the same noise as `evaluate` with a generator of the same seed.
    terms = evaluate(result.model, result.objective, images, torch.Generator().manual_seed(5))
    assert values.shape == (20,)
    assert float(values.mean()) == pytest.approx(terms["distortion"] + result.objective.beta * terms["rate"], rel=1e-5)
    again = per_image_objective(result.model, result.objective, images, seed=5, chunk_size=7)
    assert torch.allclose(values, again, rtol=1e-5, atol=1e-4)  # the noise does not depend on the chunking


def test_a_finished_run_is_checked_and_skipped_the_second_time(tiny_config, tmp_path):
    from vaelens import train

    tiny_config.train.steps, tiny_config.train.checkpoint_every = 10, 2
    run_dir = train(tiny_config, tmp_path / "run").run_dir
    record = check_run(run_dir, images=32, seed=0)
    assert (record["from_step"], record["to_step"], record["stretch"]) == (8, 10, pytest.approx(0.2))
    assert record["images"] == 32 and record["split"] == "train" and isinstance(record["converged"], bool)
    assert record["origin"] == 0.0  # Bernoulli pixels have no normalising constant
    [(path, written)] = check_runs(run_dir, images=32, seed=0, progress=False)
    assert json.loads((run_dir / FILE_NAME).read_text()) == written
    # summary.json holds the verdict and figure beside the logged convergence figure
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["plateau"]["converged"] == written["converged"] and summary["plateau"]["record"] == FILE_NAME
    assert summary["plateau"]["relative_improvement"] == written["relative_improvement"]
    assert "convergence" in summary and summary["status"] == "finished"
    assert written["relative_improvement"] == pytest.approx(record["relative_improvement"], rel=1e-6)
    (run_dir / FILE_NAME).write_text(json.dumps({**written, "marker": 1}))
    [(_, kept)] = check_runs(run_dir, images=32, seed=0, progress=False)
    assert kept["marker"] == 1  # same images, seed and checkpoints: not measured again
    [(_, redone)] = check_runs(run_dir, images=16, seed=0, progress=False)
    assert "marker" not in redone and redone["images"] == 16
    assert json.loads((run_dir / "summary.json").read_text())["plateau"]["images"] == 16  # follows the record


@pytest.mark.parametrize("overrides", [["loss.likelihood=gaussian_learned"],
                                       ["loss.convention=ldm", "loss.likelihood=laplace"]])
def test_a_learned_scale_is_frozen_at_its_final_value_which_gives_the_origin(tiny_config, tmp_path, overrides):
    from vaelens import train
    from vaelens.analysis.plateau import METHOD_VERSION, training_images
    from vaelens.config import update
    from vaelens.config.parse import parse_override
    from vaelens.data import load_dataset
    from vaelens.losses.objective import frozen_scale_constant
    from vaelens.runs import load_run

    tiny_config.train.steps, tiny_config.train.checkpoint_every = 10, 2
    update(tiny_config, dict(parse_override(text) for text in overrides))
    run_dir = train(tiny_config, tmp_path / "run").run_dir
    record = check_run(run_dir, images=32, seed=0)
    final, earlier = load_run(run_dir, step=10), load_run(run_dir, step=8)
    scales = [dict(loaded.objective.named_parameters()) for loaded in (earlier, final)]
    assert any(not torch.equal(scales[0][name], scales[1][name]) for name in scales[1])  # the scale moved
    # the origin: the objective's constant at the final scale (a perfect reconstruction's value there)
    shape = (1, 64, 64)
    if "loss.convention=ldm" in overrides:
        expected = math.prod(shape) * float(final.objective.ldm_logvar.detach())
    else:
        log_sigma = float(final.objective.likelihood.log_sigma.detach())
        expected = math.prod(shape) * (log_sigma + 0.5 * math.log(2 * math.pi))
        x = torch.rand(2, *shape)
        assert float(final.objective.likelihood.nll(x, x)[0].detach()) == pytest.approx(expected, rel=1e-5)
    assert frozen_scale_constant(final.objective, shape) == pytest.approx(expected, rel=1e-9)
    assert record["origin"] == pytest.approx(expected, rel=1e-9) and "note" not in record
    assert "frozen" in record["origin_note"] and record["method_version"] == METHOD_VERSION
    # both checkpoints' models under the final objective
    images, _ = training_images(load_dataset(tiny_config.data, split="train"), 32, 0)
    before = per_image_objective(earlier.model, final.objective, images, 0).double().mean()
    after = per_image_objective(final.model, final.objective, images, 0).double().mean()
    assert record["objective_before"] == pytest.approx(float(before), rel=1e-6)
    assert record["relative_improvement"] == pytest.approx(float((before - after) / abs(before - expected)), rel=1e-6)


def test_a_record_of_an_older_method_is_measured_again(tiny_config, tmp_path):
    from vaelens import train

    tiny_config.train.steps, tiny_config.train.checkpoint_every = 10, 2
    run_dir = train(tiny_config, tmp_path / "run").run_dir
    [(_, written)] = check_runs(run_dir, images=16, progress=False)
    (run_dir / FILE_NAME).write_text(json.dumps({**written, "method_version": 1, "marker": 1}))
    [(_, redone)] = check_runs(run_dir, images=16, progress=False)
    assert "marker" not in redone and redone["relative_improvement"] == written["relative_improvement"]


def test_a_fixed_scale_objective_has_no_frozen_constant():
    from vaelens.config import RunConfig
    from vaelens.losses.objective import build_objective, frozen_scale_constant

    config = RunConfig().loss
    assert frozen_scale_constant(build_objective(config, (1, 8, 8)), (1, 8, 8)) is None


def test_a_run_without_an_early_checkpoint_says_what_to_set(tiny_config, tmp_path):
    from vaelens import train

    tiny_config.train.steps, tiny_config.train.checkpoint_every = 10, 9
    run_dir = train(tiny_config, tmp_path / "run").run_dir
    record = check_run(run_dir, images=8)
    assert record["converged"] is None and "train.checkpoint_every <= train.steps / 5" in record["reason"]
    check_runs(run_dir, images=8, progress=False)
    assert not (run_dir / FILE_NAME).exists()  # nothing measured, nothing written


def test_a_missing_checkpoint_step_names_the_ones_there(tiny_config, tmp_path):
    from vaelens import train
    from vaelens.runs import load_run

    run_dir = train(tiny_config, tmp_path / "run").run_dir
    with pytest.raises(VaelensError, match="no checkpoint of step 3; it has steps 4, 6"):
        load_run(run_dir, step=3)
    assert load_run(run_dir, step=4).step == 4


def test_a_folder_that_is_no_run_or_sweep_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a run directory nor a sweep"):
        run_directories(tmp_path)


def test_the_command_checks_a_run_and_names_a_wrong_folder(tiny_config, tmp_path, capsys):
    from vaelens import train
    from vaelens.cli import main

    tiny_config.train.steps, tiny_config.train.checkpoint_every = 10, 2
    run_dir = train(tiny_config, tmp_path / "run").run_dir
    assert main(["plateau", str(run_dir), "--images", "16", "--no-progress", "--device", "cpu"]) == 0
    record = json.loads((run_dir / FILE_NAME).read_text())
    assert f"{int(record['converged'])} of 1 checked runs are on the plateau" in capsys.readouterr().out
    assert main(["plateau", str(tmp_path / "nothing-here")]) == 2
    assert "neither a run directory nor a sweep" in capsys.readouterr().err
