"""The report of a tiny real sweep: files written, every figure embedded and decodable, Chromium renders it."""

import base64
import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from PIL import Image

from vaelens.cli import main
from vaelens.report import build_report, load_sweep


class _References(HTMLParser):
    """Every src/href attribute of a page, and the tags it uses."""

    def __init__(self):
        super().__init__()
        self.references: list[tuple[str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.references += [(tag, value) for name, value in attrs if name in ("src", "href") and value]


@pytest.fixture(scope="module")
def report(tiny_sweep):
    return build_report(tiny_sweep, progress=False)


def test_report_writes_csv_claims_and_page(report, tiny_sweep):
    assert report == tiny_sweep / "report.html"
    rows = list(csv.DictReader((tiny_sweep / "results.csv").open()))
    assert [row["run_id"] for row in rows] == ["pointwise-s0", "pointwise-s1", "perceptual-s0", "perceptual-s1",
                                               "broken"]
    finished = rows[0]
    assert finished["convention"] == "additive" and finished["loss_family"] == "pointwise"
    assert float(finished["beta"]) == 2.0 and finished["seed"] == "0"
    for column in ("rate", "mutual_information", "active_units", "isoscore_active", "variance_entropy",
                   "distortion.mse", "distortion.psnr", "distortion.ssim"):
        assert finished[column] != "", column
    assert rows[2]["loss_family"] == "+perceptual"
    assert rows[4]["status"] == "failed" and rows[4]["rate"] == "" and "diverged" in rows[4]["error"]
    claims = json.loads((tiny_sweep / "claims.json").read_text())
    pooled = [r for r in claims["results"] if r["beta"] == "all"]
    assert {(r["claim"], r["neural_family"], r["convention"], r["n_pairs"]) for r in pooled} == {
        ("C1", "+perceptual", "additive", 2), ("C2", "+perceptual", "additive", 2),
        ("C3", "+perceptual", "additive", 2)}


def test_every_figure_is_embedded_and_decodes(report):
    page = report.read_text()
    parser = _References()
    parser.feed(page)
    images = [value for tag, value in parser.references if tag == "img"]
    # 5 sweep figures for the one data set, 4 reconstruction grids, 2 traversals (one per loss family)
    assert len(images) == 11
    assert all(value.startswith("data:image/png;base64,") for value in images)
    for value in images:
        with Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1]))) as image:
            image.verify()
    external = [value for _, value in parser.references if not value.startswith("data:")]
    assert external == [], f"the page must be self-contained, found references {external}"
    assert "link" not in parser.tags and "script" not in parser.tags
    assert "training diverged at step 3" in page
    for heading in ("Claims", "Rate-distortion", "Information vs beta", "Posterior-variance profiles",
                    "Covariance spectra of mu", "Reconstructions", "Latent traversals"):
        assert f"<h2>{heading}</h2>" in page


def test_cli_report_rebuilds_the_page(tiny_sweep, capsys):
    assert main(["report", str(tiny_sweep), "--no-progress", "--no-traversals"]) == 0
    output = capsys.readouterr().out
    assert str(tiny_sweep / "report.html") in output and "C1" in output


def test_cli_report_on_a_folder_without_sweep_json_says_what_to_give(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no sweep.json" in capsys.readouterr().err


def test_load_sweep_names_a_malformed_index(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [{"id": "a"}]}))
    with pytest.raises(ValueError, match="run #0 lacks dir, status"):
        load_sweep(tmp_path)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_page_renders_in_headless_chromium(report, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert len(re.findall(r"<img ", dom)) == report.read_text().count("<img ") >= 9
    assert "<h2>Claims</h2>" in dom and re.search(r"supported|contradicted|inconclusive", dom)
    screenshot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={screenshot}", "--window-size=1200,2400", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50, "the screenshot is blank: the page did not render"
