"""The CLI's tables: fitted to the terminal without cutting an id, name, address or state, and
plain (no box, no colour, every column, nothing cut) when the output is not a terminal.

`layout` decides purely which columns a terminal of a given width shows; `render` builds the
rich renderable. Part of the CLI layer (it imports rich), used by cli.py only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

Cell = Union[str, Text]
GAP = 2  # columns are separated by two spaces (no box: fewer columns lost to borders)


@dataclass(frozen=True)
class Column:
    """A table column. ``whole``: an id, name, address or state, shown on one line in full,
    never cut or wrapped. ``drop``: 0 keeps the column always; otherwise, when the terminal is
    too narrow, columns are dropped highest ``drop`` first. ``group`` (with a ``drop``): at
    its turn the column is not dropped but its value becomes a heading row over its rows
    (rows come sorted by it), shown in the first remaining column."""

    header: str
    whole: bool = False
    drop: int = 0
    group: bool = False
    numeric: bool = False


@dataclass(frozen=True)
class Layout:
    kept: tuple[int, ...]  # column indexes shown, in order
    grouped: int | None = None  # the column shown as heading rows, if any


def min_widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[int]:
    """The narrowest each column can be without cutting: a whole column its longest value, any
    other column its longest word (it wraps between words)."""
    widths = []
    for i, column in enumerate(columns):
        texts = [column.header, *(_plain(row[i]) for row in rows)]
        if column.whole:
            widths.append(max(cell_len(t) for t in texts))
        else:
            widths.append(max((cell_len(word) for t in texts for word in t.split()), default=0))
    return widths


def layout(columns: Sequence[Column], widths: Sequence[int], width: int) -> Layout:
    """Which columns fit in ``width`` cells: all if they fit; else, highest ``drop`` first,
    drop columns (or turn the ``group`` column into heading rows) until they fit. When even the
    columns that are never dropped do not fit, rich folds their values onto more lines: a
    value is never cut."""
    kept = list(range(len(columns)))
    grouped: int | None = None

    def needed() -> int:
        cells = [widths[i] for i in kept]
        if grouped is not None and cells:
            cells[0] = max(cells[0], widths[grouped])  # the headings are shown in the first column
        return sum(cells) + GAP * max(0, len(cells) - 1)

    for i in sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop):
        if needed() <= width:
            break
        if columns[i].group and grouped is None and len(kept) > 1:
            grouped = i
        kept.remove(i)
    return Layout(tuple(kept), grouped)


def render(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
           title: str | None = None, caption: str | None = None) -> RenderableType:
    """The table for ``console``: fitted with `layout` on a terminal, plain text otherwise."""
    if not console.is_terminal:
        return plain(columns, rows, title=title, caption=caption)
    widths = min_widths(columns, rows)
    chosen = layout(columns, widths, console.width)
    table = Table(title=Text(title) if title else None, title_justify="left",
                  caption=Text(caption) if caption else None, caption_justify="left", box=None,
                  pad_edge=False, padding=(0, 1), header_style="bold")
    for i in chosen.kept:  # a whole column's cells do not wrap: rich narrows the others first
        column = columns[i]
        table.add_column(column.header, no_wrap=column.whole, overflow="fold",
                         justify="right" if column.numeric else "left")
    heading = None
    for row in rows:
        if chosen.grouped is not None and _plain(row[chosen.grouped]) != heading:
            heading = _plain(row[chosen.grouped])
            table.add_row(Text(heading, style="bold"), *[""] * (len(chosen.kept) - 1))
        table.add_row(*(_text(row[i]) for i in chosen.kept))
    return table


def plain(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *, title: str | None = None,
          caption: str | None = None) -> Text:
    """Every column, every value whole, aligned with spaces: for pipes, grep and files."""
    cells = [[c.header for c in columns], *[[_plain(v).replace("\n", " ") for v in row] for row in rows]]
    widths = [max(cell_len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [title] if title else []
    for line in cells:
        padded = [(v.rjust(w) if c.numeric else v.ljust(w)) for v, w, c in zip(line, widths, columns)]
        lines.append((" " * GAP).join(padded).rstrip())
    if caption:
        lines.append(caption)
    return Text("\n".join(lines), no_wrap=True, overflow="ignore")


def _text(value: Cell) -> Text:
    """A cell as rich shows it: a str is user text (a name, a message), never markup or emoji."""
    return value if isinstance(value, Text) else Text(str(value))


def _plain(value: Cell) -> str:
    return value.plain if isinstance(value, Text) else str(value)
