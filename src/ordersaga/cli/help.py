"""Help screens written for a terminal: every paragraph rewrapped to its width.

Click's plain help is used rather than typer's panels, which keep the docstrings' line
breaks, cut long option names to fit their columns and show ``<bool>`` for a flag. Click
is taught two things more: never to break a word (``in-process``, ``--no-keep``) at its
hyphen, and to list each command with its whole first sentence rather than a cut one.
"""

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

_FIRST_COLUMN = 30

# The help formatter of the click that typer uses (its own copy in recent versions).
_ClickFormatter = typer.Context.formatter_class


def wrap(text: str, width: int, indent: str = "", first_indent: str | None = None) -> list[str]:
    """``text`` as lines of at most ``width`` characters, paragraph by paragraph.

    Lines within a paragraph are joined; a word longer than a line stays whole.
    """
    lines: list[str] = []
    for number, paragraph in enumerate(textwrap.dedent(text).strip().split("\n\n")):
        if number:
            lines.append("")
        lines += textwrap.wrap(
            " ".join(paragraph.split()),
            width,
            initial_indent=indent if first_indent is None or lines else first_indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )
    return lines


class TerminalFormatter(_ClickFormatter):  # type: ignore[misc,valid-type]
    """Click's formatter, wrapping text without breaking words."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write("".join(f"{line}\n" for line in wrap(text, self.width, indent)))

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = _FIRST_COLUMN, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first = min(max((len(term) for term, _ in rows), default=0), col_max) + col_spacing
        margin = " " * self.current_indent
        width = max(self.width - self.current_indent - first, 20)
        for term, text in rows:
            lines = wrap(text, width) if text else []
            if len(term) > first - col_spacing or not lines:
                self.write(f"{margin}{term}\n")
            else:
                self.write(f"{margin}{term:<{first}}{lines.pop(0)}\n")
            self.write("".join(f"{margin}{' ' * first}{line}\n".rstrip() + "\n" for line in lines))


class TerminalContext(typer.Context):
    formatter_class = TerminalFormatter


class TerminalCommand(TyperCommand):
    context_class = TerminalContext


class TerminalGroup(TyperGroup):
    context_class = TerminalContext

    # The formatter is click's (typer's own copy of it), not a type this module can name.
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def for_terminal(apps: Sequence[typer.Typer]) -> None:
    """Give ``apps``, their commands and their groups the help screens above."""
    for app in apps:
        app.info.cls = _terminal(app.info.cls)
        app.rich_markup_mode = None
        for command in app.registered_commands:
            if command.cls in (None, TyperCommand):
                command.cls = TerminalCommand
        for group in app.registered_groups:
            own = group.typer_instance.info.cls if group.typer_instance is not None else None
            group.cls = _terminal(group.cls or own)
            if group.typer_instance is not None:
                for_terminal([group.typer_instance])


def _terminal(cls: Any) -> type[TyperGroup]:
    """``cls`` if its help screens are already these (a subclass of TerminalGroup, as the
    command groups that answer errors are), else TerminalGroup."""
    if isinstance(cls, type) and issubclass(cls, TerminalGroup):
        return cls
    return TerminalGroup
