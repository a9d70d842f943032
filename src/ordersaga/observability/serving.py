"""Serving a process's metrics on a port of their own (``/metrics``, Prometheus' text format).

prometheus-client's own server, on a thread of its own: a scrape never waits for the
event loop, and costs the services nothing while nobody scrapes.
"""

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


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


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (0: a free port) until closed;
    :class:`MetricsPortInUse` if the port is taken."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise MetricsPortInUse(host, port, error) from None
    return MetricsServer(host, server.server_port, server, thread)
