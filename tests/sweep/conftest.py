import pytest

TINY_OVERRIDES = {
    "data.subset": 64, "model.channels": 4, "model.hidden_dim": 16, "model.latent_dim": 2,
    "train.steps": 3, "train.batch_size": 8, "train.checkpoint_every": 1000, "train.log_every": 1,
    "train.eval_images": 8, "train.device": "cpu",
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Rendered data goes to a per-test cache (worker processes inherit the variable)."""
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_spec():
    """A sweep of 2 betas over a 64-image dSprites subset and a 4-channel conv64, 3 steps, no analysis."""
    return {"name": "test", "preset": "dsprites-bvae", "overrides": dict(TINY_OVERRIDES),
            "grid": {"loss.beta": [1.0, 4.0]}, "analyze": False}
