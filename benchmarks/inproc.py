"""The router's own work per referral, in-process: :class:`RouteProcessor` with no Kafka.

The same construction ``msht router`` makes (:func:`broker.router.service.route_config`,
:func:`broker.router.processor.processor_from_state`) over the benchmark exchange's keys and
policy, fed the very envelopes the throughput phase produces, as the records the engine
would hand it (``LogAppendTime``, keyed by subject, on the subject's partition). What this
measures is everything the router does per input — admit (decode, verify, limits), decide,
build, seal and sign each view, the audit record — and nothing of the Kafka client or the
engine's transactions: the gap between this figure and the router process's CPU per
referral is what aiokafka and the engine cost.

``python -m benchmarks.inproc --help``; ``--profile`` prints where the time goes (cProfile,
which slows every Python call and so inflates the many small ones); ``--breakdown`` times
each step of :mod:`broker.router.route` and the processor inclusively with the clock alone
(a few calls per event, so the figures are the steps' real cost).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.exchange.signed import EnvelopeSealer, sealer_from_settings
from benchmarks.exchange import POLICE, POLICY_FILE, Keyring, make_keyring
from benchmarks.synthetic import sealed_referrals
from broker.audit import RecordSigner
from broker.audit.chain import ChainHead
from broker.kafka.partitioner import default_partition
from broker.kafka.records import Incoming
from broker.logging import configure_logging
from broker.policy.model import load_policy
from broker.router import processor as processor_module
from broker.router import route as route_module
from broker.router.processor import RouteProcessor, Topics, processor_from_state
from broker.router.restore import ChainState
from broker.router.service import route_config
from broker.settings import Settings

PARTITIONS = 1
LOG_APPEND_TIME = 1


@dataclass(frozen=True)
class InProcess:
    """CPU per referral of :meth:`RouteProcessor.process`, one process, no Kafka."""

    events: int
    cpu_us_per_event: float
    outputs_per_event: float

    def as_dict(self) -> dict[str, Any]:
        """The figures for ``results.json``."""
        return {
            "events": self.events,
            "cpu_us_per_event": self.cpu_us_per_event,
            "outputs_per_event": self.outputs_per_event,
        }


def make_processor(settings: Settings, keyring: Keyring) -> RouteProcessor:
    """A router's processor for the police ingress partition 0, as ``msht router`` builds it."""
    settings = settings.model_copy(
        update={
            "key_dir": keyring.key_dir,
            "trust_store": keyring.trust_path,
            "policy_file": POLICY_FILE,
        }
    )
    config = route_config(settings, load_policy(POLICY_FILE), keyring.trust)
    key = config.identity.signing_key
    topic = settings.ingress_topic(POLICE)
    chain = f"{topic}:0"
    return processor_from_state(
        config,
        Topics(audit=settings.audit_topic, quarantine=settings.quarantine_topic),
        ChainState(ChainHead.genesis(chain)),
        instance="bench",
        window=max(settings.dedup_window, 1),
        signer=RecordSigner(key.key_id, key.private_key),
    )


def records(topic: str, envelopes: Sequence[tuple[bytes, bytes]]) -> list[Incoming]:
    """The ingress records the engine would hand the processor for ``(key, value)`` pairs."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return [
        Incoming(
            topic=topic,
            partition=default_partition(key, PARTITIONS),
            offset=offset,
            key=key,
            value=value,
            timestamp_ms=now_ms,
            timestamp_type=LOG_APPEND_TIME,
            partitions=PARTITIONS,
        )
        for offset, (key, value) in enumerate(envelopes)
    ]


def measure(processor: RouteProcessor, inputs: Sequence[Incoming]) -> InProcess:
    """Process ``inputs`` once (a warm-up of 50 first) and time each with ``process_time``."""
    warm = min(50, len(inputs) // 10)
    for record in inputs[:warm]:
        processor.process(record)
    processor.committed()
    outputs = 0
    started = time.process_time()
    for record in inputs[warm:]:
        outputs += len(processor.process(record))
    spent = time.process_time() - started
    processor.committed()
    timed = len(inputs) - warm
    return InProcess(timed, spent / timed * 1e6, outputs / timed)


def prepare(keyring: Keyring, settings: Settings, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` referrals as the police publisher seals and signs them: ``(key, value)``."""
    sealer: EnvelopeSealer = sealer_from_settings(
        settings.model_copy(update={"key_dir": keyring.key_dir, "trust_store": keyring.trust_path}),
        POLICE,
    )
    return [(r.event.subject.encode(), r.envelope) for r in sealed_referrals(sealer, count, seed=1)]


BREAKDOWN_STEPS = (
    "admit",
    "decode_envelope",
    "verify",
    "decode_payload",
    "check_payload",
    "open_protected_salted",
    "check_committed",
    "extract_facts",
    "route",
    "decide",
    "apply_view_sharing",
    "seal_fields",
    "view_proof_of",
    "build_envelope",
    "header_bytes",
    "sign",
    "encode_envelope_with_header",
)
"""The names in :mod:`broker.router.route` that ``--breakdown`` times (``admit`` and
``route`` hold the others; the processor's content digest and audit record are timed too)."""


@dataclass
class Breakdown:
    """Inclusive wall time and calls per timed step (``--breakdown``)."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def timed(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, adding its wall time and calls under ``label``."""

        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1

        return run

    def table(self, events: int) -> str:
        """Each step's µs per event and calls per event, largest first."""
        rows = sorted(self.seconds.items(), key=lambda item: -item[1])
        return "\n".join(
            f"  {label:36} {seconds / events * 1e6:8,.0f} µs/event"
            f"  ({self.calls[label] / events:.0f} calls)"
            for label, seconds in rows
        )


@contextmanager
def breakdown_of(result: Breakdown) -> Iterator[None]:
    """Time :data:`BREAKDOWN_STEPS` of :mod:`broker.router.route` (and the processor's
    content digest and audit record) into ``result`` while the block runs."""
    patched: list[tuple[Any, str, Any]] = []
    for name in BREAKDOWN_STEPS:
        patched.append((route_module, name, getattr(route_module, name)))
    # The processor calls these through its own names for them.
    for name in ("admit", "route", "content_digest"):
        patched.append((processor_module, name, getattr(processor_module, name)))
    patched.append((RouteProcessor, "_audit", RouteProcessor._audit))
    try:
        for owner, name, original in patched:
            label = "audit record" if name == "_audit" else name
            setattr(owner, name, result.timed(label, original))
        yield
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)


def report(events: int, *, breakdown: bool = False, profile: bool = False, top: int = 35) -> str:
    """The router's in-process CPU per referral over ``events`` synthetic referrals, then
    (``breakdown``) each step's inclusive time and (``profile``) a cProfile by own time.

    Each measurement routes the same referrals through a fresh processor, so the figure on
    the first line is taken with neither the step timers nor the profiler running.
    """
    configure_logging("WARNING")
    settings = Settings()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="msht-inproc-") as tmp:
        keyring = make_keyring(Path(tmp))
        inputs = records(settings.ingress_topic(POLICE), prepare(keyring, settings, events))
        result = measure(make_processor(settings, keyring), inputs)
        lines.append(
            f"router in-process: {result.cpu_us_per_event:,.0f} µs CPU per referral over "
            f"{result.events:,} referrals ({result.outputs_per_event:.1f} outputs each)"
        )
        if breakdown:
            steps = Breakdown()
            with breakdown_of(steps):
                measure(make_processor(settings, keyring), inputs)
            # Warm-up events are timed too: per event over everything processed.
            lines.append("inclusive time per step (admit and route contain the steps below them):")
            lines.append(steps.table(steps.calls.get("admit", 1)))
        if profile:
            profiler = cProfile.Profile()
            processor = make_processor(settings, keyring)
            profiler.enable()
            measure(processor, inputs)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
            lines.append(
                f"cProfile by own time (it slows every call: shares, not µs):{out.getvalue()}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.inproc``: print the router's in-process CPU per referral."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inproc",
        description="The router's CPU per referral in-process (RouteProcessor.process, no "
        "Kafka) over synthetic referrals routed to the benchmark policy's three views.",
    )
    parser.add_argument("--events", type=int, default=2000, help="referrals (default 2000)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="print each routing step's inclusive time per referral (clock only, no profiler)",
    )
    parser.add_argument("--top", type=int, default=35, help="profile rows to print (default 35)")
    args = parser.parse_args(argv)
    print(report(args.events, breakdown=args.breakdown, profile=args.profile, top=args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
