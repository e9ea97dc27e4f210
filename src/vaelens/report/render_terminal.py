"""The report's content for a terminal: tables as aligned plain-text columns, paragraphs as lines."""

from __future__ import annotations

from vaelens.report.model import Cell, Number, Paragraph, Section, Table

NUMBER_FORMATS = {"effect": "+.3g", "p": ".2g", "bound": ".3g", "value": ".3g"}
"""How the terminal prints each kind of number: short, to keep a row on one line."""


def cell_text(cell: Cell) -> str:
    if isinstance(cell, Number):
        if cell.value is None:
            return "n/a"
        return str(cell.value) if cell.kind == "count" else format(cell.value, NUMBER_FORMATS[cell.kind])
    if isinstance(cell, tuple):
        return "".join(cell_text(part) for part in cell)
    return str(cell)


def table_text(table: Table) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    rows = [[cell_text(cell) for cell in row] for row in table.rows]
    widths = [max(len(cell) for cell in column) for column in zip(table.columns, *rows)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in (table.columns, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_section(section: Section) -> str:
    """Every table and paragraph of `section`, in order, one block per line group."""
    parts = []
    for item in section.items:
        if isinstance(item, Table):
            parts.append(table_text(item))
        elif isinstance(item, Paragraph):
            parts.append(f"{item.lead} {item.text}" if item.lead else item.text)
    return "\n".join(parts)
