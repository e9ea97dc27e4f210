"""`vaelens compare` end to end: two tiny dSprites runs (trained here) and a tiny AutoencoderKL of one channel,
analysed on the same seeded images into one page and one CSV, and resumed after an interruption."""

import csv
import json
import shutil

import pytest

from vaelens import train
from vaelens.cli import main
from vaelens.config import resolve

pytest.importorskip("diffusers")

TINY = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "train.batch_size=16", "train.eval_images=16",
        "train.progress=false", "train.device=cpu"]
IMAGES = 32
RUN_OPTIONS = ["--images", str(IMAGES), "--no-disentanglement", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, save_autoencoder):
    """Two finished runs (4 units at beta 4, 6 units at beta 0.5) and a one-channel AutoencoderKL folder (vae)."""
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(root / "cache"))
        for name, extra in (("narrow", ["model.latent_dim=4", "loss.beta=4", "train.steps=6"]),
                            ("wide", ["model.latent_dim=6", "loss.beta=0.5", "train.steps=8"])):
            train(resolve("dsprites-bvae", None, TINY + extra), root / name)
        save_autoencoder(root / "vae", in_channels=1)
        yield root


@pytest.fixture(scope="module")
def compared(models):
    """The comparison of the three models, written by the command line into models/out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(models / "cache"))
        arguments = [str(models / "narrow"), str(models / "wide"), f"diffusers:{models / 'vae'}"]
        assert main(["compare", *arguments, "--out", str(models / "out"), *RUN_OPTIONS]) == 0
    return models / "out"


def _rows(out) -> list[dict]:
    with open(out / "compare.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_every_model_is_analysed_on_the_same_images(compared):
    analyses = [json.loads((compared / label / "analysis.json").read_text()) for label in ("narrow", "wide", "vae")]
    assert {analysis["num_images"] for analysis in analyses} == {IMAGES}
    assert len({json.dumps(analysis["reconstructions.indices"]) for analysis in analyses}) == 1
    assert {(analysis["data.name"], analysis["data.split"], analysis["seed"]) for analysis in analyses} == {
        ("dsprites", "test", 0)}
    assert analyses[2]["model.model"] == "diffusers AutoencoderKL" and analyses[2]["latent_shape"] == [4, 8, 8]
    for label in ("narrow", "wide", "vae"):
        assert (compared / label / "analysis" / "variance_profile.png").is_file()


@pytest.mark.slow
def test_the_csv_holds_one_row_per_model_and_every_scalar_key(compared):
    rows = _rows(compared)
    assert [row["label"] for row in rows] == ["narrow", "wide", "vae"]
    assert [row["kind"] for row in rows] == ["run", "run", "diffusers"]
    analysis = json.loads((compared / "vae" / "analysis.json").read_text())
    scalar = {key for key, value in analysis.items() if not isinstance(value, (list, dict))}
    assert scalar <= set(rows[2]) and "posterior_variance.profile" not in rows[2]
    assert float(rows[2]["distortion.effnet_lite0"]) == pytest.approx(analysis["distortion.effnet_lite0"])
    assert rows[2]["run.checkpoint_step"] == "" and rows[0]["run.checkpoint_step"] == "6"
    assert float(rows[1]["mutual_information_ceiling"]) == pytest.approx(float(rows[1]["log_num_images"]))


@pytest.mark.slow
def test_the_page_states_the_images_and_the_bounds(compared):
    page = (compared / "compare.html").read_text()
    assert f"computed on the same images: N = {IMAGES} images drawn at random (seed 0) from the test split of " \
           "dsprites" in page
    for text in ("rate R (nats)", "ceiling of I(x; z): log N (nats)", "I(x; z) saturated", "at most min(d, N - 1)",
                 "IsoScore of mu (active units)", "normalised entropy of E sigma^2", "EfficientNet-Lite0 distance",
                 "SSIM", "PSNR (dB)", "Without the probe.", "Posterior-variance profiles", "Covariance spectra",
                 "4 x 8 x 8 (256 units)", "rank / d"):
        assert text in page, text
    assert " of 256" in page and " of 4" in page and " of 6" in page  # active units of d
    assert page.count("<img ") == 2 + 3  # the two overlaid figures and each model's reconstructions
    assert "src='http" not in page and "href=" not in page


@pytest.mark.slow
def test_page_renders_in_headless_chromium(compared, browser, page_images):
    browser.get((compared / "compare.html").as_uri())
    assert browser.title == "vaelens compare: narrow, wide, vae"
    states = page_images(browser)
    assert [state["alt"] for state in states] == ["Variance profiles", "Covariance spectra", "narrow", "wide", "vae"]
    assert all(state["complete"] and state["natural"] > 0 and state["width"] > 0 and state["height"] > 0
               for state in states)
    header = browser.execute_script("""
        const heading = Array.from(document.querySelectorAll('h2')).find(h => h.textContent === 'Key numbers');
        let node = heading.nextElementSibling;
        while (node && !node.querySelector('table')) node = node.nextElementSibling;
        const table = node.querySelector('table');
        return [Array.from(table.tHead.rows[0].cells, cell => cell.textContent), table.tBodies[0].rows.length,
                table.getBoundingClientRect().height];""")
    assert header[0] == ["quantity", "bound / reading", "narrow", "wide", "vae"]
    assert header[1] >= 14 and header[2] > 0
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"the page logged errors: {errors}"


@pytest.mark.slow
def test_an_interrupted_comparison_resumes(models, compared, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAELENS_CACHE", str(models / "cache"))
    out = shutil.copytree(compared, tmp_path / "out")
    (out / "wide" / "analysis.json").unlink()  # as if stopped while the second model was analysed
    kept = (out / "narrow" / "analysis.json").stat().st_mtime_ns
    arguments = [str(models / "narrow"), str(models / "wide"), f"diffusers:{models / 'vae'}"]
    assert main(["compare", *arguments, "--out", str(out), *RUN_OPTIONS]) == 0
    printed = capsys.readouterr().out
    assert "narrow: reused" in printed and "vae: reused" in printed and "wide: analysed" in printed
    assert (out / "narrow" / "analysis.json").stat().st_mtime_ns == kept
    assert main(["compare", *arguments, "--out", str(out), *RUN_OPTIONS, "--seed", "1"]) == 0
    assert "reused" not in capsys.readouterr().out  # another seed: other images, every model again
    assert {row["seed"] for row in _rows(out)} == {"1"}
