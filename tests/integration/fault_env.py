"""Helpers for the router fault tests: loads, kill triggers, a private broker, the checks.

A load is a list of :class:`Published` events in publish order, each with the partners the
policy grants it (computed with :func:`broker.policy.decide` on the very bytes published).
:func:`check_exactly_once` reads every delivery topic and the audit trail back, committed
records only, and says what is wrong; the tests assert it found nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from broker.audit import AuditRecord, parse_record, verify_chain
from broker.audit.reader import read_audit_topic
from broker.audit.verify import router_keys
from broker.crypto.keyfiles import signing_key_file
from broker.crypto.signing import signing_input
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import load_trust_store
from broker.errors import MshtError
from broker.events.envelope import Signature, build_envelope, decode_envelope, encode_envelope
from broker.kafka import clients as kafka
from broker.policy import decide
from broker.review.notice import is_notice
from broker.router.route import Arrival, Quarantined, admit
from broker.router.service import route_config
from broker.settings import Settings
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject
from tests.integration.router_env import REPO, RouterExchange

AGENCY = "met-police"
CHARGE = ("police/case-charge.json", "case-json")
REFERRAL = ("police/nrm-referral.json", "nrm-json")

# Markings that change what the policy grants, so the expectation differs between events:
# SECRET is above the CPS's clearance; SIENA H1 keeps a case from the prosecutor; H3 holds
# it for a human decision (no partner receives it).
_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {},
    {"classification": "SECRET"},
    {},
    {"siena_handling": "H1"},
    {},
    {"siena_handling": "H3"},
)


@dataclass(frozen=True)
class Published:
    """One good event of a load: what was published and whom the policy grants it."""

    event_id: EventId
    subject: Subject
    value: bytes = field(repr=False)
    grants: frozenset[str]


def good_events(
    ex: RouterExchange, count: int, *, subjects: int = 12, agency: str = AGENCY
) -> list[Published]:
    """``count`` distinct referrals and charges over ``subjects`` subjects, in publish order.

    Each one's grants come from :func:`broker.policy.decide` on the facts of the sealed
    bytes (as the router admits them), not from the router's output.
    """
    tag = uuid.uuid4().hex[:8]
    templates = (ex.sample_event(*CHARGE), ex.sample_event(*REFERRAL))
    config = route_config(ex.settings, ex.policy, load_trust_store(ex.settings.trust_store_path))
    topic = ex.settings.ingress_topic(AgencyId(agency))
    now = datetime.now(UTC)
    events: list[Published] = []
    for i in range(count):
        template = templates[i % 3 == 0]
        variant = _VARIANTS[i % len(_VARIANTS)]
        subject = Subject(f"{tag}-subject-{i % subjects:02d}")
        event = dataclasses.replace(
            template, subject=subject, markings={**template.markings, **variant}
        )
        event_id = EventId(str(uuid.uuid4()))
        value = ex.sealers[agency].seal(event, event_id)
        # Where and when the broker will put it: keyed by subject, on its murmur2 partition
        # of a one-partition view, stamped now.
        arrival = Arrival(topic, 0, 1, subject.encode(), int(now.timestamp() * 1000), 1)
        admitted = admit(config, arrival, value, now)
        assert not isinstance(admitted, Quarantined), admitted
        decision = decide(config.policy, admitted.facts, now)
        grants = frozenset(d.partner for d in decision.partners if d.outcome is Outcome.DELIVER)
        events.append(Published(event_id, subject, value, grants))
    return events


# --- publishing ---------------------------------------------------------------------------


async def publish_steadily(
    settings: Settings,
    topic: str,
    events: Sequence[Published],
    *,
    rate: float,
    chunk: int = 10,
    retry_for: float = 0.0,
) -> int:
    """Publish ``events`` keyed by subject at about ``rate`` per second, in order.

    With ``retry_for`` > 0 a chunk that fails (broker gone) is sent again with a fresh
    idempotent producer until it is acknowledged or ``retry_for`` seconds pass; an event
    may then be on the ingress topic twice, with one id, as a restarted publisher leaves
    it. Returns the number of chunks that had to be sent again.
    """
    resent = 0
    started = time.monotonic()
    index = 0
    give_up: float | None = None
    while index < len(events):
        try:
            async with kafka.producer(settings, request_timeout_ms=10_000) as producer:
                while index < len(events):
                    part = events[index : index + chunk]
                    futures = [
                        await producer.send(topic, e.value, key=e.subject.encode()) for e in part
                    ]
                    await asyncio.gather(*futures)
                    index += len(part)
                    give_up = None
                    ahead = started + index / rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        except (KafkaError, MshtError, TimeoutError):
            now = time.monotonic()
            give_up = give_up or now + retry_for
            if now >= give_up:
                raise
            resent += 1
            await asyncio.sleep(0.5)
    return resent


async def publish_in_one_transaction(
    settings: Settings, records: Sequence[tuple[str, bytes | None, bytes]]
) -> None:
    """Produce ``(topic, key, value)`` records in one transaction: visible all at once."""
    async with kafka.transactional_producer(
        settings, f"{settings.router_group}-loader-{uuid.uuid4().hex[:6]}"
    ) as producer:
        async with producer.transaction():
            futures = [await producer.send(t, v, key=k) for t, k, v in records]
        await asyncio.gather(*futures)


# --- watching the router --------------------------------------------------------------------


async def audit_high_watermark(settings: Settings) -> int:
    """Records (committed or not) written to the audit topic so far: the router's progress."""
    async with kafka.admin_client(settings) as admin:
        [described] = await admin.describe_topics([settings.audit_topic])
    tps = [TopicPartition(settings.audit_topic, p["partition"]) for p in described["partitions"]]
    async with kafka.consumer(settings, isolation_level="read_uncommitted") as probe:
        ends: dict[TopicPartition, int] = await probe.end_offsets(tps)
    return sum(ends.values())


async def wait_for_progress(
    settings: Settings,
    at_least: int,
    *,
    within: float,
    alive: Callable[[], bool] = lambda: True,
) -> int:
    """Wait until the audit topic holds ``at_least`` records; fail if ``alive`` turns false.

    A probe that fails (a broker of a cluster is down and the admin client asked it) counts
    as no progress, not as the end of the test.
    """
    deadline = time.monotonic() + within
    seen = 0
    while True:
        with contextlib.suppress(MshtError):
            seen = await audit_high_watermark(settings)
        if seen >= at_least:
            return seen
        if not alive():
            raise AssertionError(f"the router exited with {seen} audit records written")
        if time.monotonic() > deadline:
            raise AssertionError(f"only {seen} of {at_least} audit records within {within}s")
        await asyncio.sleep(0.2)


async def committed_audit(settings: Settings) -> list[tuple[int, int, bytes]]:
    """Every committed audit record as ``(partition, offset, value)``, partition by partition."""
    entries = await read_audit_topic(settings, timeout_s=60.0)
    return [(e.partition, e.offset, e.value) for e in entries]


async def wait_for_decisions(
    settings: Settings,
    event_ids: set[EventId],
    *,
    within: float,
    alive: Callable[[], bool] = lambda: True,
) -> list[AuditRecord]:
    """Poll the committed audit trail until every id in ``event_ids`` has a record."""
    deadline = time.monotonic() + within
    while True:
        records = [parse_record(v) for _, _, v in await committed_audit(settings)]
        missing = event_ids - {r.event_id for r in records}
        if not missing:
            return records
        if not alive():
            raise AssertionError(f"router exited with {len(missing)} events undecided")
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} events undecided after {within}s")
        await asyncio.sleep(1.0)


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a router's log, for assertion messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_gracefully(process: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM ``process`` (the router finishes its transaction) and return its exit code."""
    if process.poll() is None:
        process.terminate()
    return process.wait(timeout=timeout)


# --- the checks ---------------------------------------------------------------------------


@dataclass
class Findings:
    """What :func:`check_exactly_once` found wrong (every list empty when all holds)."""

    missing: dict[str, list[str]] = field(default_factory=dict)
    unexpected: dict[str, list[str]] = field(default_factory=dict)
    duplicated: dict[str, list[str]] = field(default_factory=dict)
    out_of_order: dict[str, list[str]] = field(default_factory=dict)
    decisions_per_event: dict[str, int] = field(default_factory=dict)
    audit_disagrees: list[str] = field(default_factory=list)
    chain_breaks: list[str] = field(default_factory=list)
    distinct_decisions: int = 0
    deliveries: int = 0

    def problems(self) -> dict[str, Any]:
        """Only the non-empty findings, truncated for a readable assertion message."""
        found: dict[str, Any] = {}
        for name in (
            "missing",
            "unexpected",
            "duplicated",
            "out_of_order",
            "decisions_per_event",
            "audit_disagrees",
            "chain_breaks",
        ):
            value = getattr(self, name)
            if value:
                found[name] = (
                    {k: v[:5] if isinstance(v, list) else v for k, v in list(value.items())[:5]}
                    if isinstance(value, dict)
                    else value[:5]
                )
        return found


async def _delivery_records(ex: RouterExchange, partner: str, expected: int) -> list[Any]:
    topic = ex.settings.delivery_topic(PartnerId(partner))
    # A source is also told when its event is held: those notices are not deliveries.
    records = await ex.read(topic, expected=expected, wait=30.0)
    return [r for r in records if not is_notice(r.value)]


async def check_exactly_once(ex: RouterExchange, events: Sequence[Published]) -> Findings:
    """Compare every partner's committed deliveries and the audit trail with ``events``.

    Each delivery is verified and opened with the partner's own keys (as its subscriber
    does). Per partner: exactly the granted events, each once, and per subject in publish
    order (one delivery partition per subject, offsets rising with publish order). Audit:
    the chain verifies with the router's keys, one decision record per event, and each
    decision's delivered partners are the policy's grants.
    """
    findings = Findings()
    position: dict[str, int] = {e.event_id: i for i, e in enumerate(events)}
    partners = [p.id for p in ex.policy.policy.partners]
    for partner in partners:
        granted: set[str] = {e.event_id for e in events if partner in e.grants}
        records = await _delivery_records(ex, partner, len(granted))
        opener = ex.opener(partner)
        counts: Counter[str] = Counter()
        by_subject: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for rec in records:
            delivered = opener.open(rec.value)
            counts[delivered.event_id] += 1
            by_subject[delivered.subject].append((rec.partition, rec.offset, delivered.event_id))
        findings.deliveries += len(records)
        if missing := sorted(granted - set(counts)):
            findings.missing[partner] = missing
        if unexpected := sorted(set(counts) - granted):
            findings.unexpected[partner] = unexpected
        if duplicated := sorted(i for i, n in counts.items() if n > 1):
            findings.duplicated[partner] = duplicated
        disorder = []
        for subject, placed in by_subject.items():
            partitions = {p for p, _, _ in placed}
            in_offset_order = [position.get(i, -1) for _, _, i in sorted(placed)]
            if len(partitions) > 1 or in_offset_order != sorted(in_offset_order):
                disorder.append(subject)
        if disorder:
            findings.out_of_order[partner] = sorted(disorder)

    audit = await committed_audit(ex.settings)
    report = verify_chain(
        [(offset, value) for _, offset, value in audit],
        router_keys=router_keys(ex.settings.trust_store_path),
    )
    findings.chain_breaks = [str(b) for b in report.breaks]
    decisions: Counter[str] = Counter()
    for _, _, value in audit:
        record = parse_record(value)
        if record.kind != "decision":
            continue
        decisions[record.event_id] += 1
        index = position.get(record.event_id)
        if index is None:
            continue
        granted_to = {o.partner for o in record.outcomes if o.outcome == "delivered"}
        if granted_to != events[index].grants:
            findings.audit_disagrees.append(record.event_id)
    findings.distinct_decisions = len([i for i in decisions if i in position])
    findings.decisions_per_event = {
        e.event_id: decisions[e.event_id] for e in events if decisions[e.event_id] != 1
    }
    return findings


# --- a private broker ---------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports on 127.0.0.1 that nothing listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class PrivateBroker:
    """A Kafka of this test alone (``deploy/kafka/kafka.sh`` with its own state and ports).

    The shared broker is never touched: every command runs with this broker's
    ``MSHT_KAFKA_STATE_DIR`` and ports, and :meth:`env` refuses the shared defaults.
    """

    state_dir: Path
    port: int
    controller_port: int
    tls_port: int

    @property
    def bootstrap(self) -> str:
        """``host:port`` of its SASL_PLAINTEXT listener."""
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment that points ``kafka.sh`` at this broker only."""
        assert self.port != 9092
        assert self.state_dir.is_absolute()
        return {
            **os.environ,
            "MSHT_KAFKA_STATE_DIR": str(self.state_dir),
            "MSHT_KAFKA_HOME": str(self.state_dir),
            "MSHT_KAFKA_PORT": str(self.port),
            "MSHT_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "MSHT_KAFKA_TLS_PORT": str(self.tls_port),
            "MSHT_KAFKA_HEAP": "512m",
        }

    async def run(self, command: str) -> None:
        """``kafka.sh COMMAND`` for this broker; raises with its output when it fails."""
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(REPO / "deploy" / "kafka" / "kafka.sh"),
            command,
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise AssertionError(f"kafka.sh {command} failed:\n{out.decode()[-3000:]}")


@contextlib.asynccontextmanager
async def private_broker(state_dir: Path) -> AsyncIterator[PrivateBroker]:
    """Start a private broker in ``state_dir``; wipe it and delete the directory afterwards."""
    port, controller, tls = free_ports(3)
    broker = PrivateBroker(state_dir, port, controller, tls)
    try:
        await broker.run("start")
        yield broker
    finally:
        with contextlib.suppress(AssertionError):
            await broker.run("wipe")
        shutil.rmtree(state_dir, ignore_errors=True)


# --- routers as processes -------------------------------------------------------------------


@dataclass
class RouterProcesses:
    """``msht router`` processes of one test, each logging to its own file in ``logs``."""

    exchange: RouterExchange
    logs: Path
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, instance: str) -> subprocess.Popen[bytes]:
        """Start ``msht router --instance INSTANCE``."""
        process = self.exchange.spawn_router(instance, self.log(instance))
        self.started[instance] = process
        return process

    def log(self, instance: str) -> Path:
        """Where ``instance`` writes its log."""
        return self.logs / f"{instance}.log"

    def alive(self, instance: str) -> Callable[[], bool]:
        """A check that ``instance`` is still running."""
        return lambda: self.started[instance].poll() is None

    def tails(self) -> str:
        """The end of every router's log, for assertion messages."""
        return "\n".join(f"--- {name}\n{log_tail(self.log(name))}" for name in self.started)

    def kill_all(self) -> None:
        """SIGKILL whatever is still running (cleanup after a failed test)."""
        for process in self.started.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


# --- bad input ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One malformed or forged input: where it is published and the reason it must earn."""

    topic: str
    value: bytes = field(repr=False)
    reason: str
    kind: str


def _forged(ex: RouterExchange, event_id: EventId) -> bytes:
    """A charge naming the CPS as its source, signed with the Met's key."""
    event = ex.sample_event(*CHARGE)
    key = load_signing_key(signing_key_file(ex.settings.key_dir_path, AGENCY), AGENCY)
    now = datetime.now(UTC)
    envelope = build_envelope(
        event_type=event.event_type,
        source="cps",
        subject=event.subject,
        markings=event.markings,
        payload=event.payload,
        occurred_at=now,
        published_at=now,
        event_id=event_id,
        payload_record=event.record_name,
    )
    signed_at = envelope.header.published_at
    data = signing_input(
        envelope.header, envelope.payload, signer=AGENCY, key_id=key.key_id, signed_at=signed_at
    )
    signature = Signature(
        signer=AgencyId(AGENCY),
        key_id=key.key_id,
        algorithm="ED25519",
        signed_at=signed_at,
        signature=key.private_key.sign(data),
    )
    return encode_envelope(dataclasses.replace(envelope, signatures=(signature,)))


def _bit_flipped(value: bytes, bit: int) -> bytes:
    """``value`` with one bit of its first signature flipped."""
    envelope = decode_envelope(value)
    first = envelope.signatures[0]
    raw = bytearray(first.signature)
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    flipped = dataclasses.replace(first, signature=bytes(raw))
    return encode_envelope(dataclasses.replace(envelope, signatures=(flipped,)))


def bad_events(ex: RouterExchange, count: int) -> list[Bad]:
    """``count`` bad inputs, in equal parts: random bytes, truncated envelopes, a flipped
    signature bit, and events signed by the Met claiming the CPS as source (on the Met's
    topic: ``wrong-topic``; on the CPS's topic: ``unverified``)."""
    met = ex.settings.ingress_topic(AgencyId(AGENCY))
    cps = ex.settings.ingress_topic(AgencyId("cps"))
    genuine = good_events(ex, count // 2, subjects=5)
    rng = random.Random(7)
    bad: list[Bad] = []
    for i in range(count):
        match i % 5:
            case 0:
                junk = rng.randbytes(rng.randrange(16, 4000))
                bad.append(Bad(met, junk, "undecodable", "random bytes"))
            case 1:
                value = genuine[i // 2].value
                cut = value[: rng.randrange(8, len(value) - 8)]
                bad.append(Bad(met, cut, "undecodable", "truncated envelope"))
            case 2:
                flipped = _bit_flipped(genuine[i // 2].value, rng.randrange(512))
                bad.append(Bad(met, flipped, "unverified", "bit-flipped signature"))
            case 3:
                forged = _forged(ex, EventId(str(uuid.uuid4())))
                bad.append(Bad(met, forged, "wrong-topic", "forged source, source's topic"))
            case _:
                forged = _forged(ex, EventId(str(uuid.uuid4())))
                bad.append(Bad(cps, forged, "unverified", "forged source, claimed topic"))
    return bad


async def wait_for_deciders(settings: Settings, instances: set[str], *, within: float) -> None:
    """Poll the committed audit trail until each router in ``instances`` has decided."""
    deadline = time.monotonic() + within
    while True:
        records = [parse_record(v) for _, _, v in await committed_audit(settings)]
        seen = {r.router for r in records if r.kind == "decision"}
        if instances <= seen:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"routers {sorted(instances - seen)} decided nothing in {within}s")
        await asyncio.sleep(0.5)
