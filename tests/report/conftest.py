"""Runs for the report tests: records constructed with chosen metrics (`make_run`), and a tiny real sweep
directory, built without the sweep package: 2 losses x 2 seeds at one beta; and a headless Chromium (`browser`,
`page_images`) for the pages' browser tests; a tiny AutoencoderKL (`save_autoencoder`).

The real runs are trained with vaelens.training.train and analysed with vaelens.analysis, then indexed
in a sweep.json of the layout `vaelens sweep` writes (see vaelens.training.sweepdir).
"""

import os
import shutil
from pathlib import Path

import pytest

from vaelens.config import from_dict, resolve, save_yaml
from vaelens.io import atomic_write_json
from vaelens.training.sweepdir import RunRecord


def _make_run(family: str, seed: int, beta: float, convention: str = "additive", dataset: str = "dsprites",
              status: str = "finished", **metrics) -> RunRecord:
    """A finished, analysed run record of a loss family with default metrics, `metrics` (analysis.json keys)
    overriding them."""
    loss = {"beta": beta, "convention": convention, "likelihood": "bernoulli",
            "perceptual": "features:dsprites-supervised" if family in ("+perceptual", "+both") else None,
            "disc_weight": 0.5 if family in ("+adversarial", "+both") else 0.0}
    config = {"data": {"name": dataset, "image_size": 64, "subset": 128}, "model": {"name": "conv64"},
              "loss": loss, "train": {"seed": seed, "steps": 10}}
    analysis = {"rate": 10.0, "mutual_information": 4.0, "geometry_active.isoscore": 0.5,
                "geometry_active.participation_ratio": 3.0, "posterior_variance.normalized_entropy": 0.8, **metrics}
    return RunRecord(f"{family}-{convention}-{beta}-{seed}", Path("/nonexistent"), {}, status, None, from_dict(config),
                     {"weighting_convention": convention, "data": {"image_shape": [1, 64, 64]}}, analysis)


@pytest.fixture
def make_run():
    """The constructor of run records with chosen metrics (see _make_run)."""
    return _make_run


TINY = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4",
        "train.steps=6", "train.batch_size=16", "train.checkpoint_every=6", "train.log_every=4",
        "train.eval_images=16", "train.progress=false", "train.device=cpu", "loss.beta=2.0"]
# A random-backbone LPIPS stands in for a neural term: pretrained backbones are absent offline.
PERCEPTUAL = ["loss.perceptual=lpips-squeeze", "loss.lpips_random_backbone=true", "loss.perceptual_weight=100"]


def write_tiny_sweep(sweep_dir: Path, runs: list[tuple[str, list[str]]], failed: str | None = None) -> Path:
    """Train + analyse each (run_id, overrides) into sweep_dir/runs/<id>; index them in sweep.json."""
    from vaelens.analysis import analyze, write_analysis
    from vaelens.data import load_dataset
    from vaelens.training import train

    entries, test_split = [], None
    for run_id, overrides in runs:
        config = resolve("dsprites-bvae", None, TINY + overrides)
        result = train(config, sweep_dir / "runs" / run_id)
        data = test_split = test_split or load_dataset(config.data, split="test")  # all runs share data settings
        results = analyze(result.model, data, objective=result.objective, max_images=64, distortion_images=32,
                          disentanglement=False, progress=False)
        write_analysis(results, result.run_dir, result.model, result.objective, data)
        entries.append({"id": run_id, "dir": f"runs/{run_id}", "status": "finished", "error": None,
                        "seconds": 1.0, "axes": dict(o.split("=", 1) for o in overrides)})
    if failed:
        config = resolve("dsprites-bvae", None, TINY)
        save_yaml(config, sweep_dir / "runs" / failed / "config.yaml")
        entries.append({"id": failed, "dir": f"runs/{failed}", "status": "failed", "seconds": 0.1,
                        "error": "training diverged at step 3", "axes": {}})
    atomic_write_json(sweep_dir / "sweep.json", {"spec": {"preset": "dsprites-bvae"}, "runs": entries})
    return sweep_dir


def _save_autoencoder(folder: Path, in_channels: int) -> Path:
    """Save a randomly initialised AutoencoderKL into `folder`: four blocks (downsampling 8: 4 x 8 x 8 latents of
    64-pixel images) of 8 channels."""
    import torch

    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    diffusers.AutoencoderKL(
        in_channels=in_channels, out_channels=in_channels, latent_channels=4, layers_per_block=1, norm_num_groups=4,
        block_out_channels=(8, 8, 8, 8), sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def save_autoencoder():
    """save_autoencoder(folder, in_channels): a tiny random AutoencoderKL saved as a diffusers folder."""
    return _save_autoencoder


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """pointwise and +perceptual (additive), seeds 0 and 1, beta 2, plus one failed run."""
    root = tmp_path_factory.mktemp("sweep")
    previous = os.environ.get("VAELENS_CACHE")
    os.environ["VAELENS_CACHE"] = str(root / "cache")
    try:
        runs = [(f"{name}-s{seed}", [f"train.seed={seed}", *extra])
                for name, extra in (("pointwise", []), ("perceptual", PERCEPTUAL)) for seed in (0, 1)]
        yield write_tiny_sweep(root / "tiny", runs, failed="broken")
    finally:
        if previous is None:
            os.environ.pop("VAELENS_CACHE", None)
        else:
            os.environ["VAELENS_CACHE"] = previous


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REQUIRE_BROWSER = os.environ.get("VAELENS_REQUIRE_BROWSER") == "1"
"""Set by .ci/run: a missing browser then fails the test instead of skipping it."""
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1200,2400")
"""Offline headless Chromium: without the networking flags it waits on refused connections at start."""

IMAGE_STATES = """
return Array.from(document.images, image => {
    const box = image.getBoundingClientRect();
    return {alt: image.alt, complete: image.complete, natural: image.naturalWidth, width: box.width,
            height: box.height};
});"""
DECODE_ALL = """
const done = arguments[arguments.length - 1];
Promise.all(Array.from(document.images, image => image.decode().then(() => null, () => image.alt)))
    .then(failures => done(failures.filter(alt => alt !== null)));"""


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium driven by the system's chromedriver; skipped (or failed, when
    VAELENS_REQUIRE_BROWSER=1) where either, or the selenium package, is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER),
                                        ("the selenium package", webdriver)) if not found]
    if missing:
        advice = ("missing " + ", ".join(missing) + "; Debian: apt-get install chromium chromium-driver, "
                  "and pip install -e '.[test]'")
        if REQUIRE_BROWSER:
            pytest.fail(f"VAELENS_REQUIRE_BROWSER=1 but the browser test cannot run: {advice}")
        pytest.skip(advice)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from trying to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page_images():
    """page_images(driver): the states of every image of the loaded page (alt, complete, natural width, laid-out
    width and height), after asserting that every one decodes."""
    def states(driver) -> list[dict]:
        assert driver.execute_async_script(DECODE_ALL) == [], "every image must decode"
        return driver.execute_script(IMAGE_STATES)
    return states
