"""Phase (c): the real router (``msht router`` in its own process) on the real local Kafka.

Two kinds of run, each on a fresh exchange (its own topics, consumer group and
transactional ids, so the dedup window and audit chains start empty):

* **throughput** — all N referrals are on the ingress topic before the router starts; the
  router drains them with no subscriber competing for the CPU. The sustained rate comes
  from the audit records' Kafka timestamps (the router writes one audit record per input,
  in the same transaction as the deliveries), the first 10 % being the warm-up. The
  router's CPU seconds and peak resident memory come from ``/proc/<pid>``.
* **latency** — the router and the three partners' subscribers (``benchmarks.partner``,
  each its own process) run first; 50 warm-up referrals go through; then N referrals are
  published at a fixed offered rate (or as fast as possible: saturation). Latency is the
  time from handing a referral to the producer to the moment each partner's subscriber has
  rendered its document, per partner and over all deliveries.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from benchmarks.exchange import (
    PARTNERS,
    BenchExchange,
    Keyring,
    create_exchange,
    drop_exchange,
)
from benchmarks.load import Prepared, publish
from benchmarks.measure import (
    LatencySummary,
    ProcessMonitor,
    ProcSample,
    summarise_latencies,
    sustained_rate,
)
from broker.audit import parse_record
from broker.errors import AuditChainError, TransportError
from broker.kafka import clients as kafka
from broker.settings import Settings

Progress = Callable[[str], None]
WARMUP_EVENTS = 50
STAGES = ("published -> produced by router", "produced -> fetched", "fetched -> rendered")
"""The latency's three stages (see :attr:`RouterRun.stages`)."""


class RouterRunError(TransportError):
    """The router or a subscriber process failed, or did not finish in time."""


@dataclass
class RouterRun:
    """What one run of the router measured."""

    kind: str
    """``throughput`` or ``latency``."""
    events: int
    offered_rate: float | None
    """Events/s offered (latency runs); ``None`` = as fast as possible."""
    sustained_eps: float
    cpu_seconds: float
    """Router CPU (user + system) from its first routed record to its last."""
    cpu_per_1000: float
    peak_rss_mb: float
    rss_mb_at: list[tuple[int, float]] = field(default_factory=list)
    """(records routed so far, resident MB) along the run: memory against events seen."""
    audit_kinds: dict[str, int] = field(default_factory=dict)
    latency: dict[str, LatencySummary] = field(default_factory=dict)
    """Per partner, and ``all`` over every delivery."""
    missing: dict[str, int] = field(default_factory=dict)
    """Deliveries a partner did not render within the time allowed."""
    routers: int = 1
    """Router processes in the consumer group (CPU figures are their sum)."""
    partitions: int = 1
    """Partitions of the ingress topic."""
    stages: dict[str, LatencySummary] = field(default_factory=dict)
    """Where the latency went, over every delivery: published -> produced by the router
    (ingress fetch, processing, sends), produced -> fetched by the subscriber (transaction
    commit, read_committed fetch), fetched -> rendered (the subscriber's own work)."""
    subscriber_cpu_ms: dict[str, float] = field(default_factory=dict)
    """Each subscriber process's CPU ms per record it handled after the warm-up."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "events": self.events,
            "offered_rate": self.offered_rate,
            "sustained_events_per_second": self.sustained_eps,
            "cpu_seconds": self.cpu_seconds,
            "cpu_seconds_per_1000_events": self.cpu_per_1000,
            "peak_rss_mb": self.peak_rss_mb,
            "rss_mb_at_records": [list(x) for x in self.rss_mb_at],
            "audit_kinds": self.audit_kinds,
            "latency_ms": {k: v.as_dict() for k, v in self.latency.items()},
            "missing": self.missing,
            "routers": self.routers,
            "partitions": self.partitions,
            "stages_ms": {k: v.as_dict() for k, v in self.stages.items()},
            "subscriber_cpu_ms_per_event": self.subscriber_cpu_ms,
        }


def _child_env(exchange: BenchExchange) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSHT_")}
    env.update(exchange.env())
    env["PYTHONUNBUFFERED"] = "1"
    return env


def router_command(exchange: BenchExchange, profile: Path | None, index: int = 0) -> list[str]:
    """The command line of ``msht router`` (under pyinstrument when ``profile`` is given);
    ``index`` numbers the router processes of one exchange."""
    msht = str(Path(sys.executable).with_name("msht"))
    args = [
        msht,
        "router",
        "--policy",
        str(exchange.policy_path),
        "--instance",
        f"bench-{exchange.tag}" + (f"-{index}" if index else ""),
    ]
    if profile is None:
        return args
    return [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile), *args]


@dataclass
class _Router:
    process: subprocess.Popen[bytes]
    log: Path
    monitor: ProcessMonitor

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, sig: int = signal.SIGTERM, limit_s: float = 60.0) -> int:
        self.monitor.sample()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(limit_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.monitor.stop()
        return self.process.returncode


def _start_router(
    exchange: BenchExchange, workdir: Path, profile: Path | None, index: int = 0
) -> _Router:
    log = workdir / f"router-{exchange.tag}-{index}.log"
    handle: IO[bytes] = log.open("wb")
    process = subprocess.Popen(
        router_command(exchange, profile, index),
        env=_child_env(exchange),
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    handle.close()
    return _Router(process, log, ProcessMonitor(process.pid, interval=0.25).start())


@dataclass
class _AuditWatch:
    """Counts the router's audit records as they are committed."""

    times: list[float] = field(default_factory=list)
    """Kafka timestamps (s) of the audit records: when the router produced them."""
    kinds: Counter[str] = field(default_factory=Counter)
    first_seen: ProcSample | None = None
    rss_mb_at: list[tuple[int, float]] = field(default_factory=list)
    keep: bool = False
    """Keep the records' values (for timing ``msht audit verify`` on them)."""
    values: list[bytes] = field(default_factory=list)
    others_first_seen: list[ProcSample | None] = field(default_factory=list)
    """The other router processes' samples when the first record was seen (scale-out)."""


async def _watch_audit(
    exchange: BenchExchange,
    router: _Router,
    target: int,
    watch: _AuditWatch,
    *,
    limit_s: float,
    progress: Progress,
    what: str,
    others: Sequence[_Router] = (),
) -> None:
    """Return once ``target`` audit records were committed; raise if a router dies."""
    settings = exchange.settings
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        # The exchange created the audit topic with this many partitions (a consumer that
        # subscribed to nothing has no metadata for it yet).
        consumer.assign(
            [TopicPartition(settings.audit_topic, p) for p in range(exchange.partitions)]
        )
        deadline = time.monotonic() + limit_s
        last_report = time.monotonic()
        next_rss = max(target // 10, 1)
        while len(watch.times) < target:
            for each in (router, *others):
                if each.process.poll() is not None:
                    raise RouterRunError(
                        f"a router exited with code {each.process.returncode} after "
                        f"{len(watch.times):,} of {target:,} records; its log ends:\n"
                        f"{each.tail()}"
                    )
            if time.monotonic() > deadline:
                raise RouterRunError(
                    f"the router routed {len(watch.times):,} of {target:,} records in "
                    f"{limit_s:.0f}s; its log ends:\n{router.tail()}"
                )
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            for records in batches.values():
                for rec in records:
                    watch.times.append(rec.timestamp / 1000)
                    if watch.keep and rec.value is not None:
                        watch.values.append(rec.value)
                    try:
                        watch.kinds[parse_record(rec.value).kind] += 1
                    except AuditChainError:
                        watch.kinds["unreadable"] += 1
            if watch.times and watch.first_seen is None:
                watch.first_seen = router.monitor.sample()
                watch.others_first_seen = [other.monitor.sample() for other in others]
            if len(watch.times) >= next_rss:
                sample = router.monitor.sample()
                if sample is not None:
                    watch.rss_mb_at.append((len(watch.times), sample.rss_kb / 1024))
                next_rss += max(target // 10, 1)
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                progress(f"{what}: router has routed {len(watch.times):,}/{target:,}")
    finally:
        await consumer.stop()


def check_routed(what: str, kinds: Mapping[str, int]) -> None:
    """Raise :class:`RouterRunError` unless every audit record of the run is a decision: a
    quarantined input costs a fraction of a routed one, so a run that quarantined some
    would report figures that do not measure routing."""
    other = {k: n for k, n in kinds.items() if k != "decision" and n}
    if other:
        raise RouterRunError(
            f"{what}: the router did not route every input (audit records {dict(kinds)}); "
            "the figures would not measure routing"
        )


def _finish(
    kind: str,
    events: int,
    rate: float | None,
    router: _Router,
    watch: _AuditWatch,
    counted: int,
    others: Sequence[_Router] = (),
) -> RouterRun:
    """Router figures from the audit times and /proc samples of one run."""
    end = router.monitor.sample() or router.monitor.last
    start = watch.first_seen or router.monitor.samples[0]
    cpu = end.cpu_seconds - start.cpu_seconds
    for other, first in zip(others, watch.others_first_seen or [None] * len(others), strict=True):
        other_end = other.monitor.sample() or other.monitor.last
        cpu += other_end.cpu_seconds - (first or other.monitor.samples[0]).cpu_seconds
    check_routed(f"{kind} run over {events:,}", watch.kinds)
    return RouterRun(
        kind=kind,
        events=events,
        offered_rate=rate,
        sustained_eps=sustained_rate(watch.times[-counted:]),
        cpu_seconds=cpu,
        cpu_per_1000=cpu / max(len(watch.times) - 1, 1) * 1000,
        peak_rss_mb=end.hwm_kb / 1024,
        rss_mb_at=watch.rss_mb_at,
        audit_kinds=dict(watch.kinds),
        routers=1 + len(others),
    )


async def throughput_run(
    base: Settings,
    keyring: Keyring,
    events: Sequence[Prepared],
    workdir: Path,
    *,
    partitions: int,
    progress: Progress,
    profile: Path | None = None,
    routers: int = 1,
    keep_audit: list[bytes] | None = None,
) -> RouterRun:
    """Pre-load ``events`` on ingress, then time ``routers`` router processes (one
    consumer group) draining them. With ``keep_audit`` the audit records are appended to it."""
    exchange = await create_exchange(base, keyring, workdir, partitions=partitions)
    try:
        label = f"throughput {len(events):,}" + (
            f" ({routers} routers, {partitions} partitions)" if routers > 1 else ""
        )
        progress(f"{label}: pre-loading the ingress topic {exchange.ingress}")
        await publish(exchange.settings, exchange.ingress, events, progress=progress)
        progress(f"{label}: starting msht router" + (" under pyinstrument" if profile else ""))
        # Started together: they join the group in its first generation or soon after (the
        # first rebalance falls in the warm-up the sustained rate leaves out).
        started = [_start_router(exchange, workdir, profile, i) for i in range(routers)]
        router, others = started[0], started[1:]
        watch = _AuditWatch(keep=keep_audit is not None)
        try:
            await _watch_audit(
                exchange,
                router,
                len(events),
                watch,
                limit_s=120 + len(events) / 50,
                progress=progress,
                what=label,
                others=others,
            )
        finally:
            for other in others:
                other.stop()
            code = router.stop(signal.SIGINT if profile else signal.SIGTERM)
        if code != 0:
            progress(f"{label}: router exit code {code}; log ends:\n{router.tail(5)}")
        if keep_audit is not None:
            keep_audit.extend(watch.values)
        run = _finish("throughput", len(events), None, router, watch, len(events), others)
        run.partitions = partitions
        return run
    finally:
        await drop_exchange(exchange)


def _start_partners(
    exchange: BenchExchange, workdir: Path, expect: int, warmup: int, idle_timeout: float
) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for partner in PARTNERS:
        out = workdir / f"partner-{exchange.tag}-{partner}.tsv"
        log = _partner_log(exchange, workdir, partner).open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.partner",
                "--partner",
                partner,
                "--expect",
                str(expect),
                "--out",
                str(out),
                "--idle-timeout",
                str(idle_timeout),
                "--warmup",
                str(warmup),
            ],
            env=_child_env(exchange),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        log.close()
        started[partner] = (process, out)
    return started


def _partner_log(exchange: BenchExchange, workdir: Path, partner: str) -> Path:
    return workdir / f"partner-{exchange.tag}-{partner}.log"


async def _wait_ready(exchange: BenchExchange, workdir: Path, limit_s: float) -> None:
    """Wait until every subscriber has rendered the warm-up (it prints ``ready``)."""
    deadline = time.monotonic() + limit_s
    for partner in PARTNERS:
        log = _partner_log(exchange, workdir, partner)
        while f"ready {partner}" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RouterRunError(
                    f"subscriber {partner} did not render the warm-up within {limit_s:.0f}s; "
                    f"its log ends:\n{log.read_text(errors='replace')[-2000:]}"
                )
            await asyncio.sleep(0.2)


async def _wait_partners(
    partners: dict[str, tuple[subprocess.Popen[bytes], Path]], limit_s: float, progress: Progress
) -> None:
    deadline = time.monotonic() + limit_s
    while any(p.poll() is None for p, _ in partners.values()):
        if time.monotonic() > deadline:
            for name, (p, _) in partners.items():
                if p.poll() is None:
                    progress(f"subscriber {name} still running after {limit_s:.0f}s: stopped")
                    p.send_signal(signal.SIGTERM)
            await asyncio.sleep(5)
            for p, _ in partners.values():
                if p.poll() is None:
                    p.kill()
            return
        await asyncio.sleep(0.5)


def read_times(path: Path) -> dict[str, tuple[float, float, float]]:
    """A subscriber's ``event id -> (rendered, received, produced)`` (unix seconds)."""
    if not path.exists():
        return {}
    times: dict[str, tuple[float, float, float]] = {}
    for line in path.read_text().splitlines():
        event_id, rendered, received, produced = line.split("\t")
        times[event_id] = (float(rendered), float(received), float(produced))
    return times


def _subscriber_cpu_ms(out: Path) -> float | None:
    """The subscriber's CPU ms per record handled after its warm-up (its ``.json``)."""
    try:
        summary = json.loads(out.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    handled = int(summary.get("handled_after_warmup", 0))
    return float(summary["cpu_seconds"]) * 1000 / handled if handled else None


async def latency_run(
    base: Settings,
    keyring: Keyring,
    warmup: Sequence[Prepared],
    events: Sequence[Prepared],
    workdir: Path,
    *,
    rate: float | None,
    partitions: int,
    progress: Progress,
) -> RouterRun:
    """Router and subscribers running; publish ``events`` at ``rate``; time each delivery."""
    exchange = await create_exchange(base, keyring, workdir, partitions=partitions)
    label = f"latency at {rate:,.0f}/s" if rate else "latency at saturation"
    total = len(warmup) + len(events)
    partners = _start_partners(exchange, workdir, total, len(warmup), idle_timeout=90.0)
    router = _start_router(exchange, workdir, None)
    try:
        watch = _AuditWatch()
        progress(f"{label}: router and 3 subscribers started; {len(warmup)} warm-up referrals")
        await publish(exchange.settings, exchange.ingress, warmup)
        await _watch_audit(
            exchange, router, len(warmup), watch, limit_s=120, progress=progress, what=label
        )
        await _wait_ready(exchange, workdir, limit_s=120)
        progress(f"{label}: publishing {len(events):,} referrals")
        sent = await publish(
            exchange.settings, exchange.ingress, events, rate=rate, progress=progress
        )
        await _watch_audit(
            exchange,
            router,
            total,
            watch,
            limit_s=120 + len(events) / 50,
            progress=progress,
            what=label,
        )
        await _wait_partners(partners, limit_s=120, progress=progress)
    finally:
        router.stop()
        for process, _ in partners.values():
            if process.poll() is None:
                process.kill()
        await drop_exchange(exchange)
    run = _finish("latency", len(events), rate, router, watch, len(events))
    run.partitions = partitions
    every: list[float] = []
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for partner, (_, out) in partners.items():
        rendered = read_times(out)
        lat: list[float] = []
        for event_id, published in sent.items():
            if event_id not in rendered:
                continue
            done, received, produced = rendered[event_id]
            lat.append(done - published)
            # Kafka timestamps have millisecond resolution; a stage is never negative.
            for name, span in zip(
                STAGES, (produced - published, received - produced, done - received), strict=True
            ):
                stages[name].append(max(span, 0.0))
        run.missing[partner] = len(sent) - len(lat)
        if lat:
            run.latency[partner] = summarise_latencies(lat)
            every.extend(lat)
        cpu = _subscriber_cpu_ms(out)
        if cpu is not None:
            run.subscriber_cpu_ms[partner] = cpu
    if every:
        run.latency["all"] = summarise_latencies(every)
        run.stages = {name: summarise_latencies(spans) for name, spans in stages.items()}
    return run
