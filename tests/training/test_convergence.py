"""The convergence figure: relative improvement of the logged objective over the last 20% of steps."""

import pytest

from vaelens.training.convergence import convergence


def _records(losses: list[float], steps: int) -> list[dict]:
    every = steps // len(losses)
    return [{"step": every * (index + 1), "loss": loss} for index, loss in enumerate(losses)]


def test_a_plateau_and_a_still_falling_curve():
    flat = convergence(_records([50 + 50 * 0.5 ** (i / 5) for i in range(100)], 1000), 1000)
    assert flat["converged"] is True and 0 <= flat["relative_improvement"] < 0.02
    falling = convergence(_records([100 - 0.2 * i for i in range(100)], 1000), 1000)
    # Linear: records 76-85 (steps 760-850) average 100 - 0.2 * 79.5, records 91-100 three less.
    assert falling["converged"] is False
    assert falling["relative_improvement"] == pytest.approx(3.0 / (100 - 0.2 * 79.5), rel=1e-9)
    assert falling["records_at_80_percent"] == 10 and falling["records_at_end"] == 10


def test_too_few_records_say_what_to_change():
    figure = convergence([{"step": 1000, "loss": 1.0}], 1000)
    assert figure["converged"] is None and "train.log_every" in figure["reason"]


def test_a_finished_run_records_it(tmp_path, tiny_config):
    from vaelens import train

    tiny_config.train.steps, tiny_config.train.log_every = 40, 2
    figure = train(tiny_config, tmp_path / "run").summary["convergence"]
    assert figure["records_at_80_percent"] == 2 and figure["records_at_end"] == 2  # steps 32, 34 and 38, 40
    assert isinstance(figure["converged"], bool)


def test_the_figure_prefers_interval_means_and_states_its_standard_error():
    noisy = [{"step": s, "loss": 100.0 + (5.0 if (s // 10) % 2 else -5.0), "loss_interval_mean": 100.0}
             for s in range(10, 1001, 10)]
    figure = convergence(noisy, 1000)
    assert figure["key"] == "loss_interval_mean" and figure["relative_improvement"] == 0.0
    assert figure["standard_error"] == 0.0 and figure["converged"]
    single = convergence(noisy, 1000, key="loss")
    assert single["standard_error"] > 0.01  # +-5% single-batch noise: the figure says how uncertain it is


def test_each_record_holds_the_mean_objective_since_the_previous_one(tmp_path, tiny_config):
    from vaelens import train
    from vaelens.training.rundir import RunDirectory

    tiny_config.train.steps, tiny_config.train.checkpoint_every = 12, 12
    tiny_config.train.log_every = 1
    every_step = RunDirectory(train(tiny_config, tmp_path / "each").run_dir).read_metrics()
    assert all(r["loss_interval_mean"] == pytest.approx(r["loss"], rel=1e-6) for r in every_step)
    tiny_config.train.log_every = 4
    grouped = RunDirectory(train(tiny_config, tmp_path / "grouped").run_dir).read_metrics()
    assert [r["step"] for r in grouped] == [4, 8, 12]
    for record in grouped:
        window = [r["loss"] for r in every_step if record["step"] - 4 < r["step"] <= record["step"]]
        assert record["loss_interval_mean"] == pytest.approx(sum(window) / 4, rel=1e-5)
        assert record["loss"] == pytest.approx(window[-1], rel=1e-6)


def test_the_figure_is_measured_from_the_objectives_origin():
    """A likelihood's normalising constant shifts the objective but not what training reduces: the figure
    read from the origin is the same whatever the constant, and a raw figure is not."""
    curve = [1000 + 1000 * 0.5 ** (i / 10) for i in range(100)]
    reference = convergence(_records(curve, 1000), 1000)
    for constant in (-4250.0, 300.0):
        shifted = _records([value + constant for value in curve], 1000)
        measured = convergence(shifted, 1000, origin=constant)
        assert measured["relative_improvement"] == pytest.approx(reference["relative_improvement"], rel=1e-12)
        assert measured["improvement_nats"] == pytest.approx(reference["improvement_nats"], rel=1e-9)
        assert convergence(shifted, 1000)["relative_improvement"] != pytest.approx(reference["relative_improvement"])
    learned = convergence(_records(curve, 1000), 1000, origin=None)
    assert learned["origin"] is None and "no fixed origin" in learned["note"]


def test_a_finished_gaussian_run_uses_its_normalising_constant(tmp_path, tiny_config):
    import math

    from vaelens import train

    tiny_config.loss.likelihood, tiny_config.loss.sigma = "gaussian", 0.1
    tiny_config.train.steps, tiny_config.train.log_every = 40, 2
    figure = train(tiny_config, tmp_path / "run").summary["convergence"]
    pixels = 64 * 64  # dSprites: one channel
    assert figure["origin"] == pytest.approx(pixels * (math.log(0.1) + 0.5 * math.log(2 * math.pi)))
    assert figure["relative_improvement"] == pytest.approx(
        figure["improvement_nats"] / abs(figure["loss_at_80_percent"] - figure["origin"]))
