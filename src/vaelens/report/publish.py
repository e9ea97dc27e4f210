"""`vaelens publish STUDY_DIR --markdown STUDY.md`: a study's numbers and figures, in a document kept in git.

The document is prose written by people with generated blocks in it. A block sits between the lines
`<!-- vaelens:NAME -->` and `<!-- /vaelens:NAME -->`; publishing rewrites every block from the study
directory and leaves the prose alone. With `check=True` nothing is written: the blocks are regenerated and
compared, so anyone holding the study directory can confirm that every published number comes from it.

The blocks (vaelens.report.content.BLOCKS) are the page's own tables, figures and captions (report.html shows
the same), plus the document's `provenance`, `verdicts` and, given an earlier study, `previous`: each pooled
row's effect and verdict in both studies, side by side.
"""

from __future__ import annotations

import re
from pathlib import Path

from vaelens.io import atomic_write_bytes, atomic_write_text, read_json
from vaelens.report.claim_rows import ClaimsReport
from vaelens.report.content import document_blocks, document_figures
from vaelens.report.figures import DATASET_FIGURES
from vaelens.report.model import Figure
from vaelens.report.plots import datasets
from vaelens.report.render_markdown import block_markdown, compact_png, figures_markdown
from vaelens.training.sweepdir import Sweep, SweepDirectory

BLOCK = re.compile(r"(<!-- vaelens:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /vaelens:(?P=name) -->)", re.DOTALL)
"""A generated block; its body is everything between the two marker lines."""


def read_claims(study_dir: Path) -> ClaimsReport:
    """A study directory's claims.json, typed; missing, it says to run the report first."""
    path = Path(study_dir) / "claims.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `vaelens report {study_dir}` first")
    return ClaimsReport.from_json(read_json(path))


def _existing_figures(sweep: Sweep, figures_dir: Path) -> list[tuple[str, list[Figure]]]:
    """The document's figures that are already written (a check draws nothing)."""
    specs = [spec for spec in DATASET_FIGURES if spec.in_document]
    return [(dataset, [Figure(dataset, b"", spec.caption, name=f"{dataset}-{spec.name}") for spec in specs
                       if (figures_dir / f"{dataset}-{spec.name}.png").is_file()])
            for dataset in datasets(sweep.runs)]


def figures_block(sweep: Sweep, markdown_path: Path, figures_dir: Path, write: bool) -> str:
    """Write every document figure as a compact PNG into `figures_dir` (unless `write` is False) and link them."""
    if not write:
        return figures_markdown(_existing_figures(sweep, figures_dir), markdown_path, figures_dir)
    groups = document_figures(sweep.runs)
    for _, figures in groups:
        for figure in figures:
            atomic_write_bytes(figures_dir / f"{figure.name}.png", compact_png(figure.image))
    return figures_markdown(groups, markdown_path, figures_dir)


def generated_blocks(study_dir: Path, claims: ClaimsReport, markdown_path: Path, figures_dir: Path,
                     write_figures: bool, previous: ClaimsReport | None = None) -> dict[str, str]:
    """Block name -> its Markdown, from the study directory (read once), its claims and, for `previous`, an
    earlier study's claims."""
    sweep = SweepDirectory(study_dir).load()
    blocks = {name: block_markdown(items) for name, items in document_blocks(sweep, claims, previous).items()}
    blocks["figures"] = figures_block(sweep, markdown_path, figures_dir, write_figures)
    return blocks


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """`text` with the body of each generated block replaced; a block name vaelens does not make is an error."""
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name == "previous" and name not in blocks:
            raise ValueError("the document has a 'previous' block (effects beside an earlier study's): give the "
                             "earlier study directory with --previous DIR")
        if name not in blocks:
            raise ValueError(f"unknown generated block '{name}'; vaelens writes: {', '.join(blocks)}")
        return f"{match.group(1)}{blocks[name]}\n{match.group(4)}"
    return BLOCK.sub(replace, text)


def publish(study_dir, markdown_path, figures_dir=None, check: bool = False, previous_dir=None) -> list[str]:
    """Regenerate the blocks of `markdown_path` (and, unless `check`, its figures) from `study_dir`; the
    `previous` block from `previous_dir`, an earlier study, when given. With `check`, write nothing and return
    the names of the blocks that differ (empty: the document matches)."""
    study_dir, markdown_path = Path(study_dir).expanduser(), Path(markdown_path).expanduser()
    previous_dir = Path(previous_dir).expanduser() if previous_dir else None
    claims = read_claims(study_dir)
    previous = read_claims(previous_dir) if previous_dir is not None else None
    if not markdown_path.is_file():
        raise FileNotFoundError(f"{markdown_path} does not exist: create it with the block markers "
                                "(<!-- vaelens:claims --> ... <!-- /vaelens:claims -->) where the numbers go")
    figures_dir = Path(figures_dir) if figures_dir else markdown_path.parent / "docs" / "study"
    text = markdown_path.read_text()
    present = [match.group("name") for match in BLOCK.finditer(text)]
    if not present:
        raise ValueError(f"{markdown_path} has no generated block (<!-- vaelens:NAME --> ... <!-- /vaelens:NAME -->)")
    blocks = generated_blocks(study_dir, claims, markdown_path, figures_dir, write_figures=not check,
                              previous=previous)
    updated = fill_blocks(text, blocks)
    if check:
        old = {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}
        new = {m.group("name"): m.group("body") for m in BLOCK.finditer(updated)}
        return [name for name in present if old[name] != new[name]]
    atomic_write_text(markdown_path, updated)
    return []
