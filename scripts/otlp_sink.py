"""An OTLP/HTTP endpoint that takes spans and drops them, for measuring what tracing
costs the services (the bench with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing here).

    .venv/bin/python scripts/otlp_sink.py 4318 &

It answers every ``POST /v1/traces`` with 200 and an empty response, and on SIGTERM or
Ctrl-C prints how many export requests and bytes it took. It listens on 127.0.0.1.
"""

import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

taken = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", 0))
        self.rfile.read(size)
        taken["requests"] += 1
        taken["bytes"] += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    server = ThreadingHTTPServer(("127.0.0.1", port), Sink)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print(f"otlp sink: {taken['requests']} export requests, {taken['bytes']} bytes", flush=True)


if __name__ == "__main__":
    main()
