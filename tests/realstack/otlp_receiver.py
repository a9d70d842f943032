"""An OTLP/HTTP receiver for a test: the spans the services export, decoded.

It listens on 127.0.0.1 (a free port), answers ``POST /v1/traces`` as a collector does,
and keeps every span of every ``ExportTraceServiceRequest`` (protobuf, gzipped or not).
"""

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.traces import SpanView


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[SpanView] = []
        self.failed: list[SpanView] = []
        """Spans that ended with an error (an attempt rolled back and done again)."""
        self.requests = 0
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[SpanView]:
        with self._lock:
            return list(self._spans)

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans, failed = [], []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "").removeprefix("ordersaga-")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    saga = next(
                        (
                            a.value.string_value
                            for a in span.attributes
                            if a.key == "ordersaga.saga_id"
                        ),
                        None,
                    )
                    view = SpanView(
                        service=service,
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        saga_id=saga,
                    )
                    error = span.status.code == Status.StatusCode.STATUS_CODE_ERROR
                    (failed if error else spans).append(view)
        with self._lock:
            self.requests += 1
            self._spans += spans
            self.failed += failed


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A running :class:`Receiver`, stopped on the way out."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            receiver.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
