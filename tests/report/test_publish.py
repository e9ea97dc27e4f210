"""vaelens.report.publish: the study document's generated blocks come from the study directory, number by number."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from vaelens.cli import main
from vaelens.io import read_json
from vaelens.report import build_report
from vaelens.report.claims import COMPARISONS
from vaelens.report.claims_content import DECIDED_COLUMNS, EXPLORATORY_COLUMNS, FAMILY_TITLES
from vaelens.report.publish import publish, read_claims
from vaelens.report.render_markdown import cell_number

ROOT = Path(__file__).resolve().parents[2]
BLOCK_NAMES = ("provenance", "verdicts", "claims", "convergence", "plateau", "probe", "probe-rate", "figures")
NUMERIC_FIELDS = {"effect": "effect", "95% CI (raw)": ("ci_low", "ci_high"), "p": "p_value", "p (raw)": "p_value",
                  "p (adjusted)": "p_adjusted", "p equivalence (adjusted)": "p_equivalence_adjusted",
                  "p sign-flip (raw)": "p_sign_flip", "seeds": "n_pairs"}
"""Claims-table columns holding numbers -> the ClaimRow field(s) they print."""
TEMPLATE = "# A study\n\nProse before.\n\n" + "".join(
    f"<!-- vaelens:{name} -->\nstale\n<!-- /vaelens:{name} -->\n\nProse after {name}.\n\n" for name in BLOCK_NAMES)


@pytest.fixture
def published(tiny_sweep, tmp_path):
    """A copy of the tiny sweep with its report, and a document published from it."""
    study = shutil.copytree(tiny_sweep, tmp_path / "study")
    build_report(study, traversals=False, progress=False)
    document = tmp_path / "doc" / "STUDY.md"
    document.parent.mkdir()
    document.write_text(TEMPLATE)
    assert publish(study, document) == []
    return study, document


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Section title -> the rows (cells) of the markdown table under it, header first."""
    tables, title = {}, None
    for line in text.splitlines():
        if line.startswith("#### "):
            title = line[5:]
        elif line.startswith("| ") and title is not None:
            tables.setdefault(title, []).append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif not line.startswith("|") and title in tables:
            title = None  # the table under the title has ended
    return tables


def _table_groups(payload):
    """(heading, header, expected rows, outcome column) of each claims table the document prints: the decided
    families, then the exploratory rows by comparison."""
    groups = [(FAMILY_TITLES[family], DECIDED_COLUMNS, payload.family_rows(family), "outcome")
              for family in ("primary", "secondary")]
    exploratory = [column for column in EXPLORATORY_COLUMNS if column != "comparison"]
    groups += [(f"Exploratory: {entry.title}", exploratory,
                [row for row in payload.family_rows("exploratory") if row.comparison == name], None)
               for name, entry in COMPARISONS.items()]
    return groups


def test_every_number_in_the_claims_tables_comes_from_claims_json(published):
    study, document = published
    payload = read_claims(study)
    tables = _tables(document.read_text())
    checked = 0
    for title, columns, expected, outcome in _table_groups(payload):
        if not expected:
            assert title not in tables
            continue
        header, *rows = tables[title]
        assert header == columns and len(rows) == len(expected)
        for cells, row in zip(rows, expected):
            cell = dict(zip(header, cells))
            assert cell["claim"] == row.claim and (outcome is None or cell[outcome] == row.verdict)
            for column, fields in NUMERIC_FIELDS.items():
                if column not in cell:
                    continue
                if isinstance(fields, tuple):
                    assert cell[column] == "[" + ", ".join(cell_number(getattr(row, f)) for f in fields) + "]"
                elif column == "seeds":
                    assert cell[column].split(" ")[0] == cell_number(getattr(row, fields))
                else:
                    assert cell[column] == cell_number(getattr(row, fields))
                checked += 1
    assert checked >= 5 * 2  # the tiny sweep has pooled rows with numbers


def test_verdict_counts_add_up_to_claims_json(published):
    study, document = published
    payload = read_claims(study)
    table = _tables("#### verdicts\n" + document.read_text())["verdicts"]
    decided = [cells for cells in table[1:] if cells[0] in ("primary", "secondary")]
    assert sum(int(n) for cells in decided for n in cells[2:]) == len(payload.family_rows("primary")) + len(
        payload.family_rows("secondary"))
    exploratory = next(cells for cells in table[1:] if cells[0] == "exploratory")
    assert exploratory[-1] == f"{len(payload.family_rows('exploratory'))} pooled rows, no decision"


def test_prose_is_kept_and_figures_are_written_and_linked(published):
    study, document = published
    text = document.read_text()
    assert "Prose before." in text and all(f"Prose after {name}." in text for name in BLOCK_NAMES)
    assert "stale" not in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert links, "the figures block links no figure"
    for link in links:
        assert (document.parent / link).is_file()
        assert (document.parent / link).read_bytes().startswith(b"\x89PNG")
    assert "finished and analysed" in text


def test_check_finds_an_edited_number_and_the_command_fails(published, capsys):
    study, document = published
    assert publish(study, document, check=True) == []
    assert main(["publish", str(study), "--markdown", str(document), "--check"]) == 0
    payload = read_claims(study)
    effect = cell_number(next(row.effect for row in payload.pooled_rows() if row.effect is not None))
    text = document.read_text()
    document.write_text(text.replace(f"| {effect} |", "| 123456 |", 1))
    assert publish(study, document, check=True) == ["claims"]
    assert main(["publish", str(study), "--markdown", str(document), "--check"]) == 1
    assert "claims" in capsys.readouterr().out


def test_errors_name_the_problem(published, tmp_path):
    study, document = published
    unknown = tmp_path / "unknown.md"
    unknown.write_text("<!-- vaelens:tables -->\n<!-- /vaelens:tables -->\n")
    with pytest.raises(ValueError, match="unknown generated block 'tables'"):
        publish(study, unknown)
    plain = tmp_path / "plain.md"
    plain.write_text("no blocks\n")
    with pytest.raises(ValueError, match="no generated block"):
        publish(study, plain)
    with pytest.raises(FileNotFoundError, match="vaelens report"):
        publish(tmp_path / "nowhere", document)


def test_previous_block_puts_each_rows_effect_beside_the_earlier_studys(published, tmp_path):
    study, document = published
    previous = shutil.copytree(study, tmp_path / "previous")
    payload = read_json(previous / "claims.json")
    row = next(row for row in payload["results"] if row["beta"] == "all" and row["effect"] is not None)
    row["effect"], row["verdict"] = 98765.0, "supported" if row["verdict"] != "supported" else "contradicted"
    (previous / "claims.json").write_text(json.dumps(payload))
    document.write_text(document.read_text() + "<!-- vaelens:previous -->\n<!-- /vaelens:previous -->\n")
    with pytest.raises(ValueError, match="--previous"):
        publish(study, document)
    assert publish(study, document, previous_dir=previous) == []
    text = document.read_text()
    assert f"{len(read_claims(previous).pooled_rows())} pooled rows in both studies; 1 changed verdict" in text
    assert f"| {cell_number(98765.0)} |" in text
    assert publish(study, document, check=True, previous_dir=previous) == []
    assert main(["publish", str(study), "--markdown", str(document), "--previous", str(previous), "--check"]) == 0


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("VAELENS_STUDY_DIR"), reason="set VAELENS_STUDY_DIR to the standard study's "
                                                                   "--out to check STUDY.md against it")
def test_study_md_matches_the_study_directory():
    # STUDY.md's 'previous' block compares with the previous version's study (VAELENS_PREVIOUS_STUDY_DIR).
    assert publish(os.environ["VAELENS_STUDY_DIR"], ROOT / "STUDY.md", check=True,
                   previous_dir=os.environ.get("VAELENS_PREVIOUS_STUDY_DIR")) == []


def test_the_plateau_block_comes_from_each_runs_plateau_json(published):
    import torch

    from vaelens.analysis.plateau import paired_improvement
    from vaelens.io import atomic_write_json
    from vaelens.training.rundir import PLATEAU_FILE as FILE_NAME

    study, document = published
    assert "No run has a paired plateau check" in document.read_text()
    runs = [study / run["dir"] for run in read_json(study / "sweep.json")["runs"] if run["status"] == "finished"]
    improvements = {}
    for index, run_dir in enumerate(runs):
        before = torch.full((4,), 100.0) + torch.arange(4.0)
        figure = paired_improvement(before, before - (1.0 + index), origin=0.0)  # 1%, 2%, ... of about 101.5
        atomic_write_json(run_dir / FILE_NAME, {**figure, "from_step": 4, "to_step": 5, "stretch": 0.2})
        improvements[run_dir.name] = figure["relative_improvement"]
    assert publish(study, document, check=True) == ["plateau"]
    assert publish(study, document) == []
    text = document.read_text()
    on_plateau = sum(value < 0.02 for value in improvements.values())
    assert f"{on_plateau} of {len(runs)} runs are on the plateau" in text
    rows = [line for line in text.splitlines() if line.startswith("| dsprites-64 |") and line.endswith("| 20% |")]
    assert len(rows) == 2  # pointwise and +perceptual
    for family in ("pointwise", "perceptual"):
        values = sorted(value for name, value in improvements.items() if name.startswith(family))
        row = next(line for line in rows if f"| {'+perceptual' if family == 'perceptual' else family} |" in line)
        assert f"| {max(values):+.2%} |" in row
