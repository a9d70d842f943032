"""Structured logs: one event per line, with what it is about.

Every record gets the replica's service and name, and whatever the code it runs in
bound with :func:`log_context`: the saga id, order id, trace id, message id and
topic/partition/offset of the message being handled, the consumer group. A
:class:`ContextFilter` on the handler adds them to the record, and one of two
formatters writes it:

- :class:`JsonFormatter`: one JSON object per line, for a log collector (the default
  when standard error is not a terminal);
- :class:`ConsoleFormatter`: a readable line, the context after the message as
  ``key=value`` (the default on a terminal).

The context lives in a :class:`~contextvars.ContextVar`, so a task started inside a
:func:`log_context` block carries its fields (a replica's consumer, relay and loops
carry its service and name), and concurrent tasks never see each other's.
"""

import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, Literal, TextIO

import orjson

LogFormat = Literal["json", "console"]

FIELDS: Final = (
    "saga_id",
    "order_id",
    "trace_id",
    "message_id",
    "topic",
    "partition",
    "offset",
    "group",
)
"""The context fields, in the order a console line shows them."""

Value = str | int

_context: ContextVar[Mapping[str, Value]] = ContextVar(
    "ordersaga_log_context", default=MappingProxyType({})
)


def log_context(**fields: Value | None) -> AbstractContextManager[None]:
    """Add ``fields`` (None ones left out) to every record logged inside, and in the
    tasks started inside."""
    return _Bound({k: v for k, v in fields.items() if v is not None})


class _Bound:
    """A :func:`log_context` block. A class rather than a generator: it is entered for
    every message handled, and a generator's context manager costs several times more."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: Mapping[str, Value]) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **self._fields})

    def __exit__(self, *exc_info: object) -> None:
        _context.reset(self._token)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent``, or None."""
    if not traceparent or traceparent.count("-") < 3:
        return None
    return traceparent.split("-", 2)[1]


class ContextFilter(logging.Filter):
    """Gives every record ``service``, ``replica`` (the context's, else these) and the
    bound context fields, as :attr:`logging.LogRecord` attributes ``service``,
    ``replica`` and ``context``."""

    def __init__(self, service: str, replica: str) -> None:
        super().__init__()
        self.service = service
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        context = dict(_context.get())
        record.service = context.pop("service", self.service)
        record.replica = context.pop("replica", self.replica)
        record.context = context
        return True


def _fields(record: logging.LogRecord) -> Mapping[str, Value]:
    context: Mapping[str, Value] = getattr(record, "context", {})
    return context


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``service``,
    ``replica``, ``logger``, ``message``, the context fields, and ``exception`` when
    there is one."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "replica": getattr(record, "replica", None),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(event, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS.mmm LEVEL service-replica logger: message  key=value ...``."""

    def __init__(self, *, show_replica: bool = True) -> None:
        super().__init__()
        self.show_replica = show_replica

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        who = f" {getattr(record, 'replica', '')}" if self.show_replica else ""
        line = f"{when} {record.levelname:<7}{who} {record.name}: {record.getMessage()}"
        fields = _fields(record)
        shown = [f"{k}={fields[k]}" for k in FIELDS if k in fields]
        if shown:
            line += "  " + " ".join(shown)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def log_format_for(wanted: LogFormat | None, stream: TextIO) -> LogFormat:
    """``wanted``, or else console on a terminal and JSON elsewhere."""
    if wanted is not None:
        return wanted
    return "console" if stream.isatty() else "json"


def log_handler(
    wanted: LogFormat | None,
    service: str,
    replica: str,
    stream: TextIO,
    show_replica: bool = True,
) -> logging.Handler:
    """A handler writing to ``stream`` in format ``wanted`` (:func:`log_format_for`),
    records given ``service``, ``replica`` and the bound context."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter(service, replica))
    chosen = log_format_for(wanted, stream)
    handler.setFormatter(
        JsonFormatter() if chosen == "json" else ConsoleFormatter(show_replica=show_replica)
    )
    return handler


def configure_logging(
    wanted: LogFormat | None,
    service: str,
    replica: str,
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    show_replica: bool = True,
) -> logging.Handler:
    """Log the root logger's records at ``level`` and above to ``stream`` (standard
    error), one per line, in format ``wanted`` (:func:`log_format_for`); returns the
    handler, which replaces any the root logger had."""
    handler = log_handler(wanted, service, replica, stream or sys.stderr, show_replica)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
