import copy

import pytest

from vaelens.config import resolve


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    """A real dSprites beta-VAE, shrunk: 128 images, a narrow conv64, a handful of steps."""
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    return resolve("dsprites-bvae", None, [
        "data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4",
        "train.steps=6", "train.batch_size=16", "train.checkpoint_every=2", "train.log_every=1",
        "train.eval_images=16", "train.progress=false", "train.device=cpu",
    ])


class _InterruptingData:
    """Wraps a data set so that asking for the batch of one step raises KeyboardInterrupt, as a killed run would."""

    def __init__(self, data, step_to_fail: int):
        self.data, self.step_to_fail = data, step_to_fail

    def __getattr__(self, name):
        if name == "data":  # looked up before __init__ ran, e.g. while a trainer copies the object
            raise AttributeError(name)
        return getattr(self.data, name)

    def to(self, device):
        self.data = self.data.to(device)
        return self

    def batch(self, step, batch_size, seed):
        if step == self.step_to_fail:
            raise KeyboardInterrupt
        return self.data.batch(step, batch_size, seed)


@pytest.fixture
def interrupt_at():
    """interrupt_at(patch, module, step): make `module`'s training loop die at `step` within `patch`
    (a monkeypatch context), so a test can resume the run it left behind."""

    def install(patch, module, step_to_fail: int) -> None:
        real_load = module.load_dataset
        patch.setattr(module, "load_dataset", lambda *a, **k: _InterruptingData(real_load(*a, **k), step_to_fail))

    return install


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
