"""Issue 19's targets, each next to the figure a run measured for it.

Targets are goals, not assertions: a missed target is printed as missed, by how much, and
the run still succeeds. Every figure is read from the results dict (``results.json``), so
``python -m benchmarks.report`` prints the same table from a saved run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One goal of issue 19 and what this run measured for it (``None``: not measured)."""

    name: str
    figure: float | None
    goal: float
    unit: str
    at_most: bool
    """True: the figure should be at most ``goal``; False: at least."""
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the figure meets the goal (``None`` when not measured)."""
        if self.figure is None:
            return None
        return self.figure <= self.goal if self.at_most else self.figure >= self.goal

    def line(self) -> str:
        """``name  figure  target  met/missed by``."""
        sign = "<=" if self.at_most else ">="
        goal = f"{sign} {self.goal:,.{_digits(self.goal)}f} {self.unit}"
        if self.figure is None:
            return f"  {self.name:<48} {'-':>12}   {goal:<22} not measured"
        figure = f"{self.figure:,.{_digits(self.goal)}f}"
        if self.met:
            verdict = "met"
        elif self.at_most:
            verdict = f"MISSED ({self.figure / self.goal:.1f}x the target)"
        else:
            verdict = f"MISSED ({self.figure / self.goal * 100:.0f}% of the target)"
        note = f"  [{self.note}]" if self.note else ""
        return f"  {self.name:<48} {figure:>12}   {goal:<22} {verdict}{note}"


def _digits(goal: float) -> int:
    return 0 if goal >= 100 else (1 if goal >= 1 else 2)


def _router_cpu_ms(results: Mapping[str, Any]) -> float | None:
    runs = results.get("router", {}).get("throughput", [])
    if not runs:
        return None
    cpu_ms: float = runs[0]["cpu_seconds_per_1000_events"]
    return cpu_ms


def _latency(results: Mapping[str, Any], rate: float) -> float | None:
    for run in results.get("router", {}).get("latency", []):
        if run["offered_rate"] == rate and "all" in run["latency_ms"]:
            p99: float = run["latency_ms"]["all"]["p99_ms"]
            return p99
    return None


def _first(items: Sequence[Mapping[str, Any]], key: str) -> float | None:
    return float(items[0][key]) if items else None


def issue19_targets(results: Mapping[str, Any]) -> list[Target]:
    """Each target of issue 19 with the figure of ``results`` (see benchmarks/README.md)."""
    cpu_ms = _router_cpu_ms(results)
    floor = results.get("floor")
    ratio = cpu_ms * 1000 / floor["total_us"] if cpu_ms is not None and floor else None
    router = results.get("router", {})
    throughput = router.get("throughput", [])
    sustained = _first(throughput, "sustained_events_per_second")
    io = [i for i in results.get("io", []) if i["transactional"]]
    fraction = sustained / io[0]["events_per_second"] if sustained and io else None
    publisher = results.get("publisher")
    audit = results.get("audit_verify")
    return [
        Target("router CPU per referral (3 views, 1 sealed)", cpu_ms, 0.7, "ms", at_most=True),
        Target(
            "router CPU per referral / primitive floor",
            ratio,
            1.5,
            "x",
            at_most=True,
            note=f"floor {floor['total_us']:.0f} µs" if floor else "",
        ),
        Target(
            "router sustained throughput, 1 process",
            sustained,
            1300,
            "/s",
            at_most=False,
            note=f"{fraction * 100:.0f}% of the transactional I/O ceiling" if fraction else "",
        ),
        Target("latency p99 at 100/s offered", _latency(results, 100.0), 50, "ms", at_most=True),
        Target("latency p99 at 200/s offered", _latency(results, 200.0), 100, "ms", at_most=True),
        Target(
            "msht publish, 10,000-row CSV",
            publisher["events_per_second"] if publisher else None,
            2000,
            "/s",
            at_most=False,
            note=f"{publisher['rows']:,} rows" if publisher and publisher["rows"] != 10_000 else "",
        ),
        Target(
            "msht audit verify",
            audit["records_per_second"] if audit else None,
            20_000,
            "records/s",
            at_most=False,
        ),
    ]


def target_lines(results: Mapping[str, Any]) -> list[str]:
    """The targets table: one line per target of issue 19."""
    return [
        "Issue 19 targets (figure from this run, target, verdict)",
        *(t.line() for t in issue19_targets(results)),
    ]
