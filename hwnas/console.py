"""Consoles for everything hwnas prints: never hard-wrapped when the output is not a terminal.

Rich wraps at 80 columns when it cannot ask a terminal for its width (a pipe, a log file, CI),
which splits paths and genotypes mid-word; a search log that greps for ``12 complete`` or a
user who copies a path out of it then gets a broken line. Here a console writing to anything
but a terminal is as wide as its longest line, and lines holding paths or genotypes are
printed with ``soft_wrap`` so that even a terminal only wraps them visually.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: Width for output that is not a terminal: wide enough that no line is ever wrapped.
UNWRAPPED_WIDTH = 1 << 14


def make_console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) that wraps only to a real terminal's width."""
    stream = sys.stderr if stderr else sys.stdout
    if _is_terminal(stream):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=UNWRAPPED_WIDTH, no_color=True, highlight=False)


def is_terminal(*, stderr: bool = False) -> bool:
    return _is_terminal(sys.stderr if stderr else sys.stdout)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def print_line(console: Console, text: str) -> None:
    """One line of plain text (a path, a genotype): no markup, never split by rich."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def print_table(console: Console, table: Table, long_column: str, values: Sequence[str]) -> None:
    """``table`` plus a last column ``long_column`` holding ``values`` (one per row), whole.

    When the table with that column fits the console, the column is part of it; otherwise the
    table is printed without it and each value follows on its own unwrapped line, prefixed by
    the row's first cell, so that a genotype can always be copied as one line. When even the
    narrow table does not fit, every row becomes plain ``header value`` lines: no cell is cut.
    """
    wide = _with_column(table, long_column, values)
    if _fits(console, wide):
        console.print(wide)
        return
    if _fits(console, table):
        console.print(table)
        first = table.columns[0] if table.columns else None
        for label, value in zip(first._cells if first else [], values):
            print_line(console, f"{first.header} {label} {long_column}: {value}")
        return
    headers = [str(c.header) for c in wide.columns]
    rows = zip(*(c._cells for c in wide.columns)) if wide.columns else ()
    for cells in rows:
        print_line(console, f"{headers[0]} {cells[0]}")
        for header, cell in zip(headers[1:], cells[1:]):
            print_line(console, f"  {header}: {cell}")


def _with_column(table: Table, name: str, values: Sequence[str]) -> Table:
    wide = Table(title=table.title, caption=table.caption)
    for column in table.columns:
        wide.add_column(column.header, justify=column.justify, no_wrap=True)
    wide.add_column(name, no_wrap=True)
    rows = zip(*(c._cells for c in table.columns)) if table.columns else ()
    for cells, value in zip(rows, values):
        wide.add_row(*cells, Text(value))  # a genotype is text, never markup
    return wide


def _fits(console: Console, table: Table) -> bool:
    """Whether ``table`` renders at its natural width within the console's width."""
    natural = Measurement.get(console, console.options.update_width(UNWRAPPED_WIDTH), table)
    return natural.maximum <= console.width
