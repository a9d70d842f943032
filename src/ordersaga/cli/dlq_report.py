"""How dead letters are shown to a person: a table of them, one whole, their values."""

import json
import re
from uuid import uuid4

from rich.table import Table
from rich.text import Text

from ordersaga.messaging.dead_letters import DeadLetter, Inspection

PREVIEW = 60


def letters_table(found: Inspection) -> Table:
    """The dead letters as a table, one row each; a ``replays`` column if they were counted."""
    table = Table(title="Dead letters", title_justify="left")
    columns = ["DLQ topic", "at", "source", "consumer", "error", "key", "value"]
    counted = found.replays is not None
    for column in [*columns, "replays"] if counted else columns:
        table.add_column(column, overflow="fold")
    for letter in found.letters:
        record = letter.record
        row = [
            record.topic,
            f"{record.partition}/{record.offset}",
            letter.source_address,
            letter.consumer,
            letter.error,
            record.key,
            preview(record.value),
        ]
        if counted:
            row.append(str(found.replays_of(letter)))
        table.add_row(*(Text(printable(cell)) for cell in row))
    return table


def printable(text: str) -> str:
    """``text`` safe to print: bytes that were not UTF-8 (kept as surrogates) escaped."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def preview(value: bytes, length: int = PREVIEW) -> str:
    """The first ``length`` characters of a value, on one line."""
    text = value.decode("utf-8", "backslashreplace")
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:length])
    return shown + ("…" if len(text) > length else "")


def describe(letter: DeadLetter) -> str:
    """A dead letter whole, for a person: key, every header, the value."""
    record = letter.record
    lines = [f"{letter.address} (from {letter.source_address})", f"key: {printable(record.key)}"]
    lines.append("headers:")
    lines += [f"  {printable(name)}: {printable(value)}" for name, value in record.headers.items()]
    try:
        lines += ["value (JSON):", pretty_json(record.value)]
    except ValueError:  # not UTF-8, or not JSON
        lines += ["value (raw bytes):", repr(record.value)]
    return "\n".join(lines)


def pretty_json(value: bytes) -> str:
    """``value`` indented, its numbers exactly as written (``20.00`` stays ``20.00``).

    Floats are carried through as strings wrapped in a random mark, which are unwrapped
    after formatting: a float would print amounts as ``20.0`` and round long ones.
    """
    mark = uuid4().hex
    parsed = json.loads(value.decode("utf-8"), parse_float=lambda text: f"{mark}{text}{mark}")
    formatted = json.dumps(parsed, indent=2, ensure_ascii=False)
    return re.sub(f'"{mark}([^"]*){mark}"', r"\1", formatted)
