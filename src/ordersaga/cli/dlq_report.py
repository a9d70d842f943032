"""How dead letters are shown: to a person, listed or one whole; to a script, as JSON."""

import json
import re
from typing import Any
from uuid import uuid4

from rich.console import RenderableType
from rich.text import Text

from ordersaga.cli.listing import Field, Item, listing
from ordersaga.messaging.dead_letters import DeadLetter, Inspection

PREVIEW = 60


LETTER_FIELDS = (
    Field("dead letter", keep=9),
    Field("key", keep=8),
    Field("source", keep=6),
    Field("consumer", keep=4),
    Field("replays", keep=5, justify="right"),
)


def letters_listing(found: Inspection, width: int) -> RenderableType:
    """The dead letters, one line each, their error and value under it; a ``replays``
    field if they were counted."""
    counted = found.replays is not None
    fields = LETTER_FIELDS if counted else LETTER_FIELDS[:-1]
    items = []
    for letter in found.letters:
        cells = [letter.address, letter.record.key, letter.source_address, letter.consumer]
        if counted:
            cells.append(str(found.replays_of(letter)))
        note = f"{letter.error}; value: {preview(letter.record.value)}"
        items.append(Item([Text(printable(cell)) for cell in cells], note=printable(note)))
    return listing("Dead letters", fields, items, width)


def letter_document(letter: DeadLetter, replays: int | None = None) -> dict[str, Any]:
    """A dead letter for ``--json``: where it is, where it came from, why, and its record
    whole (a value that is not UTF-8 with its bytes escaped as ``\\xNN``)."""
    record = letter.record
    document: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "source": letter.source_address,
        "consumer": letter.consumer,
        "error": letter.error,
        "key": printable(record.key),
        "headers": {printable(k): printable(v) for k, v in record.headers.items()},
        "value": record.value.decode("utf-8", "backslashreplace"),
    }
    if replays is not None:
        document["replays"] = replays
    return document


def inspection_document(found: Inspection) -> dict[str, Any]:
    """What ``dlq list --json`` prints: every dead letter, and how many per topic."""
    return {
        "letters": [letter_document(x, found.replays_of(x)) for x in found.letters],
        "counts": dict(sorted(found.counts().items())),
    }


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
