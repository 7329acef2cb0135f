"""The metrics one process exports (docs/OPERATIONS.md lists them and what to alert on).

Counters of what inputs became are added when the transaction that wrote them commits, so a
batch aborted and read again is counted once. Labels are identifiers chosen by the operator
(partner ids, quarantine reason codes, topics), never event content.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from broker.observe.systemd import notify

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass
class Health:
    """What readiness is made of: connected to Kafka, partitions assigned, state restored.

    Set from the event loop, read from the HTTP server's thread; each flag is one
    assignment, so no lock is needed for a consistent-enough answer.
    """

    connected: bool = False
    assigned: bool = False
    restored: bool = False
    failed: str | None = None
    """Set when the process is stopping because of an error: not healthy any more."""
    notified: bool = False
    """Whether systemd was told ``READY=1`` (sent once, when first ready)."""

    def ready(self) -> bool:
        """Whether the process is doing its work (connected, assigned, state restored)."""
        return self.failed is None and self.connected and self.assigned and self.restored

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        # Tell systemd (Type=notify units) the first time the process becomes ready.
        if name != "notified" and not getattr(self, "notified", True) and self.ready():
            super().__setattr__("notified", notify("READY=1") or True)

    def problems(self) -> list[str]:
        """Why the process is not ready (empty when it is)."""
        out = [] if self.failed is None else [f"failed: {self.failed}"]
        out += [f"not {n}" for n in ("connected", "assigned", "restored") if not getattr(self, n)]
        return out


@dataclass
class Metrics:
    """One process's metrics on a registry of its own; ``component`` labels nothing, it
    only names the process in the info metric (router, subscriber, inbox)."""

    component: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    health: Health = field(default_factory=Health)

    def __post_init__(self) -> None:
        r = self.registry
        self.inputs = Counter(
            "msht_inputs",
            "Inputs by what they became: decided, duplicate, quarantined (router); "
            "rendered, failed (subscriber).",
            ["outcome"],
            registry=r,
        )
        self.recipients = Counter(
            "msht_recipient_outcomes",
            "Per partner, what each decided event became: delivered, withheld or held.",
            ["partner", "outcome"],
            registry=r,
        )
        self.quarantined = Counter(
            "msht_quarantined", "Quarantined inputs by reason code.", ["reason"], registry=r
        )
        self.batch_seconds = Histogram(
            "msht_batch_seconds",
            "Time from the start of a batch's transaction to its commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "msht_end_to_end_seconds",
            "Time from the broker's append of an input to its outputs being committed "
            "(router) or its document written (subscriber).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "msht_consumer_lag",
            "Records of a partition not yet processed (last stable offset - next offset).",
            ["topic", "partition"],
            registry=r,
        )
        self.aborts = Counter(
            "msht_transaction_aborts",
            "Batches whose transaction was aborted (to be read again), by cause.",
            ["cause"],
            registry=r,
        )
        self.fenced = Counter(
            "msht_producer_fenced",
            "Transactional producers fenced (another instance took the partition, or Kafka "
            "aborted a transaction that outlived its timeout).",
            registry=r,
        )
        self.last_commit = Gauge(
            "msht_last_commit_timestamp_seconds",
            "Unix time of the last successful commit (0 before the first).",
            registry=r,
        )
        self.ready = Gauge(
            "msht_ready", "1 when connected, assigned and state restored.", registry=r
        )
        self.ready.set_function(lambda: 1.0 if self.health.ready() else 0.0)
        self.loaded = Info(
            "msht_loaded", "Versions of the configuration this process runs with.", registry=r
        )
        self.loaded.info({"component": self.component})
        self._lock = threading.Lock()

    def set_loaded(self, **versions: str) -> None:
        """Record the configuration versions in use (policy version, trust store digest)."""
        with self._lock:
            self.loaded.info({"component": self.component, **versions})

    def committed(self, now: float | None = None) -> None:
        """A transaction (or an offset commit) succeeded now."""
        self.last_commit.set(time.time() if now is None else now)

    def observe_end_to_end(self, appended_ms: int, now: float | None = None) -> None:
        """One input whose broker append time was ``appended_ms`` is done now."""
        if appended_ms <= 0:
            return  # no usable append time (a fake or a very old record format)
        seconds = (time.time() if now is None else now) - appended_ms / 1000
        self.end_to_end_seconds.observe(max(seconds, 0.0))


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of ``path`` ("missing" when it cannot be read):
    which trust store (or other file) a process loaded, comparable across hosts."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"
