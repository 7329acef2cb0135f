"""``/metrics``, ``/healthz`` and ``/readyz`` on a local port, in a background thread.

The server only reads the metrics; it runs in a daemon thread of its own so a scrape never
waits for the event loop (and a busy event loop never makes a scrape time out).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.errors import ConfigError
from broker.logging import get_logger
from broker.observe.metrics import Metrics
from broker.settings import Settings

_log = get_logger(__name__)


class MetricsServer:
    """A running metrics server; :meth:`close` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on (useful when it was asked for port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                failed = metrics.health.failed
                code = 200 if failed is None else 503
                self._send(code, b"ok\n" if failed is None else f"{failed}\n".encode())
            elif path == "/readyz":
                problems = metrics.health.problems()
                body = ("ready\n" if not problems else "; ".join(problems) + "\n").encode()
                self._send(200 if not problems else 503, body)
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the log

    return Handler


def serve_metrics(metrics: Metrics, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``metrics`` on ``host:port`` until :meth:`MetricsServer.close`.

    Raises :class:`ConfigError` when the port cannot be bound (in use, or not allowed).
    """
    try:
        server = ThreadingHTTPServer((host, port), _handler(metrics))
    except OSError as exc:
        raise ConfigError(
            f"MSHT_METRICS_PORT {port}: cannot listen on {host}:{port} ({exc.strerror})"
        ) from exc
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="msht-metrics", daemon=True)
    thread.start()
    _log.info("metrics serving", host=host, port=server.server_address[1])
    return MetricsServer(server, thread)


@contextmanager
def serving(settings: Settings, component: str) -> Iterator[Metrics]:
    """This process's metrics, served on ``MSHT_METRICS_HOST:MSHT_METRICS_PORT`` while the
    block runs (not served at all when ``MSHT_METRICS_PORT`` is unset)."""
    metrics = Metrics(component)
    if settings.metrics_port is None:
        yield metrics
        return
    server = serve_metrics(metrics, settings.metrics_port, settings.metrics_host)
    try:
        yield metrics
    finally:
        server.close()
