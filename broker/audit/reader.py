"""Read the whole audit topic, committed records only, for ``msht audit verify`` and ``query``.

The read is ``read_committed`` from the earliest offset of every partition up to the high
watermark taken when the read starts. The high watermark, not the end a ``read_committed``
consumer reports: that end is the last stable offset, which stops at the first transaction
still open on the partition, and committed records may lie beyond it (docs/AUDIT.md). The
reader keeps polling until its position on every partition reaches the high watermark;
aborted records and transaction markers advance the position without being returned.

Kafka errors come out as the project's :class:`~broker.errors.TransportError` family.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from broker.errors import TransportError
from broker.kafka import clients as kafka
from broker.settings import Settings

Progress = Callable[[int, int], None]
"""Called as ``progress(read, total)`` with offsets read so far and offsets to read."""

_POLL_MS = 500
_BATCH = 5_000


@dataclass(frozen=True)
class AuditEntry:
    """One committed value of the audit topic and where it was read."""

    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0


async def read_audit_topic(
    settings: Settings,
    topic: str | None = None,
    *,
    progress: Progress | None = None,
    timeout_s: float = 120.0,
) -> list[AuditEntry]:
    """Every committed record of the audit topic, partition by partition, in offset order.

    ``topic`` defaults to ``settings.audit_topic``; ``msht quarantine`` reads the quarantine
    topic with it (entries keep their key, headers and timestamp for that). Raises
    :class:`TransportError` when the topic does not exist, or when a partition cannot be read
    to its high watermark within ``timeout_s`` seconds (a transaction left open longer than
    the transaction timeout); :class:`~broker.errors.BrokerUnavailableError` and the other
    transport errors as :mod:`broker.kafka.clients` translates them.
    """
    name = topic or settings.audit_topic
    partitions = await _partitions(settings, name)
    async with kafka.consumer(settings) as client:
        high = await _high_watermarks(settings, partitions)
        low: dict[TopicPartition, int] = await client.beginning_offsets(partitions)
        client.assign(partitions)
        await client.seek_to_beginning(*partitions)
        total = sum(max(high[tp] - low[tp], 0) for tp in partitions)
        return await _drain(client, name, partitions, low, high, total, progress, timeout_s)


async def _partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    # Metadata for every topic, not just this one: a request naming a missing topic can make
    # a broker with auto-creation on create it, and verifying must never write anything.
    # (A consumer that is not subscribed keeps no metadata for the topic, so ask an admin.)
    async with kafka.admin_client(settings) as admin:
        described: list[dict[str, Any]] = await admin.describe_topics()
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code") == 0:
            found = sorted(p["partition"] for p in entry.get("partitions", ()))
            if found:
                return [TopicPartition(topic, p) for p in found]
    raise TransportError(f"audit topic {topic!r} does not exist or this user may not read it")


async def _high_watermarks(
    settings: Settings, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    # ListOffsets answers with the consumer's isolation level; only a read_uncommitted
    # client is told the high watermark rather than the last stable offset.
    async with kafka.consumer(settings, isolation_level="read_uncommitted") as probe:
        offsets: dict[TopicPartition, int] = await probe.end_offsets(list(partitions))
    return offsets


async def _drain(
    client: AIOKafkaConsumer,
    topic: str,
    partitions: Sequence[TopicPartition],
    low: Mapping[TopicPartition, int],
    high: Mapping[TopicPartition, int],
    total: int,
    progress: Progress | None,
    timeout_s: float,
) -> list[AuditEntry]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    entries: dict[TopicPartition, list[AuditEntry]] = {tp: [] for tp in partitions}
    positions = dict(low)
    pending = {tp for tp in partitions if high[tp] > low[tp]}
    if progress is not None:
        progress(0, total)
    while pending:
        if loop.time() > deadline:
            stuck = ", ".join(
                f"partition {tp.partition} at offset {positions[tp]} of {high[tp]}"
                for tp in sorted(pending, key=lambda tp: tp.partition)
            )
            raise TransportError(
                f"audit topic {topic!r}: not read to its end within {timeout_s:.0f}s ({stuck}); "
                "is a transaction still open?"
            )
        batches = await client.getmany(*pending, timeout_ms=_POLL_MS, max_records=_BATCH)
        for tp, records in batches.items():
            for record in records:
                if record.offset < high[tp]:
                    value = record.value if record.value is not None else b""
                    headers = tuple((k, bytes(v or b"")) for k, v in (record.headers or ()))
                    entries[tp].append(
                        AuditEntry(
                            tp.partition,
                            record.offset,
                            value,
                            record.key,
                            headers,
                            record.timestamp,
                        )
                    )
        for tp in list(pending):
            positions[tp] = min(await client.position(tp), high[tp])
            if positions[tp] >= high[tp]:
                pending.discard(tp)
        if progress is not None:
            progress(sum(positions[tp] - low[tp] for tp in partitions), total)
    return [entry for tp in partitions for entry in entries[tp]]


__all__ = ["AuditEntry", "Progress", "read_audit_topic"]
