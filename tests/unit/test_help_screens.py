"""Every help screen reads well in an 80- and a 120-column terminal.

Nothing is cut (no ``…``), no flag shows a type, every option's name is whole, no line is
wider than the terminal, and every word of the help text written in the source is found
whole on the screen: none broken at a hyphen or split across two lines.
"""

from collections.abc import Iterator

import click
import pytest
import typer
from typer.testing import CliRunner

from ordersaga.cli.app import app


def commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group | typer.core.TyperGroup):
        for name, sub in command.commands.items():  # type: ignore[attr-defined]
            yield from commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
ALL = list(commands(ROOT))


def written_words(command: click.Command) -> set[str]:
    """The words of the help the source gives this command and its options."""
    texts = [command.help or ""]
    texts += [getattr(param, "help", None) or "" for param in command.params]
    return {word for text in texts for word in text.split()}


def option_names(command: click.Command) -> set[str]:
    return {
        name
        for param in command.params
        if isinstance(param, click.Option)
        for name in (*param.opts, *param.secondary_opts)
    }


def render(path: tuple[str, ...], columns: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_and_group_is_checked() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"", "bench", "dlq list", "sagas show", "db upgrade", "seed"} <= names


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "ordersaga" for p, _ in ALL])
def test_the_help_screen_fits_and_nothing_is_cut(
    path: tuple[str, ...], command: click.Command, columns: int
) -> None:
    shown = render(path, columns)
    assert "…" not in shown
    assert "<bool>" not in shown
    assert max(len(line) for line in shown.splitlines()) <= columns
    tokens = set(shown.split())
    assert option_names(command) <= tokens
    assert written_words(command) - tokens == set()
    if isinstance(command, typer.core.TyperGroup):
        assert set(command.commands) <= tokens  # type: ignore[attr-defined]
