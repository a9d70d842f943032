"""``--json``: what a command lists or shows, as one JSON document on standard output.

Printed with ``typer.echo``, not rich, so no line is wrapped or styled. Times are ISO 8601
(UTC) strings; amounts stay JSON numbers, written exactly as stored (``20.00``).
"""

import json
import re
from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any
from uuid import uuid4

import typer

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document instead of tables, for scripts.")
]


def echo_json(document: Any) -> None:
    """Print ``document`` as indented JSON; decimals as exact numbers."""
    mark = uuid4().hex

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{mark}{value}{mark}"
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Enum):
            return value.value
        if is_dataclass(value) and not isinstance(value, type):
            return asdict(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "backslashreplace")
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(document, indent=2, ensure_ascii=False, default=convert)
    typer.echo(re.sub(f'"{mark}([^"]*){mark}"', r"\1", text))
