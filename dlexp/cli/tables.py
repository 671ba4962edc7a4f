"""Tables that fit: compact numbers, and a narrower layout instead of a cut number.

Every table dlexp prints goes through :func:`print_table`. At the console's width (a terminal's, or 80
columns, or ``COLUMNS``, in a log) it prints

1. the whole table, when its narrowest layout (every cell wrapped at spaces only) fits;
2. else the table without its optional columns, dropped in the order the caller lists them, with a
   line naming them and how to see them (``--wide``, ``--csv``, ``--json``);
3. else one small two-column table per row ("stacked"), which fits any width from 60 columns up.

No cell is ever cut with an ellipsis: every column folds instead, and the layouts above are chosen so
that folding never has to happen. ``--wide`` prints the whole table at the width it needs.

Boxes are drawn in ASCII where the output is not a UTF-8 terminal (a CI log, a pipe, a file) or with
``--ascii``; ``--ascii`` also spells ‖, ±, × and the like in ASCII.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from dlexp.cli.app import display_flags

ASCII_TEXT = str.maketrans({"‖": "|", "∇": "d", "∂": "d", "±": "+/-", "—": "-", "–": "-", "×": "x",
                            "≤": "<=", "≥": ">=", "·": "-", "…": "...", "→": "->", "′": "'",
                            "▁": "_", "▂": ".", "▃": ":", "▄": "-", "▅": "=", "▆": "+", "▇": "*", "█": "#"})
WIDE_HINT = "--wide"


# -- numbers ----------------------------------------------------------------------------------


def num(value: Any, digits: int = 3) -> str:
    """A number in at most ``digits`` significant digits, never longer than ~9 characters.

    0.000229 -> '2.29e-04', 0.52341 -> '0.523', 12.345 -> '12.3', 1234.5 -> '1234', 123456.0 ->
    '1.23e+05'; integers as they are; None and NaN -> '—'.
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    size = abs(value)
    if 1e-3 <= size < 10 ** digits:
        return f"{value:.{digits}g}"
    if 10 ** digits <= size < 1e5:
        return f"{value:.0f}"
    return f"{value:.{digits - 1}e}"


def mean_std(mean: Any, std: Any, digits: int = 3) -> str:
    """'0.523 ±0.012' (the std in two significant digits), or the mean alone when std is missing.

    The sign stays with the std, so a narrow column folds the cell into two lines, the mean over
    ``±0.012``, never three (``0.523`` / ``±`` / ``0.012``)."""
    text = num(mean, digits)
    if text == "—" or std is None or (isinstance(std, float) and math.isnan(std)):
        return text
    return f"{text} ±{num(std, 2)}"


# -- layout -----------------------------------------------------------------------------------


def ascii_boxes(console: Console) -> bool:
    flags = display_flags()
    encoding = (console.encoding or "").lower().replace("-", "")
    return flags["ascii"] or not console.is_terminal or not encoding.startswith("utf")


def min_width(console: Console, renderable: RenderableType) -> int:
    """The narrowest the renderable can be drawn with every cell wrapped at spaces only."""
    return Measurement.get(console, console.options.update_width(10_000), renderable).minimum


def max_width(console: Console, renderable: RenderableType) -> int:
    return Measurement.get(console, console.options.update_width(10_000), renderable).maximum


def _prepare(console: Console, table: Table) -> Table:
    """Fold rather than cut, ASCII boxes where needed, ASCII text with --ascii."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    if ascii_boxes(console) and table.box is not None:
        table.box = box.ASCII
    if display_flags()["ascii"]:
        _ascii_text(table)
    return table


def _ascii_text(table: Table) -> None:
    def convert(cell):
        if isinstance(cell, str):
            return cell.translate(ASCII_TEXT)
        if isinstance(cell, Text):
            converted = cell.copy()
            converted.plain = cell.plain.translate(ASCII_TEXT)  # every mapped run keeps its style span
            return converted
        return cell

    table.title = convert(table.title)
    table.caption = convert(table.caption)
    for column in table.columns:
        column.header = convert(column.header)
        column._cells = [convert(cell) for cell in column._cells]


def header_text(column) -> str:
    header = column.header
    return header.plain if isinstance(header, Text) else str(header)


def without_columns(table: Table, names: Sequence[str]) -> Table:
    """A copy of ``table`` without the columns headed ``names``."""
    narrower = copy.copy(table)
    narrower.columns = []
    for column in table.columns:
        if header_text(column) not in names:
            kept = copy.copy(column)
            kept._index = len(narrower.columns)
            narrower.columns.append(kept)
    return narrower


def stacked(table: Table) -> list[Table]:
    """One two-column table per row: each header beside its value."""
    tables = []
    n_rows = len(table.rows)
    for row in range(n_rows):
        one = Table(show_header=False, box=table.box, title=table.title if row == 0 else None,
                    title_justify=table.title_justify, caption=table.caption if row == n_rows - 1 else None,
                    caption_justify=table.caption_justify)
        one.add_column(overflow="fold", style="bold")
        one.add_column(overflow="fold")
        for column in table.columns:
            one.add_row(column.header, column._cells[row])
        tables.append(one)
    return tables


def _print(console: Console, renderable: RenderableType) -> None:
    if isinstance(renderable, Table):
        _settle_widths(console, renderable)
    console.print(renderable, crop=False)


def _settle_widths(console: Console, table: Table) -> None:
    """Give each column a width of at least its longest word when the table is narrower than it wants.

    rich squeezes a too-wide table by shrinking its widest columns first, below their longest word
    (``optimize|r``, ``(default|)``) even where a layout that breaks only at spaces fits. Here the
    column with the most room above its minimum gives up one character at a time instead.
    """
    options = console.options.update_width(10_000)
    # rich's own per-column measurement and padding (private; the public Measurement covers whole tables)
    ranges = [table._measure_column(console, options, column) for column in table.columns]
    borders = max_width(console, table) - sum(r.maximum for r in ranges)
    widths = [r.maximum for r in ranges]
    excess = sum(widths) + borders - console.width
    if excess <= 0:
        return
    for _ in range(excess):
        k = max(range(len(widths)), key=lambda i: (widths[i] - ranges[i].minimum, widths[i]))
        if widths[k] <= ranges[k].minimum:
            return  # cannot fit without folding a word; rich folds
        widths[k] -= 1
    for index, (column, width) in enumerate(zip(table.columns, widths)):
        column.width = max(width - table._get_padding_width(index), 1)


def print_table(console: Console, table: Table, *, optional: Sequence[str] = (), rest: str = "") -> None:
    """Print ``table`` in the widest layout that fits the console (see the module's docstring).

    ``optional`` names the columns that may go, first to go first; ``rest`` says where else the full
    table is to be had (e.g. "--csv FILE or --json"), and ``--wide`` always does.
    """
    table = _prepare(console, table)
    width = console.width
    if display_flags()["wide"]:
        console.width = max(width, max_width(console, table))
        _print(console, table)
        console.width = width
        return
    if min_width(console, table) <= width:
        _print(console, table)
        return
    hidden: list[str] = []
    for name in optional:
        hidden.append(name)
        narrower = without_columns(table, hidden)
        if min_width(console, narrower) <= width:
            _print(console, narrower)
            _hint(console, f"not shown at {width} columns: {', '.join(hidden)}", rest)
            return
    for one in stacked(table):
        _print(console, one)
    _hint(console, f"one table per row at {width} columns", rest)


def _hint(console: Console, what: str, rest: str) -> None:
    ways = WIDE_HINT + (f", {rest}" if rest else "")
    console.print(f"({what}; {ways} for the full table)", style="dim", highlight=False, markup=False)


def fits(console: Console, renderable: RenderableType) -> bool:
    return display_flags()["wide"] or min_width(console, renderable) <= console.width


def prose(console: Console, text: str, style: str | None = None) -> None:
    """A sentence under a table, wrapped at word boundaries to the console's width."""
    console.print(Text(text, style=style or ""), overflow="fold", highlight=False)
