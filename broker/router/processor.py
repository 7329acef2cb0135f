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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.audit import AuditChain, ChainHead, RecordSigner
from broker.audit.record import RecordKind
from broker.envelope import Header
from broker.logging import get_logger
from broker.router.engine import Incoming, Outgoing
from broker.router.restore import ChainState, DedupWindow
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
from broker.types import AgencyId, EventId, Subject

_log = get_logger(__name__)

UNKNOWN = "-"
"""Stands for an id the input did not yield (it could not be decoded)."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ProcessorStats:
    """Counts of what this partition's inputs became (committed or not)."""

    decided: int = 0
    delivered: int = 0
    quarantined: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class Topics:
    """Where the router writes besides the delivery topics."""

    audit: str
    quarantine: str


@dataclass
class RouteProcessor:
    """The :class:`~broker.router.engine.PartitionProcessor` of one ingress partition."""

    config: RouteConfig
    topics: Topics
    chain: AuditChain
    dedup: DedupWindow
    clock: Callable[[], datetime] = _now
    stats: ProcessorStats = field(default_factory=ProcessorStats)
    _pending: list[EventId] = field(default_factory=list)
    _head_before: ChainHead = field(init=False)

    def __post_init__(self) -> None:
        self._head_before = self.chain.head

    def process(self, record: Incoming) -> Sequence[Outgoing]:
        """Route ``record``; bad input becomes quarantine output, never an exception."""
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
            routed = route(self.config, admitted, record.value, now)
        except Exception as exc:
            _log.exception("routing failed", topic=record.topic, offset=record.offset)
            failed = Quarantined("internal-error", f"router error {type(exc).__name__}")
            return self._quarantine(record, failed, now)
        return self._deliver(record, routed, digest, now)

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
        self, record: Incoming, routed: Routed, digest: str, now: datetime
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
        _log.warning(
            "event quarantined",
            event_id=q.event_id or UNKNOWN,
            agency=q.source or UNKNOWN,
            reason=q.reason,
            topic=record.topic,
            offset=record.offset,
        )
        headers = (
            ("msht-reason", q.reason.encode("utf-8")),
            ("msht-error", q.error.encode("utf-8")),
            ("msht-source-topic", record.topic.encode("utf-8")),
            ("msht-partition", str(record.partition).encode("ascii")),
            ("msht-offset", str(record.offset).encode("ascii")),
        )
        return [
            Outgoing(self.topics.quarantine, record.value, key=record.key, headers=headers),
            self._audit(
                record,
                now,
                kind="quarantine",
                event_id=q.event_id or EventId(f"{UNKNOWN}{record.topic}@{record.offset}"),
                source=q.source or AgencyId(UNKNOWN),
                subject=q.subject or Subject(UNKNOWN),
                reason=q.reason,
                content=content,
            ),
        ]

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
        )
        headers = (("msht-reason", reason.encode("utf-8")),) if reason else ()
        return Outgoing(
            self.topics.audit, audit.to_bytes(), key=audit.chain.encode("utf-8"), headers=headers
        )

    def committed(self) -> None:
        """The records since the last commit are durable: they are the new baseline."""
        self._pending.clear()
        self._head_before = self.chain.head

    def rolled_back(self) -> None:
        """Forget the decisions of the aborted transaction (they will be made again)."""
        for event_id in self._pending:
            self.dedup.discard(event_id)
        self._pending.clear()
        self.chain.reset(self._head_before)


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
) -> RouteProcessor:
    """A processor continuing the chain and de-duplication memory the audit topic holds.

    ``stats``: counters to add to (shared by every partition of one router instance).
    """
    chain = AuditChain(state.head, router=instance, signer=signer)
    window_ids = DedupWindow(window, state.decided, state.digests)
    return RouteProcessor(
        config, topics, chain, window_ids, clock=clock, stats=stats or ProcessorStats()
    )
