"""A run with a discriminator resumes exactly: its weights, BatchNorm statistics and Adam state are checkpointed."""

import json

import pytest
import torch

from vaelens import load_run, train
from vaelens.training.checkpoint import list_checkpoints, load_checkpoint


@pytest.fixture
def adversarial_config(tiny_config):
    tiny_config.loss.disc_weight = 0.5
    tiny_config.loss.disc_start = 1
    tiny_config.loss.disc_channels = 4
    tiny_config.loss.disc_layers = 2
    return tiny_config


def test_resume_with_discriminator_equals_uninterrupted_run(adversarial_config, tmp_path,
                                                            interrupt_at):
    whole = train(adversarial_config, tmp_path / "whole")
    tensors, meta = load_checkpoint(list_checkpoints(tmp_path / "whole" / "checkpoints")[-1])
    discriminator_keys = [k for k in tensors if k.startswith("objective.adversarial.discriminator.")]
    assert any(k.endswith("running_mean") for k in discriminator_keys)
    assert len(discriminator_keys) == len(whole.objective.adversarial.discriminator.state_dict())
    assert any(k.startswith("optimizer.discriminator.state.") for k in tensors)
    assert meta["optimizers"]["discriminator"]["param_groups"][0]["betas"] == [0.5, 0.9]
    assert meta["objective"]["adversarial"]["disc_start"] == 1
    loaded = load_run(tmp_path / "whole").objective.adversarial.discriminator.state_dict()
    assert all(torch.equal(value, whole.objective.adversarial.discriminator.state_dict()[key])
               for key, value in loaded.items())

    with pytest.raises(KeyboardInterrupt):
        train(adversarial_config, tmp_path / "resumed", hooks=interrupt_at(5))
    resumed = train(adversarial_config, tmp_path / "resumed", resume=True)
    assert resumed.summary["resumed_from"] == 4
    for module in ("model", "objective"):
        expected, found = getattr(whole, module).state_dict(), getattr(resumed, module).state_dict()
        assert expected.keys() == found.keys()
        for name in expected:
            assert torch.equal(expected[name], found[name]), f"{module}.{name}"
    whole_state = whole.objective.adversarial.optimizer.state_dict()["state"]
    resumed_state = resumed.objective.adversarial.optimizer.state_dict()["state"]
    for index in whole_state:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(whole_state[index][key], resumed_state[index][key]), (index, key)
    records = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    # Step 1 is index 0: before disc_start, so nothing adversarial happens; from index 1 on both parts log.
    assert records[0]["adversarial_weight"] == 0.0 and "discriminator_loss" not in records[0]
    assert all({"adversarial_weight", "adversarial_generator_loss", "discriminator_loss", "pixel"} <= set(r)
               for r in records[1:])
