import copy

import pytest

from vaelens.training import TrainingHooks


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
