"""The report as content, before any medium: sections of paragraphs, lists, tables and figures.

The page (report.html), the study document's generated blocks (STUDY.md) and the terminal all render these
objects, so a table, a figure or a caption is specified once (vaelens.report.content) and the media cannot
drift apart. Numbers stay numbers (`Number`) until a renderer prints them, each medium at its own precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Number:
    """A number in a table or a sentence, printed by each medium at its precision for its kind."""

    value: float | int | None
    """The number; None prints as n/a."""
    kind: str = "value"
    """effect (a signed difference), p (a p-value), bound (an end of a range), count, value."""


Cell = str | Number | tuple
"""A table cell: text, a number, or a tuple of text and numbers printed one after another."""


@dataclass
class Paragraph:
    """A paragraph of text."""

    text: str
    """Its words."""
    lead: str = ""
    """A bold lead-in (e.g. "Multiplicity.")."""
    role: str = ""
    """What it is, for a medium that styles it: multiplicity, plateau, note (a remark on missing content)."""


@dataclass
class Bullets:
    """A list of (bold term, text) items."""

    items: list[tuple[str, str]]
    """The items: (term, text); an empty term prints the text alone."""
    role: str = ""
    """What it is, for a medium that styles it: error (failed runs)."""


@dataclass
class Table:
    """Rows of cells under named columns."""

    columns: list[str]
    """Column headings."""
    rows: list[list[Cell]]
    """One list of cells per row."""
    intro: str = ""
    """A sentence said before the table."""
    row_classes: list[str] | None = None
    """Per row, a word a medium may style it by (a claims row's verdict)."""
    role: str = ""
    """What it is, for a medium that styles it (claims)."""
    group_by: int | None = None
    """A column whose value groups the rows: a medium may print one table per group instead, without that
    column, headed by `group_titles`."""
    group_titles: dict[str, str] = field(default_factory=dict)
    """Group value -> its heading, in the order the groups are printed."""


@dataclass
class Figure:
    """One image with a caption."""

    title: str
    """Short heading."""
    image: bytes
    """The encoded image, of media type `mime`."""
    caption: str = ""
    """What it shows and how to read it."""
    mime: str = "image/png"
    """image/png, or image/webp for lossy per-run panels."""
    group: str = ""
    """Figures of one non-empty group are shown collapsed together under it; "" = always shown."""
    name: str = ""
    """File stem where a medium writes figures to files (the study document)."""


Item = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    """Its heading."""
    items: list[Item] = field(default_factory=list)
    """Content in order; the page shows notes first, then figures, then tables and text."""

    @property
    def figures(self) -> list[Figure]:
        return [item for item in self.items if isinstance(item, Figure)]

    @property
    def tables(self) -> list[Table]:
        return [item for item in self.items if isinstance(item, Table)]

    @property
    def notes(self) -> list[str]:
        return [item.text for item in self.items if isinstance(item, Paragraph) and item.role == "note"]

    @property
    def empty(self) -> bool:
        return not self.items
