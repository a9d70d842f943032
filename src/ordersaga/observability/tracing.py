"""Traces: one saga is one trace, from the HTTP request to its last message.

Every span's context travels in the W3C ``traceparent`` header the wire contract puts
on every message, and through the outbox row that carries the message's headers: the
API's server span is the parent of the ``order-created`` it writes; a relay's producer
span (``publish <topic>``), the child of the span that wrote the row, replaces the
row's ``traceparent`` on the record it sends; a consumer's span (``process <topic>``,
one per message, lasting the batch's transaction) is the child of the record's
producer span, and the parent of what its handler sends; a deadline's span is the
child of the span that started the saga. A ``traceparent`` a client sends with its
request makes the saga a part of the client's trace.

Exporters come from the standard ``OTEL_*`` variables only (:func:`tracing_from_env`).
With none configured nothing is traced: :data:`NO_TRACING`'s spans are a shared
do-nothing object that passes the incoming ``traceparent`` on unchanged, so a message
still carries its saga's trace to a system that does trace.
"""

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

Attributes = Mapping[str, str | int | bool]
"""A span's attributes; built only for a span that records (see :meth:`Tracing.start`)."""

EXPORTERS: Final = ("otlp", "console", "none")
"""The values ``OTEL_TRACES_EXPORTER`` may list."""


def new_traceparent() -> str:
    """A W3C ``traceparent`` of a new, sampled trace."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def parse_traceparent(header: str | None) -> SpanContext | None:
    """The span context ``header`` names, or None when it is no valid W3C ``traceparent``
    (a version ``00`` header, or a later version's first four fields)."""
    if not header:
        return None
    parts = header.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    if parts[0] == "00" and len(parts) != 4:
        return None
    version, trace_id, span_id, flags = parts[:4]
    if len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        return None
    try:
        ids = int(version, 16), int(trace_id, 16), int(span_id, 16), int(flags, 16)
    except ValueError:
        return None
    if not ids[1] or not ids[2]:
        return None
    return SpanContext(ids[1], ids[2], is_remote=True, trace_flags=TraceFlags(ids[3] & 1))


def format_traceparent(span_context: SpanContext) -> str:
    """The W3C ``traceparent`` of ``span_context``."""
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags):02x}"
    )


def origin_traceparent(client_header: str | None) -> str:
    """The ``traceparent`` a saga starts from: the client's, when it sent a valid one, so
    the saga joins the client's trace; otherwise that of a new trace."""
    if client_header is None or parse_traceparent(client_header) is None:
        return new_traceparent()
    return client_header.strip()


class Traced(Protocol):
    """A span begun by :meth:`Tracing.start`."""

    @property
    def traceparent(self) -> str:
        """What the messages this span causes carry as their ``traceparent``."""

    @property
    def recording(self) -> bool:
        """Whether the span is recorded (worth giving attributes to)."""

    def set(self, attributes: Attributes) -> None:
        """Add ``attributes`` (call only when :attr:`recording`)."""

    def rename(self, name: str) -> None:
        """Call the span ``name`` (once what it did is known: an HTTP request's route)."""

    def end(self, error: BaseException | None = None, *, end_time: int | None = None) -> None:
        """End the span; with ``error``, as failed."""


class _Untraced:
    """Tracing off: no span; messages carry on the ``traceparent`` they were caused by."""

    __slots__ = ("traceparent",)
    recording = False

    def __init__(self, traceparent: str) -> None:
        self.traceparent = traceparent

    def set(self, attributes: Attributes) -> None:
        del attributes

    def rename(self, name: str) -> None:
        del name

    def end(self, error: BaseException | None = None, *, end_time: int | None = None) -> None:
        del error, end_time


class _Traced:
    __slots__ = ("_span", "recording", "traceparent")

    def __init__(self, span: Span) -> None:
        self._span = span
        self.recording = span.is_recording()
        self.traceparent = format_traceparent(span.get_span_context())

    def set(self, attributes: Attributes) -> None:
        self._span.set_attributes(attributes)

    def rename(self, name: str) -> None:
        self._span.update_name(name)

    def end(self, error: BaseException | None = None, *, end_time: int | None = None) -> None:
        if error is not None and self.recording:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self._span.end(end_time=end_time)


class Tracing:
    """Where one service replica's spans go; :data:`NO_TRACING` when nowhere.

    Made in the wiring (:func:`tracing_from_env`, or :func:`tracing_to` in a test) and
    handed to the replica's units of work, relay and API; :meth:`shutdown` exports what
    is left when the replica stops.
    """

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("ordersaga") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start(
        self,
        name: str,
        kind: SpanKind,
        parent: str | None,
        attributes: Callable[[], Attributes] | None = None,
        *,
        start_time: int | None = None,
    ) -> Traced:
        """Begin span ``name`` as the child of the ``traceparent`` ``parent`` (a root if
        there is none, or it is not valid); ``attributes`` is called only if it records."""
        if self._tracer is None:
            return _Untraced(parent or new_traceparent())
        span = self._tracer.start_span(name, _context_of(parent), kind=kind, start_time=start_time)
        traced = _Traced(span)
        if attributes is not None and traced.recording:
            traced.set(attributes())
        return traced

    @contextmanager
    def current(self, traced: Traced) -> Iterator[None]:
        """Make ``traced`` the current span while inside (for code that reads
        :func:`current_traceparent`: the API's routes)."""
        if not isinstance(traced, _Traced):
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(traced._span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def force_flush(self) -> None:
        if self._provider is not None:
            self._provider.force_flush()

    def shutdown(self) -> None:
        """Export the spans still held, then stop exporting."""
        if self._provider is not None:
            self._provider.shutdown()


NO_TRACING: Final = Tracing()
"""Tracing off: no span is made, nothing is exported."""


def current_traceparent() -> str | None:
    """The ``traceparent`` of the span :meth:`Tracing.current` made current, if any."""
    span_context = trace.get_current_span().get_span_context()
    return format_traceparent(span_context) if span_context.is_valid else None


def _context_of(parent: str | None) -> otel_context.Context | None:
    span_context = parse_traceparent(parent)
    if span_context is None:
        # A root, not a child of whatever the caller's context holds.
        return otel_context.Context()
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context), otel_context.Context())


class TracingConfigError(ValueError):
    """An ``OTEL_*`` variable asks for what this system cannot do."""


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters ``environ`` asks for: ``OTEL_TRACES_EXPORTER``'s list, or ``otlp``
    when it is unset and an OTLP endpoint is given; none when ``OTEL_SDK_DISABLED`` is
    true. Raises :class:`TracingConfigError` naming a value it does not know."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    listed = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not listed:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ["otlp"] if any(environ.get(e) for e in endpoints) else []
    names = [n.strip().lower() for n in listed.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={listed!r}: unknown exporter {unknown[0]!r}; "
            f"use one or more of {', '.join(EXPORTERS)}"
        )
    return [n for n in names if n != "none"]


def check_tracing_env(environ: Mapping[str, str]) -> None:
    """Raise :class:`TracingConfigError`, saying what to change, if the ``OTEL_*``
    variables of ``environ`` ask for what this system cannot do."""
    if "otlp" in exporter_names(environ):
        _check_otlp_protocol(environ)


def _check_otlp_protocol(environ: Mapping[str, str]) -> None:
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol.strip() != "http/protobuf":
        raise TracingConfigError(
            f"OTLP protocol {protocol!r} is not supported; use http/protobuf "
            "(OTEL_EXPORTER_OTLP_PROTOCOL), the collector's port 4318"
        )


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    _check_otlp_protocol(environ)
    # Imported only when used: the exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: from OTEL_*


def replica_resource(service: str, replica: str) -> Resource:
    """Who the spans are of: ``service.name`` ``ordersaga-<service>``, the replica as the
    instance; ``OTEL_RESOURCE_ATTRIBUTES`` adds to them."""
    return Resource.create(
        {
            SERVICE_NAME: f"ordersaga-{service}",
            "service.namespace": "ordersaga",
            SERVICE_INSTANCE_ID: f"{service}-{replica}",
        }
    )


def tracing_to(
    exporters: Sequence[SpanExporter], service: str, replica: str, *, batch: bool = True
) -> Tracing:
    """Tracing of replica ``replica`` of ``service`` to ``exporters``, in batches
    (``OTEL_BSP_*``) or, with ``batch`` false, span by span as each ends. The sampler is
    ``OTEL_TRACES_SAMPLER``'s (default: parent-based, always on)."""
    if not exporters:
        return NO_TRACING
    provider = TracerProvider(resource=replica_resource(service, replica))
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    return Tracing(provider)


def tracing_from_env(service: str, replica: str, environ: Mapping[str, str]) -> Tracing:
    """Tracing as the ``OTEL_*`` variables of ``environ`` configure it; :data:`NO_TRACING`
    when they configure no exporter."""
    names = exporter_names(environ)
    return tracing_to([_exporter(n, environ) for n in names], service, replica)


def messaging_attributes(
    topic: str,
    headers: Mapping[str, str],
    key: str,
    more: Mapping[str, str | int | bool | None] | None = None,
) -> dict[str, str | int | bool]:
    """The OpenTelemetry messaging attributes of a record of ``topic`` with ``headers``,
    its saga's id among them; ``more`` adds to them (None values left out)."""
    attributes: dict[str, str | int | bool] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.kafka.message.key": key,
    }
    for header, attribute in _HEADER_ATTRIBUTES:
        value = headers.get(header)
        if value:
            attributes[attribute] = value
    attributes.update({k: v for k, v in (more or {}).items() if v is not None})
    return attributes


_HEADER_ATTRIBUTES: Final = (
    ("message-id", "messaging.message.id"),
    ("message-type", "ordersaga.message_type"),
    ("saga-id", "ordersaga.saga_id"),
    ("causation-id", "ordersaga.causation_id"),
)
