"""The GPU fast path: CUDA-graph step runner, device-side divergence record, channels-last, and their errors.

A CUDA graph cannot be captured on a CPU, so the CPU tests run the graphed path's bookkeeping (inputs
copied into fixed buffers, divergence read from the device record at log and checkpoint steps) with
the step called eagerly; the tests marked gpu capture for real and compare with the eager path.
"""

import copy
import json

import pytest
import torch

from vaelens import config as config_module
from vaelens import train
from vaelens.training import TrainingDiverged, TrainingHooks
from vaelens.training.checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint
from vaelens.training.ensemble import train_ensemble
from vaelens.training.graphed import DivergenceWatch, StepRunner

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _CopyingEagerRunner(StepRunner):
    """A StepRunner that keeps capture's input buffers (copied into, never rebound) but runs eagerly."""

    def __init__(self, step, capture):
        super().__init__(step, capture=False)

    def feed(self, **tensors):
        for name, value in tensors.items():
            if name in self.inputs:
                self.inputs[name].copy_(value)
            else:
                self.inputs[name] = value.clone()


@pytest.fixture
def graph_path_on_cpu():
    """Hooks that let train.cuda_graph=true run on the CPU with everything but the capture itself."""
    return TrainingHooks(step_runner=_CopyingEagerRunner)


def _weights(result) -> dict:
    return {key: value.detach().cpu() for key, value in result.model.state_dict().items()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[key].float() - b[key].float()).abs().max()) for key in a)


def test_divergence_watch_keeps_the_first_bad_step_per_member():
    watch = DivergenceWatch(start_step=10, device=torch.device("cpu"))
    for loss in (1.0, 2.0, float("nan"), float("inf"), 3.0):
        watch.update(torch.tensor(loss))
    assert watch.first_bad_step() == 12
    members = DivergenceWatch(start_step=0, device=torch.device("cpu"), members=3)
    members.update(torch.tensor([1.0, float("inf"), 1.0]))
    members.update(torch.tensor([1.0, float("nan"), float("nan")]))
    assert members.first_bad_step() == [None, 0, 1]
    assert DivergenceWatch(0, torch.device("cpu")).first_bad_step() is None


def test_step_runner_without_capture_calls_the_step_on_the_fed_tensors():
    runner = StepRunner(lambda: {"y": runner.inputs["x"] * 2}, capture=False)
    x = torch.arange(3.0)
    runner.feed(x=x)
    assert runner.inputs["x"] is x and torch.equal(runner()["y"], x * 2) and not runner.captured


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_graph_without_cuda_is_refused_clearly(tiny_config, tmp_path):
    with pytest.raises(RuntimeError, match="needs CUDA"):
        StepRunner(dict, capture=True)
    tiny_config.train.cuda_graph = True
    with pytest.raises(ValueError, match="train.cuda_graph=true needs a CUDA device.*train.cuda_graph=false"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cuda_graph_refuses_an_adversarial_objective(tiny_config, tmp_path):
    tiny_config.train.cuda_graph = True
    tiny_config.loss.disc_weight = 0.5
    with pytest.raises(ValueError, match=r"cannot capture an adversarial objective \(loss.disc_weight=0.5\)"):
        train(tiny_config, tmp_path / "run")


def test_execution_only_settings_keep_the_run_id_and_may_change_on_resume(tiny_config, tmp_path):
    fast = copy.deepcopy(tiny_config)
    fast.train.cuda_graph, fast.train.channels_last = True, False
    assert config_module.config_hash(fast) == config_module.config_hash(tiny_config)
    tiny_config.train.steps = 2
    train(tiny_config, tmp_path / "run")
    tiny_config.train.steps, tiny_config.train.channels_last = 4, False
    assert train(tiny_config, tmp_path / "run", resume=True).summary["resumed_from"] == 2


def test_channels_last_trains_the_same_model(tiny_config, tmp_path):
    assert tiny_config.train.channels_last  # the default
    channels_last = train(tiny_config, tmp_path / "channels_last")
    tiny_config.train.channels_last = False
    plain = train(tiny_config, tmp_path / "plain")
    # NHWC convolutions sum in another order: equal up to float32 rounding over 6 Adam steps.
    assert _max_difference(_weights(plain), _weights(channels_last)) < 1e-5


def test_restored_adam_state_takes_the_channels_last_layout_of_its_parameters(tmp_path):
    # Fused Adam (CUDA) refuses state whose strides differ from the parameter's; checkpoints are contiguous.
    def conv_and_adam():
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(2, 4, 3).to(memory_format=torch.channels_last)
        return conv, torch.optim.Adam(conv.parameters())

    conv, adam = conv_and_adam()
    conv(torch.rand(2, 2, 8, 8)).sum().backward()
    adam.step()
    save_checkpoint(tmp_path, 1, {"m": conv}, {"adam": adam}, {})
    fresh, fresh_adam = conv_and_adam()
    tensors, meta = load_checkpoint(list_checkpoints(tmp_path)[-1])
    restore(tensors, meta, {"m": fresh}, {"adam": fresh_adam})
    weight, fresh_weight = conv.weight, fresh.weight
    assert fresh_weight.stride() == weight.stride() != torch.empty(weight.shape).stride()
    for key in ("exp_avg", "exp_avg_sq"):
        assert fresh_adam.state[fresh_weight][key].stride() == fresh_weight.stride()
        assert torch.equal(fresh_adam.state[fresh_weight][key], adam.state[weight][key])


def test_graph_path_bookkeeping_trains_exactly_as_the_eager_path(tiny_config, tmp_path, graph_path_on_cpu):
    eager = train(tiny_config, tmp_path / "eager")
    tiny_config.train.cuda_graph = True
    graphed = train(tiny_config, tmp_path / "graphed", hooks=graph_path_on_cpu)
    assert _max_difference(_weights(eager), _weights(graphed)) == 0.0
    eager_log = (tmp_path / "eager" / "metrics.jsonl").read_text().splitlines()
    graphed_log = (tmp_path / "graphed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["loss"] for line in eager_log] == [json.loads(line)["loss"] for line in graphed_log]


def test_graph_path_finds_divergence_at_the_next_check_and_writes_no_bad_checkpoint(
        tiny_config, tmp_path, monkeypatch, graph_path_on_cpu):
    from vaelens.losses.objective import VAEObjective

    real_forward = VAEObjective.forward

    def poisoned(self, x, output, mu, logvar, step=None, beta=None):
        terms = real_forward(self, x, output, mu, logvar, step, beta)
        if step == 3:  # training step 3: the device records it, the host reads it at step 4 (step None: evaluation)
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(VAEObjective, "forward", poisoned)
    tiny_config.train.cuda_graph = True
    tiny_config.train.log_every = 5
    with pytest.raises(TrainingDiverged, match=r"diverged at step 3 \(a non-finite loss, found at step 4.*"
                                               r"step_000000002 is kept"):
        train(tiny_config, tmp_path / "run", hooks=graph_path_on_cpu)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["step"] == 3
    assert [path.stem for path in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_000000002"]


def test_graphed_ensemble_drops_a_diverged_member_at_the_next_check(tiny_config, tmp_path, graph_path_on_cpu,
                                                                  members_of):
    tiny_config.model.name = "mlp"
    tiny_config.train.cuda_graph = True
    configs = members_of(tiny_config, [(1.0, 0), (1e39, 1), (2.0, 2)])  # 1e39 overflows float32: inf loss
    results = train_ensemble(configs, [tmp_path / f"m{k}" for k in range(3)], progress=False,
                             hooks=graph_path_on_cpu)
    diverged = results[1].summary
    assert diverged["status"] == "diverged" and diverged["step"] == 0
    assert "found at step 1" in diverged["error"]
    assert torch.isfinite(torch.cat([p.flatten() for p in results[1].model.parameters()])).all()
    for config in configs:
        config.train.cuda_graph = False
    survivors = train_ensemble([configs[0], configs[2]], [tmp_path / "s0", tmp_path / "s2"], progress=False)
    for result, reference in zip((results[0], results[2]), survivors):
        assert result.summary["status"] == "finished"
        assert _max_difference(_weights(result), _weights(reference)) < 2e-5


@pytest.mark.gpu
@needs_cuda
def test_captured_step_matches_the_eager_step_on_gpu(tiny_config, tmp_path):
    # fp32 on both paths; the graph replays the eager kernels, so only cuDNN's algorithm choice and
    # TF32 can differ: agreement to ~1e-3 after 6 Adam steps (a wrong batch or noise moves weights ~3e-3).
    tiny_config.train.device = "cuda"
    tiny_config.train.steps = 8
    eager = train(tiny_config, tmp_path / "eager")
    tiny_config.train.cuda_graph = True
    graphed = train(tiny_config, tmp_path / "graphed")
    assert graphed.summary["eval"]["loss"] == pytest.approx(eager.summary["eval"]["loss"], rel=1e-3)
    assert _max_difference(_weights(eager), _weights(graphed)) < 1e-3


@pytest.mark.gpu
@needs_cuda
def test_bf16_channels_last_graph_trains_and_resumes_on_gpu(tiny_config, tmp_path, interrupt_at):
    tiny_config.train.device = "cuda"
    tiny_config.train.steps, tiny_config.train.lr = 40, 1e-3
    tiny_config.train.checkpoint_every, tiny_config.train.log_every = 10, 10
    tiny_config.train.bf16 = tiny_config.train.channels_last = tiny_config.train.cuda_graph = True
    whole = train(tiny_config, tmp_path / "whole")
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss"] < 0.7 * records[0]["loss"]
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "resumed", hooks=interrupt_at(25))
    resumed = train(tiny_config, tmp_path / "resumed", resume=True)
    assert resumed.summary["resumed_from"] == 20
    assert resumed.summary["eval"]["loss"] == pytest.approx(whole.summary["eval"]["loss"], rel=2e-2)


@pytest.mark.gpu
@needs_cuda
def test_graphed_ensemble_matches_separate_graphed_runs_on_gpu(tiny_config, tmp_path, members_of):
    tiny_config.train.device = "cuda"
    tiny_config.train.cuda_graph = True
    configs = members_of(tiny_config, [(1.0, 0), (4.0, 1)])
    results = train_ensemble(configs, [tmp_path / "m0", tmp_path / "m1"], progress=False)
    for k, (config, result) in enumerate(zip(configs, results)):
        single = train(config, tmp_path / f"single{k}")
        assert result.summary["eval"]["loss"] == pytest.approx(single.summary["eval"]["loss"], rel=1e-3)
        assert _max_difference(_weights(result), _weights(single)) < 1e-3


@pytest.mark.gpu
@needs_cuda
def test_bf16_perceptual_step_is_captured_on_gpu(tiny_config, tmp_path):
    # LPIPS (random VGG backbone: no download) under bf16 autocast inside the captured step.
    tiny_config.train.device = "cuda"
    tiny_config.train.steps = 8
    tiny_config.loss.perceptual, tiny_config.loss.lpips_random_backbone = "lpips-vgg", True
    eager = train(tiny_config, tmp_path / "eager")
    tiny_config.train.bf16 = tiny_config.train.cuda_graph = True
    graphed = train(tiny_config, tmp_path / "graphed")
    assert graphed.summary["status"] == "finished"
    records = [json.loads(line) for line in (tmp_path / "graphed" / "metrics.jsonl").read_text().splitlines()]
    assert all(record["perceptual"] > 0 for record in records)
    assert graphed.summary["eval"]["loss"] == pytest.approx(eager.summary["eval"]["loss"], rel=5e-2)
