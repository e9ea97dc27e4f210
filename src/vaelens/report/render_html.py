"""report.html: the report's sections (vaelens.report.content) as one self-contained page.

Every image is embedded as a base64 data URI, so the page has no external reference and can be mailed or
archived as one file. To keep that file small (BENCHMARKS.md, Report size) the sweep's figures are palette PNGs
and per-run panels mostly lossy WebP (report/images.py); each run's reconstruction grid sits in a collapsed
<details> per data set, loss family and convention, so a 108-run page opens on its figures.
"""

from __future__ import annotations

import base64
import html

from vaelens.report.model import Bullets, Cell, Figure, Number, Paragraph, Section, Table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
.scroll { overflow-x: auto; } table.claims { font-size: 0.78em; } table.claims td:last-child { min-width: 14em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
.supported { background: #d8f5d0; } .contradicted { background: #f8d4d4; } .inconclusive { background: #f4f4f4; }
.no-effect { background: #dde8f8; }
figure { margin: 1.2em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; } .error { color: #a00; }
summary { cursor: pointer; margin: 0.4em 0; }
"""
NUMBER_FORMATS = {"effect": "+.4g", "p": ".2g", "bound": ".3g", "value": ".4g"}
"""How the page prints each kind of number: compact, for reading (STUDY.md prints 4 significant digits)."""
PAGE_NOTE = ("Information quantities in nats. Every row names its weighting convention. Per-run numbers: results.csv "
             "beside this page; claims: claims.json.")


def number_text(number: Number) -> str:
    if number.value is None:
        return "n/a"
    if number.kind == "count":
        return str(number.value)
    return format(number.value, NUMBER_FORMATS[number.kind])


def cell_text(cell: Cell) -> str:
    if isinstance(cell, Number):
        return number_text(cell)
    if isinstance(cell, tuple):
        return "".join(cell_text(part) for part in cell)
    return str(cell)


def data_uri(image: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(image).decode("ascii")


def table_html(table: Table) -> str:
    """The table in a horizontally scrolling box (a wide table never widens the page), after its intro."""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in table.columns)
    body = []
    for index, row in enumerate(table.rows):
        css = f' class="{table.row_classes[index]}"' if table.row_classes else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(cell_text(cell))}</td>" for cell in row) + "</tr>")
    table_class = f' class="{table.role}"' if table.role else ""
    intro = f"<p>{html.escape(table.intro)}</p>" if table.intro else ""
    return (f"{intro}<div class='scroll'><table{table_class}><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def paragraph_html(paragraph: Paragraph) -> str:
    css = f" class='{paragraph.role}'" if paragraph.role else ""
    lead = f"<b>{html.escape(paragraph.lead)}</b> " if paragraph.lead else ""
    return f"<p{css}>{lead}{html.escape(paragraph.text)}</p>"


def bullets_html(bullets: Bullets) -> str:
    if bullets.role:
        items = "".join(f'<li class="{bullets.role}">{html.escape(term)}: {html.escape(text)}</li>'
                        for term, text in bullets.items)
    else:
        items = "".join(f"<li><b>{html.escape(term)}</b>: {html.escape(text)}</li>" if term else
                        f"<li>{html.escape(text)}</li>" for term, text in bullets.items)
    return f"<ul>{items}</ul>"


def figure_html(figure: Figure) -> str:
    return (f"<figure><img src='{data_uri(figure.image, figure.mime)}' alt='{html.escape(figure.title, quote=True)}'>"
            f"<figcaption><b>{html.escape(figure.title)}</b>: {html.escape(figure.caption)}</figcaption></figure>")


def figures_html(figures: list[Figure]) -> list[str]:
    """Ungrouped figures in order; each group as one collapsed <details> where its first figure stood."""
    groups: dict[str, list[Figure]] = {}
    for figure in figures:
        if figure.group:
            groups.setdefault(figure.group, []).append(figure)
    parts = []
    for figure in figures:
        if not figure.group:
            parts.append(figure_html(figure))
        elif groups[figure.group][0] is figure:
            members = groups[figure.group]
            count = f"{len(members)} run{'s' if len(members) != 1 else ''}"
            parts.append(f"<details><summary>{html.escape(figure.group)} ({count})</summary>"
                         + "".join(figure_html(member) for member in members) + "</details>")
    return parts


def _text_and_tables(items: list) -> list[str]:
    """Text (paragraphs, lists) joined to the table it introduces; each table closes a part."""
    parts, pending = [], ""
    for item in items:
        if isinstance(item, Table):
            parts.append(pending + table_html(item))
            pending = ""
        else:
            pending += paragraph_html(item) if isinstance(item, Paragraph) else bullets_html(item)
    return parts + ([pending] if pending else [])


def section_html(section: Section) -> list[str]:
    """The heading, then the notes, the figures, and the text and tables."""
    notes = [item for item in section.items if isinstance(item, Paragraph) and item.role == "note"]
    rest = [item for item in section.items if not isinstance(item, Figure) and all(item is not n for n in notes)]
    return [f"<h2>{html.escape(section.title)}</h2>", *(f"<p class='error'>{html.escape(note.text)}</p>"
                                                        for note in notes),
            *figures_html(section.figures), *_text_and_tables(rest)]


def render_page(title: str, sections: list[Section], note: str = PAGE_NOTE) -> str:
    """The whole page as one string; `note` is said under the title (what the numbers are in, where the files
    beside the page are)."""
    parts = [(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
              f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"), f"<p>{html.escape(note)}</p>"]
    for section in sections:
        parts += section_html(section)
    parts.append("</body></html>")
    return "\n".join(parts)
