"""The vectorised ensemble trainer against separately trained runs, its run directories, resume and divergence."""

import copy
import json

import pytest
import torch

from vaelens import load_run, train
from vaelens.training.checkpoint import list_checkpoints, load_checkpoint
from vaelens.training.ensemble import EnsembleIncompatible, ensemble_key, train_ensemble

# vmap runs member k's convolutions and matmuls as grouped/batched kernels whose summation order
# differs from the single model's, so weights agree to float32 rounding (about 1e-7 relative per step)
# amplified by a few Adam steps, not bit for bit. 6 steps at lr 5e-4 move weights by ~3e-3; a wrong
# batch, noise draw, beta or Adam state moves them by that much, far above this tolerance.
WEIGHT_TOLERANCE = 2e-5
LOSS_RELATIVE_TOLERANCE = 1e-5


@pytest.fixture
def mlp_config(tiny_config):
    tiny_config.model.name = "mlp"
    return tiny_config


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[key] - b[key]).abs().max()) for key in a)


def test_ensemble_matches_separately_trained_runs(tiny_config, tmp_path, members_of):
    configs = members_of(tiny_config, [(1.0, 0), (4.0, 1), (2.0, 0)])
    results = train_ensemble(configs, [tmp_path / f"member{k}" for k in range(3)], progress=False, vectorise=True)
    looped = train_ensemble(configs, [tmp_path / f"looped{k}" for k in range(3)], progress=False, vectorise=False)
    for k, (config, result) in enumerate(zip(configs, results)):
        single = train(config, tmp_path / f"single{k}")
        assert result.summary["ensemble"] == {**result.summary["ensemble"], "models": 3, "vectorised": True}
        # Looping runs the single model's own kernels: only the stacked Adam step is shared.
        assert _max_difference(looped[k].model.state_dict(), single.model.state_dict()) < WEIGHT_TOLERANCE
        assert _max_difference(result.model.state_dict(), single.model.state_dict()) < WEIGHT_TOLERANCE
        assert result.summary["eval"]["loss"] == pytest.approx(single.summary["eval"]["loss"],
                                                               rel=LOSS_RELATIVE_TOLERANCE)
        ours = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        theirs = [json.loads(line) for line in (single.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in ours] == [r["step"] for r in theirs] == [1, 2, 3, 4, 5, 6]
        for mine, reference in zip(ours, theirs):
            assert mine.keys() == reference.keys()
            assert mine["loss"] == pytest.approx(reference["loss"], rel=LOSS_RELATIVE_TOLERANCE)
        assert set(result.summary) == set(single.summary) | {"ensemble"}
        assert result.summary["weighting_convention"] == "additive"
        assert result.summary["objective"]["beta"] == config.loss.beta
        # Each member's checkpoint holds its own Adam moments, as the single trainer's does.
        (mine, _), (reference, _) = (load_checkpoint(list_checkpoints(run.run_dir / "checkpoints")[-1])
                                     for run in (result, single))
        assert mine.keys() == reference.keys()
        moments = [key for key in mine if key.startswith("optimizer.adam.state")]
        assert moments
        for key in moments:  # gradient-scale numbers (pixel-summed losses): compare relative to their size
            scale = float(reference[key].abs().max()) + 1e-12
            assert float((mine[key] - reference[key]).abs().max()) / scale < 1e-4, key
        loaded = load_run(result.run_dir)
        assert loaded.step == 6 and loaded.summary["status"] == "finished"
        assert _max_difference(loaded.model.state_dict(), result.model.state_dict()) == 0.0
    # Different betas and seeds really train different models.
    assert _max_difference(results[0].model.state_dict(), results[1].model.state_dict()) > 1e-3


def test_interrupted_ensemble_resumes_to_the_uninterrupted_result(mlp_config, tmp_path,
                                                                  interrupt_at, members_of):
    configs = members_of(mlp_config, [(1.0, 0), (8.0, 3)])
    whole = train_ensemble(configs, [tmp_path / "whole0", tmp_path / "whole1"], progress=False)
    dirs = [tmp_path / "resumed0", tmp_path / "resumed1"]
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(configs, dirs, progress=False, hooks=interrupt_at(5))
    assert not (dirs[0] / "summary.json").exists()
    with pytest.raises(FileExistsError, match="resume=True"):
        train_ensemble(configs, dirs, progress=False)
    resumed = train_ensemble(configs, dirs, resume=True, progress=False)
    for a, b in zip(whole, resumed):
        assert b.summary["resumed_from"] == 4
        assert _max_difference(a.model.state_dict(), b.model.state_dict()) == 0.0
        steps = [json.loads(line)["step"] for line in (b.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert steps == [1, 2, 3, 4, 5, 6]
    # A member's directory is an ordinary run: the single trainer extends it.
    longer = copy.deepcopy(configs[1])
    longer.train.steps = 8
    extended = train(longer, dirs[1], resume=True)
    assert extended.summary["resumed_from"] == 6 and load_run(dirs[1]).step == 8


def test_members_a_checkpoint_apart_resume_from_the_common_one(mlp_config, tmp_path, members_of):
    configs = members_of(mlp_config, [(1.0, 0), (2.0, 1)])
    dirs = [tmp_path / "a", tmp_path / "b"]
    whole = train_ensemble(configs, dirs, progress=False)
    # As if interrupted between the two members' final checkpoints: b's newest is step 4, a's step 6.
    for path in (dirs[1] / "checkpoints").glob("step_000000006.*"):
        path.unlink()
    (dirs[0] / "summary.json").unlink()
    (dirs[1] / "summary.json").unlink()
    resumed = train_ensemble(configs, dirs, resume=True, progress=False)
    assert [r.summary["resumed_from"] for r in resumed] == [4, 4]
    for a, b in zip(whole, resumed):
        assert _max_difference(a.model.state_dict(), b.model.state_dict()) == 0.0


def test_incompatible_configs_are_refused_with_the_reason(mlp_config, tmp_path, members_of):
    a, b = members_of(mlp_config, [(1.0, 0), (2.0, 1)])
    assert ensemble_key(a) == ensemble_key(b)
    b.train.lr = 1e-3
    assert ensemble_key(a) != ensemble_key(b)
    with pytest.raises(EnsembleIncompatible, match=r"train\.lr: 0\.0005 \(config 0\) != 0\.001 \(config 1\)"):
        train_ensemble([a, b], [tmp_path / "a", tmp_path / "b"], progress=False)
    c = copy.deepcopy(a)
    c.loss.perceptual = "lpips-vgg"
    with pytest.raises(EnsembleIncompatible, match="pointwise objectives only.*loss.perceptual='lpips-vgg'"):
        train_ensemble([a, c], [tmp_path / "a", tmp_path / "c"], progress=False)
    with pytest.raises(ValueError, match="one directory per config"):
        train_ensemble([a, a], [tmp_path / "a"], progress=False)
    with pytest.raises(ValueError, match="same run directory twice"):
        train_ensemble([a, a], [tmp_path / "a", tmp_path / "a"], progress=False)
    assert not (tmp_path / "a").exists()


def test_a_diverging_member_is_recorded_and_the_others_go_on(mlp_config, tmp_path, members_of):
    # beta = 1e39 is a valid setting but overflows float32: member 1's loss is inf from step 0.
    configs = members_of(mlp_config, [(1.0, 0), (1e39, 1), (2.0, 2)])
    results = train_ensemble(configs, [tmp_path / f"m{k}" for k in range(3)], progress=False)
    diverged = results[1].summary
    assert diverged["status"] == "diverged" and diverged["step"] == 0
    assert "training diverged at step 0: loss=inf" in diverged["error"] and "train.lr" in diverged["error"]
    assert json.loads((tmp_path / "m1" / "summary.json").read_text())["status"] == "diverged"
    assert torch.isfinite(torch.cat([p.flatten() for p in results[1].model.parameters()])).all()
    survivors = train_ensemble([configs[0], configs[2]], [tmp_path / "s0", tmp_path / "s2"], progress=False)
    for result, reference in zip((results[0], results[2]), survivors):
        assert result.summary["status"] == "finished"
        assert _max_difference(result.model.state_dict(), reference.model.state_dict()) < WEIGHT_TOLERANCE


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ensemble_on_gpu_matches_separate_gpu_runs(tiny_config, tmp_path, members_of):
    # cuDNN may pick different algorithms (and TF32) for grouped and single convolutions, so the
    # tolerance is looser than on the CPU; a wrong batch or beta still moves the loss by far more.
    tiny_config.train.device = "cuda"
    configs = members_of(tiny_config, [(1.0, 0), (4.0, 1)])
    results = train_ensemble(configs, [tmp_path / "m0", tmp_path / "m1"], progress=False)
    for k, (config, result) in enumerate(zip(configs, results)):
        single = train(config, tmp_path / f"single{k}")
        assert result.summary["eval"]["loss"] == pytest.approx(single.summary["eval"]["loss"], rel=1e-3)
        assert _max_difference(result.model.state_dict(), single.model.state_dict()) < 1e-3


def test_looped_members_get_channels_last_weight_slices_and_matching_adam_state(tiny_config):
    from vaelens.losses import build_objective
    from vaelens.models import build_model
    from vaelens.training.stacked import EnsembleMember, StackedMembers

    torch.manual_seed(0)
    members, optimizers = [], []
    for _ in range(3):
        model = build_model(tiny_config.model, (1, 64, 64))
        objective = build_objective(tiny_config.loss, (1, 64, 64), model)
        members.append(EnsembleMember(model, objective))
        optimizers.append(torch.optim.Adam(list(model.parameters()) + objective.generator_parameters()))
    stack = StackedMembers(members, optimizers, vectorise=False, channels_last=True)
    name = "model.encoder_convs.2.weight"  # 8 -> 8 channels: its two layouts differ
    assert all(stack.params[name][k].is_contiguous(memory_format=torch.channels_last) for k in range(3))
    loss = stack.losses(torch.rand(3, 4, 1, 64, 64), torch.randn(3, 4, 4), torch.tensor([1.0, 2.0, 3.0]))["loss"]
    loss.sum().backward()
    stack.optimizer.step()
    weight = stack.params[name]
    assert stack.optimizer.state[weight]["exp_avg"].stride() == weight.stride()
    kept = stack.params[name].detach()[[2, 0]].clone()
    stack.keep([2, 0])
    weight = stack.params[name]
    assert torch.equal(weight, kept) and weight[0].is_contiguous(memory_format=torch.channels_last)
    assert stack.optimizer.state[weight]["exp_avg_sq"].stride() == weight.stride()
    stack.write_back(0, members[2], optimizers[2])
    assert torch.equal(dict(members[2].named_parameters())[name], kept[0])


def test_a_fixed_ldm_logvar_stays_at_its_initial_value_in_every_trainer(mlp_config, tmp_path, members_of):
    """loss.logvar_learned=false (latent-diffusion's own training): s never moves, in a single run or an
    ensemble member, while a learned s does; the default keeps the run id it had before the option existed."""
    from vaelens.config import config_hash

    mlp_config.loss.likelihood, mlp_config.loss.convention, mlp_config.loss.logvar_init = "laplace", "ldm", 0.5
    before = config_hash(mlp_config)
    learned = train(copy.deepcopy(mlp_config), tmp_path / "learned")
    assert float(learned.objective.ldm_logvar) != 0.5
    mlp_config.loss.logvar_learned = False
    assert config_hash(mlp_config) != before
    single = train(copy.deepcopy(mlp_config), tmp_path / "single")
    members = train_ensemble(members_of(mlp_config, [(1.0, 0), (4.0, 1)]), [tmp_path / "m0", tmp_path / "m1"],
                             progress=False)
    for result in (single, *members):
        assert float(result.objective.ldm_logvar) == 0.5
        assert result.summary["objective"]["logvar"] == "fixed"
        assert load_run(result.run_dir).objective.ldm_logvar.item() == 0.5
