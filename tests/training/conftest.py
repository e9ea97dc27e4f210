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
