"""Measurements: latency percentiles, sustained rates, and a process's CPU and memory from /proc.

Everything here is pure or reads only ``/proc/<pid>``; nothing talks to Kafka.

* CPU seconds are ``utime + stime`` of ``/proc/<pid>/stat`` (fields 14 and 15, in clock
  ticks of ``SC_CLK_TCK``): time the process spent on a CPU, user and kernel, all threads.
* Peak memory is ``VmHWM`` of ``/proc/<pid>/status`` — the high-water mark of the resident
  set, kept by the kernel, so no peak is missed between two samples. ``VmRSS`` is the
  current resident set.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by the nearest-rank method.

    Nearest rank always returns a value that was measured (never an interpolation), which
    is what a latency figure should be. Raises ``ValueError`` on an empty sequence or a
    ``q`` outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q}: must be within 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in milliseconds over ``count`` events."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def summarise_latencies(seconds: Sequence[float]) -> LatencySummary:
    """p50 / p95 / p99 / max of latencies given in seconds, reported in milliseconds."""
    return LatencySummary(
        count=len(seconds),
        p50_ms=percentile(seconds, 50) * 1e3,
        p95_ms=percentile(seconds, 95) * 1e3,
        p99_ms=percentile(seconds, 99) * 1e3,
        max_ms=max(seconds) * 1e3,
    )


def sustained_rate(times: Sequence[float], warmup_fraction: float = 0.1) -> float:
    """Events per second between the end of the warm-up and the last event.

    ``times`` are the completion times of the events (any clock, seconds). The first
    ``warmup_fraction`` of them is the warm-up (connections, group join, caches); the rate
    is the number of events after it divided by the time they took.
    """
    if len(times) < 2:
        raise ValueError("a sustained rate needs at least two event times")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction={warmup_fraction}: must be within 0..1 (exclusive)")
    ordered = sorted(times)
    first = min(int(len(ordered) * warmup_fraction), len(ordered) - 2)
    span = ordered[-1] - ordered[first]
    if span <= 0:
        raise ValueError("all events completed at the same instant: no rate can be measured")
    return (len(ordered) - 1 - first) / span


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process's counters."""

    at: float
    """``time.monotonic()`` when it was taken."""
    cpu_seconds: float
    rss_kb: int
    hwm_kb: int


def parse_stat_cpu(stat: str) -> float:
    """CPU seconds (user + system) from the text of ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may hold spaces or parentheses
    itself, so the fields are counted from the last ``)``.
    """
    rest = stat[stat.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / CLOCK_TICKS


def parse_status_kb(status: str, name: str) -> int:
    """A ``kB`` value (e.g. ``VmHWM``) from the text of ``/proc/<pid>/status``."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    raise ValueError(f"/proc status has no {name} line")


def read_proc(pid: int) -> ProcSample:
    """Current CPU seconds, resident set and its high-water mark of process ``pid``.

    Raises ``OSError`` when the process is gone (or ``ProcessLookupError`` on some kernels).
    """
    base = Path("/proc") / str(pid)
    stat = (base / "stat").read_text()
    status = (base / "status").read_text()
    return ProcSample(
        at=time.monotonic(),
        cpu_seconds=parse_stat_cpu(stat),
        rss_kb=parse_status_kb(status, "VmRSS"),
        hwm_kb=parse_status_kb(status, "VmHWM"),
    )


@dataclass
class ProcessMonitor:
    """Samples a process in a background thread every ``interval`` seconds.

    A thread (not an asyncio task) so a busy event loop in the harness does not delay the
    samples. ``last`` is the newest sample taken while the process was alive.
    """

    pid: int
    interval: float = 0.5
    samples: list[ProcSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessMonitor:
        """Take a first sample and start sampling."""
        self.sample()
        self._thread = threading.Thread(target=self._loop, name=f"monitor-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def sample(self) -> ProcSample | None:
        """Take one sample now (``None`` if the process is gone)."""
        try:
            reading = read_proc(self.pid)
        except (OSError, ValueError):
            return None
        self.samples.append(reading)
        return reading

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.sample() is None:
                return

    def stop(self) -> None:
        """Take a last sample and stop the thread."""
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def last(self) -> ProcSample:
        """The newest sample."""
        if not self.samples:
            raise ValueError(f"process {self.pid} was never sampled")
        return self.samples[-1]

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds used between two monotonic times (nearest samples inside the span)."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            raise ValueError("fewer than two samples in the span: sample more often")
        return inside[-1].cpu_seconds - inside[0].cpu_seconds
