"""One input partition's pipeline: route each record, de-duplicate, write its audit record.

Every input record yields exactly one audit record in the partition's chain — a decision,
a quarantine or a duplicate — in the same transaction as its deliveries and the input
offset. An id already decided comes back either as the same event (a re-publication: a
``duplicate`` record, nothing delivered) or with different content (quarantined as
``conflicting-duplicate``, nothing delivered); the content digests in the audit records tell
the two apart after a restart too. The chain head and the de-duplication window are
in-memory copies of what the audit topic holds; :meth:`RouteProcessor.rolled_back` puts
them back when a transaction aborts, so they never run ahead of Kafka.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.audit import AuditChain, ChainHead, RecordSigner
from broker.audit.quarantine import REPLAY_HEADER
from broker.audit.record import RecordKind
from broker.events.envelope import Header
from broker.kafka.records import Incoming, Outgoing
from broker.logging import get_logger
from broker.observe.metrics import Metrics
from broker.router.holding import held_output
from broker.router.limits import (
    AUDIT_STRING_CHARS,
    MAX_OUTPUT_BYTES,
    QUARANTINE_PREFIX_BYTES,
    UNWRITABLE,
    clip,
    input_digest,
)
from broker.router.restore import ChainState, DecidedIds, DedupWindow
from broker.router.route import (
    Arrival,
    Decoded,
    Quarantined,
    RouteConfig,
    Routed,
    admit,
    content_digest,
    route,
)
from broker.types import AgencyId, EventId, Outcome, Subject

_log = get_logger(__name__)

UNKNOWN = "-"
"""Stands for an id the input did not yield (it could not be decoded, or was over a bound)."""

_RECORD_OVERHEAD = 128
"""Bytes a Kafka record adds to its key, value and headers (lengths, timestamps, batch
share), rounded up: :func:`output_size` must not under-estimate what the producer checks."""


def output_size(out: Outgoing) -> int:
    """An upper bound on the bytes ``out`` takes in a produce request."""
    headers = sum(len(k.encode("utf-8")) + len(v) + 8 for k, v in out.headers)
    return len(out.key or b"") + len(out.value) + headers + _RECORD_OVERHEAD


def _unknown_id(value: bytes) -> EventId:
    """The audit trail's name for an input whose own event id is unknown or unusable."""
    return EventId(f"{UNKNOWN}sha256:{input_digest(value)}")


def _usable(text: str | None) -> str | None:
    """``text`` if it may be copied into an audit or quarantine record, else ``None``."""
    return text if text is not None and len(text) <= AUDIT_STRING_CHARS else None


def replay_of(record: Incoming) -> str | None:
    """The quarantine record ``record`` replays (its :data:`REPLAY_HEADER`), if any.

    Only a value of the documented shape is copied into the audit record; anything else is
    ignored (the header is not signed, so it is a link for operators, not evidence).
    """
    for name, value in record.headers:
        if name == REPLAY_HEADER:
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            topic, _, position = text.rpartition(":")
            topic, _, partition = topic.rpartition(":")
            if topic and partition.isdigit() and position.isdigit() and len(text) <= 300:
                return text
            return None
    return None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ProcessorStats:
    """Counts of what this partition's inputs became (committed or not)."""

    decided: int = 0
    delivered: int = 0
    quarantined: int = 0
    duplicates: int = 0
    metrics: Metrics | None = field(default=None, compare=False)
    """Where committed outcomes are counted for Prometheus (the router service's)."""


@dataclass(frozen=True)
class Topics:
    """Where the router writes besides the delivery topics."""

    audit: str
    quarantine: str
    held: str | None = None
    """Where held events are kept for review (``MSHT_HELD_TOPIC``); ``None`` keeps none."""


@dataclass
class RouteProcessor:
    """The :class:`~broker.router.engine.PartitionProcessor` of one ingress partition."""

    config: RouteConfig
    topics: Topics
    chain: AuditChain
    dedup: DedupWindow
    clock: Callable[[], datetime] = _now
    stats: ProcessorStats = field(default_factory=ProcessorStats)
    decided: DecidedIds | None = None
    """The other partitions' windows in this router process (ids re-used across chains)."""
    live: Callable[[], RouteConfig] | None = None
    """Where the configuration in force is read from (:mod:`broker.router.reload`): read
    once per batch, at its first record, so one batch is decided under one version."""
    _batch_open: bool = field(default=False, init=False)
    _pending: list[EventId] = field(default_factory=list)
    _observed: list[_Observed] = field(default_factory=list)
    """What the inputs since the last commit became; counted in the metrics on commit."""
    _head_before: ChainHead = field(init=False)

    def __post_init__(self) -> None:
        self._head_before = self.chain.head
        if self.decided is not None:
            self.decided.register(self.chain.head.chain, self.dedup)

    def process(self, record: Incoming) -> Sequence[Outgoing]:
        """Route ``record``; bad input becomes quarantine output, never an exception.

        Every output is checked against :data:`~broker.router.limits.MAX_OUTPUT_BYTES`
        before it is returned: if one is over, what the record did to the chain and the
        de-duplication window is undone and the record is audited by digest instead
        (:meth:`unwritable`), so a produce can never fail for its size.
        """
        self._begin()
        head, pending, observed = self.chain.head, len(self._pending), len(self._observed)
        stats = dataclasses.replace(self.stats)
        out = self._process(record)
        largest = max(output_size(o) for o in out)
        if largest <= MAX_OUTPUT_BYTES:
            return out
        for event_id in self._pending[pending:]:
            self.dedup.discard(event_id)
        del self._pending[pending:]
        del self._observed[observed:]
        self.chain.reset(head)
        for name in ("decided", "delivered", "quarantined", "duplicates"):
            setattr(self.stats, name, getattr(stats, name))
        problem = f"an output of {largest} bytes is over the bound of {MAX_OUTPUT_BYTES}"
        return self.unwritable(record, problem, copy=True)

    def unwritable(self, record: Incoming, problem: str, *, copy: bool = False) -> list[Outgoing]:
        """``record``'s outputs could not be written: audit it by digest and pass it.

        The audit record (kind ``quarantine``, reason ``unwritable``) names the input by the
        SHA-256 of its value. With ``copy``, a bounded copy also goes to quarantine; the
        engine calls this without, after Kafka refused what the record produced.
        """
        self._begin()
        now = self.clock()
        self.stats.quarantined += 1
        self._observed.append(_Observed(record.timestamp_ms, "quarantined", UNWRITABLE))
        _log.warning(
            "input unwritable, audited by digest",
            topic=record.topic,
            offset=record.offset,
            problem=clip(problem),
        )
        failed = Quarantined(UNWRITABLE, problem)
        audit = self._audit(
            record,
            now,
            kind="quarantine",
            event_id=_unknown_id(record.value),
            source=AgencyId(UNKNOWN),
            subject=Subject(UNKNOWN),
            reason=UNWRITABLE,
        )
        return [self._quarantine_copy(record, failed), audit] if copy else [audit]

    def _process(self, record: Incoming) -> list[Outgoing]:
        now = self.clock()
        try:
            arrival = Arrival(
                topic=record.topic,
                partition=record.partition,
                partitions=record.partitions,
                key=record.key,
                timestamp_ms=record.timestamp_ms,
                timestamp_type=record.timestamp_type,
            )
            admitted = admit(self.config, arrival, record.value, now)
            if isinstance(admitted, Quarantined):
                return self._quarantine(record, admitted, now)
            digest = content_digest(admitted)
            event_id = admitted.envelope.header.event_id
            if event_id in self.dedup:
                return self._seen_before(record, admitted, digest, now)
            elsewhere = self._decided_elsewhere(event_id)
            if elsewhere is not None:
                return self._quarantine(record, _reused(admitted, elsewhere), now, content=digest)
            routed = route(self.config, admitted, record.value, now)
        except Exception as exc:
            _log.exception("routing failed", topic=record.topic, offset=record.offset)
            failed = Quarantined("internal-error", f"router error {type(exc).__name__}")
            return self._quarantine(record, failed, now)
        return self._deliver(record, routed, digest, now, admitted)

    def _decided_elsewhere(self, event_id: EventId) -> str | None:
        if self.decided is None:
            return None
        return self.decided.chain_holding(event_id, besides=self.chain.head.chain)

    def _seen_before(
        self, record: Incoming, admitted: Decoded, digest: str, now: datetime
    ) -> list[Outgoing]:
        header = admitted.envelope.header
        known = self.dedup.digest_of(header.event_id)
        # An id restored from an audit record that predates content digests (None) can
        # only be compared by id: it is treated as the same event, as before.
        if known is None or known == digest:
            return self._duplicate(record, header, digest, now)
        conflict = Quarantined(
            "conflicting-duplicate",
            f"event_id: {header.event_id} was already decided with different content "
            f"(content digest {known}, this record's {digest}); an id names one event",
            header.event_id,
            header.source,
            header.subject,
        )
        return self._quarantine(record, conflict, now, content=digest)

    def _deliver(
        self,
        record: Incoming,
        routed: Routed,
        digest: str,
        now: datetime,
        admitted: Decoded | None = None,
    ) -> list[Outgoing]:
        self.dedup.add(routed.event_id, digest)
        self._pending.append(routed.event_id)
        out = [
            Outgoing(
                topic=d.topic,
                value=d.value,
                key=routed.subject.encode("utf-8"),
                headers=(("msht-event-id", routed.event_id.encode("utf-8")),),
            )
            for d in routed.deliveries
        ]
        if self.topics.held is not None and admitted is not None:
            # Kept in the same transaction as the audit record that says it is held.
            out += held_output(self.config, self.topics.held, record, admitted, routed, now)
        out.append(
            self._audit(
                record,
                now,
                kind="decision",
                event_id=routed.event_id,
                source=routed.source,
                subject=routed.subject,
                routed=routed,
                content=digest,
            )
        )
        self.stats.decided += 1
        self.stats.delivered += len(routed.deliveries)
        self._observed.append(_Observed(record.timestamp_ms, "decided", routed=routed))
        _log.debug(
            "event decided",
            event_id=routed.event_id,
            agency=routed.source,
            delivered=[d.partner for d in routed.deliveries],
        )
        return out

    def _duplicate(
        self, record: Incoming, header: Header, digest: str, now: datetime
    ) -> list[Outgoing]:
        self.stats.duplicates += 1
        self._observed.append(_Observed(record.timestamp_ms, "duplicate"))
        _log.info("re-published event dropped", event_id=header.event_id, agency=header.source)
        return [
            self._audit(
                record,
                now,
                kind="duplicate",
                event_id=header.event_id,
                source=header.source,
                subject=header.subject,
                content=digest,
            )
        ]

    def _quarantine(
        self, record: Incoming, q: Quarantined, now: datetime, *, content: str | None = None
    ) -> list[Outgoing]:
        self.stats.quarantined += 1
        self._observed.append(_Observed(record.timestamp_ms, "quarantined", q.reason))
        _log.warning(
            "event quarantined",
            event_id=q.event_id or UNKNOWN,
            agency=q.source or UNKNOWN,
            reason=q.reason,
            topic=record.topic,
            offset=record.offset,
        )
        event_id = _usable(q.event_id)
        return [
            self._quarantine_copy(record, q),
            self._audit(
                record,
                now,
                kind="quarantine",
                event_id=EventId(event_id) if event_id else _unknown_id(record.value),
                source=AgencyId(_usable(q.source) or UNKNOWN),
                subject=Subject(_usable(q.subject) or UNKNOWN),
                reason=q.reason,
                limit=q.limit,
                content=content,
            ),
        ]

    def _quarantine_copy(self, record: Incoming, q: Quarantined) -> Outgoing:
        """The input as the quarantine topic keeps it: whole if it is within the
        ``record-bytes`` bound, else its first bytes; headers cut to a fixed length."""
        size = len(record.key or b"") + len(record.value)
        whole = size <= self.config.limits.record_bytes
        value = record.value if whole else record.value[:QUARANTINE_PREFIX_BYTES]
        key = record.key if whole or len(record.key or b"") <= AUDIT_STRING_CHARS else None
        headers = [
            ("msht-reason", clip(q.reason).encode("utf-8")),
            ("msht-error", clip(q.error).encode("utf-8")),
            ("msht-source-topic", record.topic.encode("utf-8")),
            ("msht-partition", str(record.partition).encode("ascii")),
            ("msht-offset", str(record.offset).encode("ascii")),
            ("msht-input-sha256", input_digest(record.value).encode("ascii")),
            ("msht-input-bytes", str(len(record.value)).encode("ascii")),
        ]
        if q.limit:
            headers.append(("msht-limit", q.limit.encode("utf-8")))
        original = replay_of(record)
        if original:
            headers.append((REPLAY_HEADER, original.encode("utf-8")))
        if not whole:
            headers.append(("msht-truncated", str(len(value)).encode("ascii")))
        return Outgoing(self.topics.quarantine, value, key=key, headers=tuple(headers))

    def _audit(
        self,
        record: Incoming,
        now: datetime,
        *,
        kind: RecordKind,
        event_id: EventId,
        source: AgencyId,
        subject: Subject,
        routed: Routed | None = None,
        reason: str | None = None,
        limit: str | None = None,
        content: str | None = None,
    ) -> Outgoing:
        audit = self.chain.append(
            time=now,
            event_id=event_id,
            source=source,
            subject=subject,
            outcomes=routed.outcomes if routed else (),
            policy_version=self.config.policy.version,
            input_offset=record.offset,
            kind=kind,
            content_digest=content,
            # The reason is kept in the signed record too, not only in a header, so it lasts
            # as long as the audit topic (forever), not the quarantine topic's retention.
            reason=clip(reason) if reason and kind == "quarantine" else None,
            replay_of=replay_of(record),
            trust_version=self.config.trust_version,
        )
        headers = [("msht-reason", clip(reason).encode("utf-8"))] if reason else []
        if limit:
            headers.append(("msht-limit", limit.encode("utf-8")))
        return Outgoing(
            self.topics.audit,
            audit.to_bytes(),
            key=audit.chain.encode("utf-8"),
            headers=tuple(headers),
        )

    def committed(self) -> None:
        """The records since the last commit are durable: they are the new baseline."""
        self._pending.clear()
        self._head_before = self.chain.head
        observed, self._observed = self._observed, []
        if self.stats.metrics is not None:
            _count(self.stats.metrics, observed)
        self._batch_open = False

    def _begin(self) -> None:
        # The configuration is read at a batch's first record only (a commit or an abort
        # ends the batch): a reload never changes the policy or trust store in the middle
        # of one, and an idle partition's next batch uses what was installed meanwhile.
        if not self._batch_open:
            self._batch_open = True
            if self.live is not None:
                self.config = self.live()

    def rolled_back(self) -> None:
        """Forget the decisions of the aborted transaction (they will be made again)."""
        for event_id in self._pending:
            self.dedup.discard(event_id)
        self._pending.clear()
        self._observed.clear()
        self.chain.reset(self._head_before)
        self._batch_open = False


@dataclass(frozen=True, slots=True)
class _Observed:
    """What one input became, kept until its transaction commits."""

    appended_ms: int
    outcome: str
    reason: str | None = None
    routed: Routed | None = None


def _count(metrics: Metrics, observed: Sequence[_Observed]) -> None:
    """Add the committed inputs' outcomes to ``metrics`` (called once per commit)."""
    now = time.time()
    for o in observed:
        metrics.inputs.labels(o.outcome).inc()
        metrics.observe_end_to_end(o.appended_ms, now)
        if o.reason is not None:
            metrics.quarantined.labels(o.reason).inc()
        if o.routed is None:
            continue
        sent = {d.partner for d in o.routed.deliveries}
        for r in o.routed.outcomes:
            # A partner granted the event whose view could not be built (no valid key, too
            # large) is withheld, whatever the rule said.
            if r.partner in sent:
                outcome = str(Outcome.DELIVER)
            elif r.outcome is Outcome.DELIVER:
                outcome = str(Outcome.WITHHOLD)
            else:
                outcome = str(r.outcome)
            metrics.recipients.labels(r.partner, outcome).inc()


def _reused(admitted: Decoded, chain: str) -> Quarantined:
    header = admitted.envelope.header
    return Quarantined(
        "conflicting-duplicate",
        f"event_id: {header.event_id} was already decided on {chain} (another subject or "
        "source); an id names one event, delivered once",
        header.event_id,
        header.source,
        header.subject,
    )


def processor_from_state(
    config: RouteConfig,
    topics: Topics,
    state: ChainState,
    *,
    instance: str,
    window: int,
    signer: RecordSigner | None,
    clock: Callable[[], datetime] = _now,
    stats: ProcessorStats | None = None,
    decided: DecidedIds | None = None,
    live: Callable[[], RouteConfig] | None = None,
    kind: type[RouteProcessor] | None = None,
) -> RouteProcessor:
    """A processor continuing the chain and de-duplication memory the audit topic holds.

    ``stats``: counters to add to (shared by every partition of one router instance);
    ``decided``: the index of every partition's window in this router process;
    ``kind``: the processor class (the decisions topic's is a subclass), by default this one.
    """
    chain = AuditChain(state.head, router=instance, signer=signer)
    window_ids = DedupWindow(window, state.decided, state.digests)
    return (kind or RouteProcessor)(
        config,
        topics,
        chain,
        window_ids,
        clock=clock,
        stats=stats or ProcessorStats(),
        decided=decided,
        live=live,
    )
