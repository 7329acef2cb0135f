"""Stand-ins for the signed-event core and Kafka, for the publisher and subscriber unit tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.intake.identity import canonical_json
from adapters.protocol import CanonicalEvent, DeliveredEvent
from broker.errors import BadSignatureError
from broker.kafka.records import Incoming, Outgoing, TopicPartition, Written
from broker.types import AgencyId, EventId


@dataclass
class JsonSealer:
    """ "Seals" an event as canonical JSON (no signature: tests of the plumbing only)."""

    agency: AgencyId

    def seal(self, event: CanonicalEvent, event_id: EventId) -> bytes:
        return canonical_json(
            {
                "event_id": event_id,
                "event_type": event.event_type,
                "source": self.agency,
                "subject": event.subject,
                "markings": event.markings,
                "payload": event.payload,
                "occurred_at": event.occurred_at,
            }
        )


class JsonOpener:
    """Opens what :class:`JsonSealer` sealed; bytes starting ``forged`` fail verification."""

    def open(self, data: bytes) -> DeliveredEvent:
        if data.startswith(b"forged"):
            raise BadSignatureError("signature of key k-1 does not match")
        doc = json.loads(data)
        return DeliveredEvent(
            event_id=doc["event_id"],
            event_type=doc["event_type"],
            source=doc["source"],
            subject=doc["subject"],
            markings=doc["markings"],
            payload=doc["payload"],
            occurred_at=doc["occurred_at"] and datetime.fromisoformat(doc["occurred_at"]),
        )


@dataclass
class FakeProducer:
    """Records what was sent; ``send`` returns an awaitable like the seam's producer."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, record: Outgoing) -> Awaitable[Written]:
        self.sent.append(
            {"topic": record.topic, "value": record.value, "key": record.key,
             "headers": list(record.headers) or None}
        )  # fmt: skip
        offset = len(self.sent) - 1

        async def ack() -> Written:
            return Written(0, offset)

        return ack()

    async def send_and_wait(self, record: Outgoing) -> Written:
        return await (await self.send(record))


@dataclass
class FakeConsumer:
    """Hands out ``values`` once, then nothing; records commits."""

    topic: str
    values: list[bytes]
    committed: list[int] = field(default_factory=list)
    _given: bool = False

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Incoming]]:
        if self._given:
            return {}
        self._given = True
        return {
            TopicPartition(self.topic, 0): [
                Incoming(self.topic, 0, i, None, v, 0, 1, 1) for i, v in enumerate(self.values)
            ]
        }

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.committed.extend(offsets.values())
