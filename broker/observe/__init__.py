"""Observability of the long-running processes: Prometheus metrics, health and readiness.

:mod:`broker.observe.metrics` holds one process's metrics (a registry of its own, so several
routers in one test process do not collide); :mod:`broker.observe.server` serves them with
``/healthz`` and ``/readyz`` on a local port (``MSHT_METRICS_PORT``).
"""

from broker.observe.metrics import Health, Metrics
from broker.observe.server import MetricsServer, serve_metrics, serving

__all__ = ["Health", "Metrics", "MetricsServer", "serve_metrics", "serving"]
