"""Serving a process's metrics on a port of their own (``/metrics``, Prometheus' text format).

prometheus-client's own server, on a thread of its own: a scrape never waits for the
event loop, and costs the services nothing while nobody scrapes.
"""

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

Readiness = Callable[[], str | None]
"""Why the replica is not ready, or ``None``; called by ``/readyz`` from the server's
thread, so it only reads state the replica keeps (never the database or the loop)."""


class MetricsPortInUse(OSError):
    """The metrics port is taken; the message says which and how to choose another."""

    def __init__(self, host: str, port: int, reason: OSError) -> None:
        super().__init__(
            f"metrics port {port} on {host} is in use ({reason.strerror or reason}): "
            "another ordersaga process or another program listens there. Stop it, or "
            "choose another base port with ORDERSAGA_METRICS_PORT (0 serves none)."
        )
        self.host = host
        self.port = port


@dataclass
class MetricsServer:
    """A running metrics server; :meth:`close` stops it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, readiness: Readiness | None = None
) -> MetricsServer:
    """Serve ``registry`` at ``/metrics`` on ``host:port`` (0: a free port) until closed,
    with ``/healthz`` (the process answers) and ``/readyz`` (200 while ``readiness`` has
    nothing to say, else 503 with its reason): the probes of a replica that has no API.
    :class:`MetricsPortInUse` if the port is taken."""
    app = _app(make_wsgi_app(registry), readiness or (lambda: None))
    try:
        server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    except OSError as error:
        raise MetricsPortInUse(host, port, error) from None
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(host, server.server_port, server, thread)


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _app(metrics: Wsgi, readiness: Readiness) -> Wsgi:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            problem = readiness()
            if problem is None:
                return _json(start_response, "200 OK", {"status": "ok"})
            return _json(start_response, "503 Service Unavailable", {"reason": problem})
        return metrics(environ, start_response)

    return app


def _json(start_response: Callable[..., Any], status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class _Quiet(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
