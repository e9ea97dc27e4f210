"""Fixtures shared by the test packages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import torch

from vaelens import train
from vaelens.config import resolve


def _random_images(n=3, c=1, size=32, seed=0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=generator, dtype=dtype)


@pytest.fixture
def make_images():
    """make_images(n=3, c=1, size=32, seed=0, dtype=float64): seeded uniform images in [0, 1], (n, c, size, size)."""
    return _random_images


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """Point the torch hub cache at an empty directory, as on a machine without downloaded backbones."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    return tmp_path


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run of the tiny config, trained once per test module, for tests that only read it (or
    are refused before writing to it): its RunResult."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(root / "cache"))
        config = resolve("dsprites-bvae", None, TINY_OVERRIDES)
        yield train(config, root / "run")


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vaelens.locks import folder_lock
    with folder_lock(sys.argv[1], "a test writer"):
        Path(sys.argv[2]).write_text("held")
        time.sleep(120)
""")


@pytest.fixture
def held_elsewhere(tmp_path):
    """held_elsewhere(folder): another process takes `folder`'s lock and holds it; returns the process."""
    processes = []

    def hold(folder):
        ready = tmp_path / f"ready-{len(processes)}"
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(ready)])
        processes.append(process)
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.05)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()
