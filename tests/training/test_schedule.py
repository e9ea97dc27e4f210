"""train.lr_schedule: the cosine rate in closed form, applied the same way by the single trainer, the
ensemble and a resumed run; a constant run keeps its run id."""

import copy
import math

import pytest
import torch

from vaelens import train
from vaelens.config import config_hash
from vaelens.training.ensemble import train_ensemble
from vaelens.training.schedule import learning_rate


def test_cosine_rate_in_closed_form(tiny_config):
    settings = tiny_config.train
    settings.lr, settings.steps, settings.lr_schedule = 2e-3, 100, "cosine"
    assert learning_rate(settings, 0) == pytest.approx(2e-3)
    assert learning_rate(settings, 50) == pytest.approx(1e-3)
    assert learning_rate(settings, 80) == pytest.approx(1e-3 * (1 + math.cos(0.8 * math.pi)))
    rates = [learning_rate(settings, step) for step in range(100)]
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] > 0
    settings.lr_schedule = "constant"
    assert {learning_rate(settings, step) for step in range(100)} == {2e-3}


def _rates_seen(trainer_call):
    """The rate of every Adam step a training call takes (a tiny run has no discriminator)."""
    seen: list[float] = []
    original = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = recording_step
    try:
        trainer_call()
    finally:
        torch.optim.Adam.step = original
    return seen


def test_single_run_and_ensemble_follow_the_schedule(tiny_config, tmp_path, members_of):
    tiny_config.model.name = "mlp"
    tiny_config.train.lr_schedule = "cosine"
    expected = [learning_rate(tiny_config.train, step) for step in range(tiny_config.train.steps)]
    single = _rates_seen(lambda: train(tiny_config, tmp_path / "single"))
    assert single == pytest.approx(expected)
    configs = members_of(tiny_config, [(1.0, 0), (4.0, 1)])
    ensemble = _rates_seen(lambda: train_ensemble(configs, [tmp_path / "m0", tmp_path / "m1"], progress=False))
    assert ensemble == pytest.approx(expected)  # one stacked Adam step per step


def test_cosine_run_differs_from_constant_and_resumes_exactly(tiny_config, tmp_path, interrupt_at):
    tiny_config.model.name = "mlp"
    constant = train(copy.deepcopy(tiny_config), tmp_path / "constant")
    tiny_config.train.lr_schedule = "cosine"
    whole = train(copy.deepcopy(tiny_config), tmp_path / "whole")
    difference = max(float((whole.model.state_dict()[k] - constant.model.state_dict()[k]).abs().max())
                     for k in whole.model.state_dict())
    assert difference > 1e-4  # the annealed steps are smaller
    with pytest.raises(KeyboardInterrupt):
        train(copy.deepcopy(tiny_config), tmp_path / "resumed", hooks=interrupt_at(5))
    resumed = train(copy.deepcopy(tiny_config), tmp_path / "resumed", resume=True)
    assert resumed.summary["resumed_from"] == 4
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_schedule_is_in_the_run_id_only_when_not_constant(tiny_config):
    constant_id = config_hash(tiny_config)
    explicit = copy.deepcopy(tiny_config)
    explicit.train.lr_schedule = "constant"
    cosine = copy.deepcopy(tiny_config)
    cosine.train.lr_schedule = "cosine"
    assert config_hash(explicit) == constant_id != config_hash(cosine)


def test_cuda_graph_cannot_follow_a_schedule(tiny_config, tmp_path):
    tiny_config.train.lr_schedule, tiny_config.train.cuda_graph = "cosine", True
    with pytest.raises(ValueError, match="cannot follow train.lr_schedule=cosine"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unknown_schedule_names_the_valid_ones(tiny_config):
    from vaelens.config import resolve

    with pytest.raises(ValueError, match="constant.*cosine"):
        resolve("dsprites-bvae", None, ["train.lr_schedule=linear"])
