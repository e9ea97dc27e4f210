"""The report of a tiny real sweep: files written, every figure embedded and decodable, Chromium renders it."""

import base64
import csv
import io
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from PIL import Image

from vaelens.cli import main
from vaelens.report import build_report, evaluate_claims
from vaelens.report.claims_content import claims_section
from vaelens.report.content import mechanism_section, runs_section, training_section
from vaelens.report.figures import matched_rate_section
from vaelens.report.render_html import render_page
from vaelens.training.sweepdir import SweepDirectory


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
    return build_report(tiny_sweep, progress=False).page


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
    assert {(r["claim"], r["comparison"], r["neural_family"], r["convention"], r["n_pairs"]) for r in pooled} == {
        ("C1", "matched_beta", "+perceptual", "additive", 2), ("C2", "matched_beta", "+perceptual", "additive", 2),
        ("C2", "matched_beta", "+perceptual", "additive", 0), ("C3", "matched_beta", "+perceptual", "additive", 2),
        ("C1", "matched_distortion", "+perceptual", "additive", 0),
        ("C4", "matched_rate", "+perceptual", "additive", 0)}
    # the tiny models have under 2 active units, so the C2 endpoint (IsoScore of the active units, no fall-back to
    # all units) has no pair, and says so; the participation ratio (exploratory) falls back in both runs alike
    iso = next(r for r in pooled if r["metric"] == "isoscore_active" and r["comparison"] == "matched_beta")
    assert iso["verdict_basis"] == "mixed_views" and "geometry_active.isoscore" in iso["verdict_reason"]
    # one beta: no curve to compare along, said so rather than guessed
    assert {r["verdict_basis"] for r in pooled if r["comparison"] != "matched_beta"} == {"too_few_betas"}
    assert list(claims["multiplicity"]["families"]) == ["primary", "secondary", "exploratory"]


def test_every_figure_is_embedded_and_decodes(report):
    page = report.read_text()
    parser = _References()
    parser.feed(page)
    images = [value for tag, value in parser.references if tag == "img"]
    # 5 sweep figures and the loss curves for the one data set, 4 reconstruction grids, 2 traversals (one
    # per loss family)
    assert len(images) == 12
    kinds = [value.split(";", 1)[0] for value in images]
    assert kinds[:6] == ["data:image/png"] * 6 and set(kinds[6:]) <= {"data:image/png", "data:image/webp"}
    for value in images:
        with Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1]))) as image:
            image.load()
            assert min(image.size) > 0
    external = [value for _, value in parser.references if not value.startswith("data:")]
    assert external == [], f"the page must be self-contained, found references {external}"
    assert "link" not in parser.tags and "script" not in parser.tags
    assert "training diverged at step 3" in page
    for heading in ("Claims", "Rate-distortion", "Information vs beta", "Matched rate", "Posterior-variance profiles",
                    "Covariance spectra of mu", "Training", "Reconstructions", "Latent traversals"):
        assert f"<h2>{heading}</h2>" in page
    matched = page.split("<h2>Matched rate</h2>", 1)[1].split("<h2>", 1)[0]
    assert "dsprites-64 | +perceptual | additive: no matched comparison (fewer than 2 betas per curve)" in matched
    assert "<p class='multiplicity'><b>Design.</b> Declared by the default design" in page


def test_reconstructions_are_collapsed_per_loss_setting(report):
    page = report.read_text()
    reconstructions = page.split("<h2>Reconstructions</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.findall(r"<summary>([^<]*)</summary>", reconstructions) == [
        "dsprites-64 | pointwise | additive (2 runs)", "dsprites-64 | +perceptual | additive (2 runs)"]
    assert reconstructions.count("<details>") == 2 and reconstructions.count("<img ") == 4
    traversals = page.split("<h2>Latent traversals</h2>", 1)[1]
    assert "<details>" not in traversals, "one traversal per loss setting is shown, not collapsed"


def probed_runs(make_run, probe: bool = True) -> list:
    """pointwise and +perceptual at three betas and three seeds on one R-D curve, with the probe's keys."""
    runs = []
    for seed in range(3):
        for beta in (1.0, 2.0, 4.0):
            for family, shift in (("pointwise", 1.0), ("+perceptual", 1.5)):
                rate = 20.0 / (shift * beta) + 0.1 * seed
                analysis = {"rate": rate, "distortion.mse": 0.01 * shift * beta,
                            "geometry_active.isoscore": 0.9 - 0.02 * rate + 0.01 * seed}
                if probe:
                    curvature = [40.0 / (unit + shift) for unit in range(4)]
                    analysis.update({"probe.curvature_profile": curvature,
                                     "probe.predicted_profile": [1 / (1 + 2 / beta * c) for c in curvature],
                                     "probe.actual_profile": [1.1 / (1 + 2 / beta * c) for c in curvature],
                                     "probe.pearson_log": 0.9 + 0.01 * seed, "probe.curvature_spread": 0.8})
                runs.append(make_run(family, seed, beta, **analysis))
    runs[0].analysis = {key: value for key, value in runs[0].analysis.items() if not key.startswith("probe.")}
    runs[0].analysis["probe_skipped"] = "not requested (analysis option probe=false)"
    return runs


@pytest.fixture
def constructed_page(make_run, tmp_path):
    """report.html of constructed runs with curves over three betas and probe results (no run directories)."""
    runs = probed_runs(make_run)
    payload = evaluate_claims(runs)
    path = tmp_path / "report.html"
    path.write_text(render_page("constructed", [runs_section(runs), claims_section(payload),
                                                matched_rate_section(runs, payload), mechanism_section(runs)]))
    return path


def test_matched_rate_and_mechanism_sections_show_curves_probe_and_correlations(constructed_page):
    page = constructed_page.read_text()
    matched = page.split("<h2>Matched rate</h2>", 1)[1].split("<h2>", 1)[0]
    assert matched.count("<img ") == 1 and "dsprites-64 | +perceptual | additive" in matched
    mechanism = page.split("<h2>Mechanism</h2>", 1)[1]
    assert mechanism.count("<img ") == 1
    assert "1 run(s) without the probe: not requested (analysis option probe=false)" in mechanism
    table = mechanism.split("<table>", 1)[1]
    assert "<td>pointwise</td><td>additive</td><td>8</td>" in table  # the run without the probe is left out
    assert "<td>+perceptual</td><td>additive</td><td>9</td><td>0.91 +- 0.0087 (n=9)</td>" in table
    assert "<td>n/a</td>" in table  # profile_pearson_log: no run has it
    for value in re.findall(r"src='data:image/png;base64,([^']+)'", page):
        with Image.open(io.BytesIO(base64.b64decode(value))) as image:
            image.load()
            assert min(image.size) > 0
    claims = page.split("<h2>Claims</h2>", 1)[1]
    assert "<td>C4</td><td>matched_rate</td>" in claims and "rate in [" in claims


def test_mechanism_is_left_out_without_probe_results(make_run):
    section = mechanism_section(probed_runs(make_run, probe=False))
    assert section.figures == [] and section.tables == []
    assert section.notes == ["1 run(s) without the probe: not requested (analysis option probe=false)"]


def test_cli_report_rebuilds_the_page(tiny_sweep, tmp_path, capsys):
    sweep = shutil.copytree(tiny_sweep, tmp_path / "tiny")  # leaves the shared sweep's full report alone
    (sweep / "report.html").unlink(missing_ok=True)
    (sweep / "runs" / "pointwise-s1" / "images" / "reconstructions.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    assert main(["report", str(sweep), "--no-progress", "--no-traversals"]) == 0
    output = capsys.readouterr().out
    assert str(sweep / "report.html") in output and "C1" in output
    page = (sweep / "report.html").read_text()
    assert "<h2>Reconstructions</h2>" in page and page.count("<img ") == 6 + 3
    assert "pointwise-s1: no reconstructions (" in page and "is not a readable PNG" in page


def test_cli_report_on_a_folder_without_sweep_json_says_what_to_give(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no sweep.json" in capsys.readouterr().err


def test_load_sweep_names_a_malformed_index(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [{"id": "a"}]}))
    with pytest.raises(ValueError, match="run #0 lacks dir, status"):
        SweepDirectory(tmp_path).load()


def _copy_runs(source, target, copies: int):
    """A sweep of `copies` x the finished runs of `source` under new ids (weights left out: no traversals)."""
    runs = [run for run in json.loads((source / "sweep.json").read_text())["runs"] if run["status"] == "finished"]
    entries = []
    for copy in range(copies):
        for run in runs:
            run_id = f"{run['id']}-copy{copy}"
            shutil.copytree(source / run["dir"], target / "runs" / run_id, ignore=shutil.ignore_patterns("checkpoints"))
            entries.append({**run, "id": run_id, "dir": f"runs/{run_id}"})
    (target / "sweep.json").write_text(json.dumps({"spec": {}, "runs": entries}))
    return target


PER_RUN_BUDGET = 6_000
"""Bytes a finished run may add to report.html: its reconstruction grid in base64 and its label (2.3-4 KB
here; a real dSprites run ~5 KB, a natural-patch run ~23 KB: tests/report/test_images.py budgets those)."""
FIXED_BUDGET = 170_000
"""Bytes of one data set's page besides its runs: the five figures (~120 KB as palette PNGs, 290 KB as the
RGBA PNGs they replaced) and the text."""


def test_report_size_stays_within_a_per_run_budget(tiny_sweep, tmp_path):
    small = build_report(_copy_runs(tiny_sweep, tmp_path / "small", 1), traversals=False, progress=False).page
    large = build_report(_copy_runs(tiny_sweep, tmp_path / "large", 6), traversals=False, progress=False).page
    small_size, large_size = small.stat().st_size, large.stat().st_size
    per_run = (large_size - small_size) / (24 - 4)
    assert per_run <= PER_RUN_BUDGET, f"each run adds {per_run:.0f} bytes to the report"
    assert small_size <= FIXED_BUDGET + 4 * PER_RUN_BUDGET, f"a 4-run report takes {small_size} bytes"
    assert large.read_text().count("<img ") == 6 + 24


def test_page_renders_in_headless_chromium(report, browser, page_images):
    browser.get(report.as_uri())
    assert browser.title == f"vaelens report: {report.parent.name}"
    summaries = browser.execute_script("return Array.from(document.querySelectorAll('summary'), "
                                       "s => s.getBoundingClientRect().height)")
    assert len(summaries) == 2 and all(height > 0 for height in summaries), "the run groups' summaries show"
    browser.execute_script("document.querySelectorAll('details').forEach(group => { group.open = true; })")
    states = page_images(browser)
    assert len(states) == report.read_text().count("<img ") == 12
    for state in states:
        assert state["complete"] and state["natural"] > 0, f"{state['alt']} did not load"
        assert state["width"] > 0 and state["height"] > 0, f"{state['alt']} is laid out with no size"
    outcomes = _claims_column(browser, "outcome")
    assert outcomes, "the decided claims table is missing or empty"
    assert all(text in ("supported", "contradicted", "no effect", "inconclusive") and height > 0
               for text, height in outcomes)
    assert {text for text, _ in _claims_column(browser, "claim")} == {"C1", "C2", "C3", "C4"}
    design = browser.execute_script("const p = document.querySelector('p.multiplicity'); "
                                    "return p ? [p.textContent, p.getBoundingClientRect().height] : null")
    assert design and design[0].startswith("Design. Declared by the default design") and design[1] > 0
    assert "Primary setting: dsprites-64 additive +perceptual" in design[0]
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"the page logged errors: {errors}"


def _claims_column(browser, name: str) -> list | None:
    """[text, row height] of one column (by header) of the first claims table (the decided families), as the browser
    lays it out."""
    return browser.execute_script("""
        const heading = Array.from(document.querySelectorAll('h2')).find(h => h.textContent === 'Claims');
        // The first claims table after the heading (tables sit in a scrolling box), before the next section.
        let node = heading.nextElementSibling, table = null;
        while (node && node.tagName !== 'H2' && !table) {
            table = node.tagName === 'TABLE' && node.classList.contains('claims') ? node
                                                                                 : node.querySelector('table.claims');
            node = node.nextElementSibling;
        }
        if (!table) return null;
        const column = Array.from(table.tHead.rows[0].cells, cell => cell.textContent).indexOf(arguments[0]);
        return Array.from(table.tBodies[0].rows, row => [row.cells[column].textContent,
                                                         row.getBoundingClientRect().height]);""", name)


def test_matched_rate_and_mechanism_render_in_headless_chromium(constructed_page, browser, page_images):
    browser.get(constructed_page.as_uri())
    states = page_images(browser)
    assert [state["alt"] for state in states] == ["dsprites-64 | +perceptual | additive", "dsprites-64"]
    assert all(state["complete"] and state["width"] > 0 and state["height"] > 0 for state in states)
    headings = browser.execute_script("return Array.from(document.querySelectorAll('h2'), h => h.textContent)")
    assert headings == ["Runs", "Claims", "Matched rate", "Mechanism"]
    rows = browser.execute_script("""
        const heading = Array.from(document.querySelectorAll('h2')).find(h => h.textContent === 'Mechanism');
        let node = heading.nextElementSibling;
        while (node && !(node.tagName === 'TABLE' || node.querySelector('table'))) node = node.nextElementSibling;
        const table = node.tagName === 'TABLE' ? node : node.querySelector('table');
        return table.tBodies[0].rows.length;""")
    assert rows == 2, "the probe table has a row per loss setting"
    assert "C4" in {text for text, _ in _claims_column(browser, "claim")}


def test_training_section_counts_converged_runs_and_draws_loss_curves(make_run, tmp_path):
    runs = []
    for index, (family, curve) in enumerate((("pointwise", lambda s: 10.0), ("pointwise", lambda s: 200.0 - s),
                                             ("+perceptual", None))):
        run = make_run(family, index, 1.0 + index)
        run.run_dir = tmp_path / f"run{index}"
        run.run_dir.mkdir()
        run.config.train.steps = 100
        if curve is None:  # no log: the figure in summary.json is used
            run.summary["convergence"] = {"relative_improvement": 0.001, "standard_error": 0.002, "converged": True}
        else:
            (run.run_dir / "metrics.jsonl").write_text("".join(
                json.dumps({"step": s, "loss": 0.0, "loss_interval_mean": curve(s)}) + "\n" for s in range(5, 101, 5)))
        runs.append(run)
    section = training_section(runs)
    table = render_page("training", [section])
    assert "2 of 3 runs converged" in table
    # the falling run: windows (75, 85] and (90, 100] hold 120, 115 and 105, 100: (117.5 - 102.5) / 117.5 =
    # 12.77%, standard error hypot(2.5, 2.5) / 117.5 = 3.01%; the flat run: 0 +- 0; medians of the two
    row = "<td>pointwise</td><td>additive</td><td>2</td><td>1</td><td>+6.38%</td><td>1.50%</td><td>+12.77%</td>"
    assert row in table
    assert "<td>+perceptual</td><td>additive</td><td>1</td><td>1</td><td>+0.10%</td><td>0.20%</td>" in table
    assert [figure.title for figure in section.figures] == ["dsprites-64"]
    with Image.open(io.BytesIO(section.figures[0].image)) as image:
        assert min(image.size) > 100


def test_training_section_says_when_no_run_has_a_convergence_figure(make_run):
    section = training_section([make_run("pointwise", 0, 1.0)])
    assert section.tables == [] and "no run has a convergence figure" in section.notes[0]


def test_the_report_follows_the_sweep_index_on_runs_still_improving(tiny_sweep, tmp_path):
    import shutil

    from vaelens.io import atomic_write_json, read_json
    from vaelens.training.rundir import PLATEAU_FILE as FILE_NAME

    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_sweep, sweep)
    atomic_write_json(sweep / "runs" / "perceptual-s1" / FILE_NAME,
                      {"converged": False, "relative_improvement": 0.05, "standard_error": 0.001, "from_step": 4,
                       "to_step": 6, "stretch": 2 / 6, "origin": 0.0, "improvement_nats": 1.0})
    build_report(sweep, traversals=False, progress=False)
    claims = read_json(sweep / "claims.json")
    assert [run["run"] for run in claims["plateau"]["runs_left_out"]] == ["perceptual-s1"]
    assert "Trained models only.</b> 1 run still improving" in (sweep / "report.html").read_text()
    index = read_json(sweep / "sweep.json")
    atomic_write_json(sweep / "sweep.json", {**index, "claims": {"leave_out_still_improving": False}})
    build_report(sweep, traversals=False, progress=False)
    kept = read_json(sweep / "claims.json")["plateau"]
    assert kept["runs_left_out"] == [] and [run["run"] for run in kept["runs_still_improving"]] == ["perceptual-s1"]
