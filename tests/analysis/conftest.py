import pytest

from vaelens import train
from vaelens.config import resolve


@pytest.fixture(scope="package")
def trained_run(tmp_path_factory):
    """A finished tiny dSprites run (128 images, narrow conv64, 6 steps) shared by the analysis tests."""
    root = tmp_path_factory.mktemp("analysis")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(root / "cache"))
        config = resolve("dsprites-bvae", None, [
            "data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4",
            "train.steps=6", "train.batch_size=16", "train.eval_images=16", "train.progress=false",
            "train.device=cpu",
        ])
        train(config, root / "run")
        yield root / "run"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
