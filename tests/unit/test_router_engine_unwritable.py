"""The engine passes an input whose output Kafka refuses, instead of retrying it for ever.

A fake transactional producer refuses (as a broker does with ``MESSAGE_TOO_LARGE``) every
quarantine record: the first run of the batch aborts, and the second yields the refused
input's audit record only, so the batch commits and the partition moves on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import TopicPartition

from broker.router.engine import (
    EngineConfig,
    Incoming,
    Outgoing,
    TransactionalEngine,
    _Worker,
)

TP = TopicPartition("ingress.x", 0)


@dataclass
class FakeProducer:
    """Refuses records for ``refused_topic`` on their future, as a broker does."""

    refused_topic: str = "quarantine"
    committed: list[list[tuple[str, bytes]]] = field(default_factory=list)
    aborted: int = 0
    _open: list[tuple[str, bytes]] = field(default_factory=list)

    async def begin_transaction(self) -> None:
        self._open = []

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if topic == self.refused_topic:
            future.set_exception(MessageSizeTooLargeError())
        else:
            future.set_result(None)
            self._open.append((topic, value))
        return future

    async def send_offsets_to_transaction(self, *_: Any) -> None:
        return None

    async def commit_transaction(self) -> None:
        self.committed.append(self._open)

    async def abort_transaction(self) -> None:
        self.aborted += 1


class FakeConsumer:
    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        return None


@dataclass
class Processor:
    """Quarantines every record; audits refused ones by offset."""

    def process(self, record: Incoming) -> list[Outgoing]:
        return [Outgoing("quarantine", record.value), Outgoing("audit", b"q%d" % record.offset)]

    def unwritable(self, record: Incoming, problem: str) -> list[Outgoing]:
        return [Outgoing("audit", b"u%d" % record.offset)]

    def committed(self) -> None:
        return None

    def rolled_back(self) -> None:
        return None


@dataclass
class Rec:
    offset: int
    topic: str = TP.topic
    partition: int = TP.partition
    key: bytes | None = None
    value: bytes = b"v"
    timestamp: int = 0


async def test_refused_output_aborts_once_then_the_input_is_audited_by_digest_and_passed() -> None:
    engine = TransactionalEngine(EngineConfig("g", "ingress.*", "t-"), {}, factory=None)  # type: ignore[arg-type]
    producer = FakeProducer()
    engine._workers[TP] = _Worker(producer=producer, processor=Processor())
    records: list[Any] = [Rec(0), Rec(1)]
    await engine._run_batch(FakeConsumer(), TP, records)
    assert (producer.aborted, producer.committed) == (1, [])
    await engine._run_batch(FakeConsumer(), TP, records)
    assert producer.committed == [[("audit", b"u0"), ("audit", b"u1")]]
    assert engine._workers[TP].unwritable == {}
