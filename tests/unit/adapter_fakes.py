"""Stand-ins for the signed-event core and Kafka, for the publisher and subscriber unit tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.intake.identity import canonical_json
from adapters.protocol import CanonicalEvent, DeliveredEvent
from broker.errors import BadSignatureError
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


@dataclass(frozen=True)
class RecordMeta:
    partition: int
    offset: int


@dataclass
class FakeProducer:
    """Records what was sent; ``send`` returns an awaitable like aiokafka's."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any = None) -> Any:
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        offset = len(self.sent) - 1

        async def ack() -> RecordMeta:
            return RecordMeta(0, offset)

        return ack()

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> RecordMeta:
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": None})
        return RecordMeta(0, len(self.sent) - 1)


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Record:
    value: bytes
    offset: int


@dataclass
class FakeConsumer:
    """Hands out ``values`` once, then nothing; records commits."""

    topic: str
    values: list[bytes]
    committed: list[int] = field(default_factory=list)
    _given: bool = False

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TP, list[Record]]:
        if self._given:
            return {}
        self._given = True
        return {TP(self.topic, 0): [Record(v, i) for i, v in enumerate(self.values)]}

    async def commit(self, offsets: dict[TP, int]) -> None:
        self.committed.extend(offsets.values())
