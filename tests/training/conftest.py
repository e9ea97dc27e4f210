import copy

import pytest

from vaelens.config import resolve
from vaelens.training import TrainingHooks

TINY_OVERRIDES = [
    "data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4",
    "train.steps=6", "train.batch_size=16", "train.checkpoint_every=2", "train.log_every=1",
    "train.eval_images=16", "train.progress=false", "train.device=cpu",
]


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    """A real dSprites beta-VAE, shrunk: 128 images, a narrow conv64, a handful of steps."""
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    return resolve("dsprites-bvae", None, TINY_OVERRIDES)


def interrupted_at(done: int):
    """Hooks that kill the training loop (KeyboardInterrupt, as Ctrl-C or a killed process) once `done`
    steps have been taken and bookkept, so a test can resume the run it left behind."""

    def stop(steps_done: int) -> None:
        if steps_done == done:
            raise KeyboardInterrupt

    return TrainingHooks(on_step=stop)


@pytest.fixture
def interrupt_at():
    """interrupt_at(done) -> TrainingHooks that interrupt training after `done` steps."""
    return interrupted_at


@pytest.fixture
def members_of():
    """members_of(config, [(beta, seed), ...]): copies of `config` differing only in loss.beta and
    train.seed, as an ensemble's members do."""

    def make(config, betas_and_seeds):
        members = []
        for beta, seed in betas_and_seeds:
            member = copy.deepcopy(config)
            member.loss.beta, member.train.seed = float(beta), seed
            members.append(member)
        return members

    return make


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run of the tiny config, trained once per test module, for tests that only read it (or
    are refused before writing to it): its RunResult."""
    from vaelens import train

    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(root / "cache"))
        config = resolve("dsprites-bvae", None, TINY_OVERRIDES)
        yield train(config, root / "run")
