"""The report's content as Markdown, for the generated blocks of a study document (STUDY.md).

Numbers print with 4 significant digits whatever their kind (`cell_number`), so a test can map every cell of a
document back to the claims.json field it prints. A table grouped by a column (the claims, by comparison)
prints as one table per group under its heading, without that column.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from vaelens.report.model import Bullets, Cell, Figure, Item, Number, Paragraph, Table

DOCUMENT_COLOURS = 64
"""Palette size of the document's PNGs: line plots need few colours, and the repository keeps every version."""


def cell_number(value) -> str:
    """How the document prints a number: 4 significant digits, "n/a" for none."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def cell_text(cell: Cell) -> str:
    if isinstance(cell, Number):
        return cell_number(cell.value)
    if isinstance(cell, tuple):
        return "".join(cell_text(part) for part in cell)
    return str(cell)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_cell(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def table_markdown(table: Table) -> str:
    """The table after its intro; grouped, one table per group under a level-4 heading."""
    rows = [[cell_text(cell) for cell in row] for row in table.rows]
    intro = f"{table.intro}\n\n" if table.intro else ""
    if table.group_by is None:
        return intro + markdown_table(table.columns, rows)
    column = table.group_by
    header = table.columns[:column] + table.columns[column + 1:]
    parts = []
    for group, title in table.group_titles.items():
        members = [row[:column] + row[column + 1:] for row in rows if row[column] == group]
        if members:
            parts.append(f"#### {title}\n\n{markdown_table(header, members)}")
    return intro + "\n\n".join(parts)


def item_markdown(item: Item) -> str:
    if isinstance(item, Table):
        return table_markdown(item)
    if isinstance(item, Paragraph):
        return f"**{item.lead}** {item.text}" if item.lead else item.text
    if isinstance(item, Bullets):
        return "\n".join(f"- **{term}**: {text}" if term else f"- {text}" for term, text in item.items)
    raise TypeError(f"a document block holds tables, paragraphs and lists, not {type(item).__name__}")


def block_markdown(items: list[Item]) -> str:
    """A generated block's body: its items, a blank line apart (tables that say nothing are left out)."""
    return "\n\n".join(text for text in (item_markdown(item) for item in items) if text)


def compact_png(image: bytes) -> bytes:
    """The PNG re-quantised to DOCUMENT_COLOURS colours."""
    with Image.open(io.BytesIO(image)) as opened:
        palette = opened.convert("RGB").quantize(colors=DOCUMENT_COLOURS, method=Image.Quantize.MEDIANCUT,
                                                 dither=Image.Dither.NONE)
    compact = io.BytesIO()
    palette.save(compact, format="PNG", optimize=True)
    return compact.getvalue()


def figures_markdown(groups: list[tuple[str, list[Figure]]], markdown_path: Path, figures_dir: Path) -> str:
    """Per data set a heading and a link to each figure file (in `figures_dir`) with its caption."""
    relative = Path(os.path.relpath(figures_dir.resolve(), markdown_path.resolve().parent)).as_posix()
    lines = []
    for dataset, figures in groups:
        lines.append(f"#### {dataset}\n")
        for figure in figures:
            stem = figure.name.removeprefix(f"{dataset}-")
            lines.append(f"![{dataset}: {stem}]({relative}/{figure.name}.png)  \n*{figure.caption}*\n")
    return "\n".join(lines).rstrip()
