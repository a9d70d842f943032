"""Listings that read well in any terminal: one line of short fields per item, and its
long text (a reason, an error) on the lines below, wrapped to the terminal's width.

A table would squeeze the long text into a narrow column, a few words a line. Here the
fields a narrow terminal has no room for are left out, the least important first, and
an identifier is never cut: it is shown whole or its column is not shown.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.text import Text

GAP = 2
NOTE_INDENT = "    "


@dataclass(frozen=True, slots=True)
class Field:
    header: str
    keep: int = 0
    """Which fields stay when the terminal is narrow: the highest first."""
    justify: Literal["left", "right"] = "left"


@dataclass(frozen=True, slots=True)
class Item:
    cells: Sequence[str | Text]
    """One per field; a ``str`` may hold rich markup."""
    note: str = ""
    """The long text shown under the item's line, wrapped; plain text, not markup."""


def listing(
    title: str, fields: Sequence[Field], items: Sequence[Item], width: int
) -> RenderableType:
    """The items as aligned lines, with as many fields as ``width`` columns hold."""
    cells = [[_text(cell) for cell in item.cells] for item in items]
    widths = [
        max([len(field.header), *(row[i].cell_len for row in cells)])
        for i, field in enumerate(fields)
    ]
    shown = _fitting(fields, widths, width)
    lines: list[RenderableType] = [Text(title, style="bold")]
    header = [Text(fields[i].header, style="bold") for i in shown]
    lines.append(_line(header, [widths[i] for i in shown], [fields[i] for i in shown]))
    for item, row in zip(items, cells, strict=True):
        picked = [row[i] for i in shown]
        lines.append(_line(picked, [widths[i] for i in shown], [fields[i] for i in shown]))
        if item.note:
            room = max(width - len(NOTE_INDENT), 20)
            for wrapped in Text(item.note, style="dim").wrap(Console(width=room), room):
                lines.append(Text(NOTE_INDENT) + wrapped)
    return Group(*lines)


def _fitting(fields: Sequence[Field], widths: Sequence[int], width: int) -> list[int]:
    """The indices of the fields to show: the most important ones that fit ``width``."""
    shown = list(range(len(fields)))
    by_importance = sorted(shown, key=lambda i: (fields[i].keep, -i))
    for index in by_importance:
        if sum(widths[i] for i in shown) + GAP * (len(shown) - 1) <= width or len(shown) == 1:
            break
        shown.remove(index)
    return shown


def _line(cells: Sequence[Text], widths: Sequence[int], fields: Sequence[Field]) -> Text:
    line = Text(no_wrap=True, overflow="ignore")
    for number, (cell, size, field) in enumerate(zip(cells, widths, fields, strict=True)):
        padded = cell.copy()
        padding = " " * (size - cell.cell_len)
        if field.justify == "right":
            padded = Text(padding) + padded
        elif number < len(cells) - 1:
            padded.append(padding)
        line.append_text(padded)
        if number < len(cells) - 1:
            line.append(" " * GAP)
    return line


def _text(cell: str | Text) -> Text:
    return cell if isinstance(cell, Text) else Text.from_markup(cell)
