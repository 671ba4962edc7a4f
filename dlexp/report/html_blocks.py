"""HTML building blocks for the report: a rich ``Table`` as an HTML table, a PNG as an inline ``<img>``.

Converting the terminal's own tables keeps one source for every number the report shows: the
page cannot format a value differently from the terminal.
"""

from __future__ import annotations

import base64
import html
import struct
from typing import Any

from rich.style import Style
from rich.table import Table
from rich.text import Text

from dlexp.report.gradients import VERDICTS


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` carrying the PNG inline, with its pixel size so the page lays out before decoding."""
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk follows the 8-byte signature
    data = base64.b64encode(png).decode("ascii")
    return (f"<img class=\"figure\" alt=\"{esc(alt)}\" width=\"{width}\" height=\"{height}\" "
            f"src=\"data:image/png;base64,{data}\">")


def table_html(table: Table, css_class: str = "", wrap_last: bool = False) -> str:
    """A rich Table as an HTML table: same title, headers, cells (as plain text) and alignment;
    cell colours and bold from the cell's rich style; the caption below it."""
    columns = table.columns
    cells = [list(column.cells) for column in columns]
    n_rows = max((len(c) for c in cells), default=0)
    head = "".join(f"<th class=\"{_align(c.justify)}\">{esc(_plain(c.header))}</th>" for c in columns)
    body = []
    for i in range(n_rows):
        tds = []
        for j, column in enumerate(columns):
            cell = cells[j][i] if i < len(cells[j]) else ""
            text = _as_text(cell)
            style = _css(text)
            if wrap_last and j == len(columns) - 1:
                style += "white-space:normal;min-width:16em;"
            klass = _align(column.justify)
            if text.plain in VERDICTS:
                klass += f" verdict verdict-{text.plain}"
            attributes = f'class="{klass}"' + (f' style="{style}"' if style else "")
            tds.append(f"<td {attributes}>{esc(text.plain)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    title = f"<caption>{esc(_plain(table.title))}</caption>" if table.title else ""
    caption = f"<p class=\"caption\">{esc(_plain(table.caption))}</p>" if table.caption else ""
    klass = f" class=\"{css_class}\"" if css_class else ""
    return (f"<div class=\"scroll\"><table{klass}>{title}<thead><tr>{head}</tr></thead><tbody>"
            + "".join(body) + f"</tbody></table></div>{caption}")


def _as_text(cell: Any) -> Text:
    if isinstance(cell, Text):
        return cell
    if isinstance(cell, str):
        return Text.from_markup(cell)
    return Text(str(cell))


def _plain(value: Any) -> str:
    return _as_text(value).plain if value is not None else ""


def _css(text: Text) -> str:
    style = Style.parse(text.style) if isinstance(text.style, str) else text.style
    for span in text.spans:  # markup such as "[green]…[/]" styles the whole cell through a span
        if span.start == 0 and span.end >= len(text.plain):
            style = style + (Style.parse(span.style) if isinstance(span.style, str) else span.style)
    out = ""
    if style.color is not None and not style.color.is_default:
        r, g, b = style.color.get_truecolor()
        out += f"color:rgb({r},{g},{b});"
    if style.bold:
        out += "font-weight:bold;"
    if style.dim:
        out += "opacity:.6;"
    return out


def _align(justify: str | None) -> str:
    return {"right": "right", "center": "center"}.get(justify or "left", "left")


def esc(text: str) -> str:
    return html.escape(str(text), quote=True)
