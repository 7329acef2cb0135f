"""Rebuild a partition's router state from the audit topic after it is assigned.

The audit topic is the router's only memory: for each chain (one per input partition) it
holds the chain head to continue from and the event ids already decided, which is what
de-duplicates a re-published event. The read is ``read_committed`` and runs up to the
high watermark observed at the start — not only to the last stable offset, because another
router's open transaction on a different chain can hold that back while committed records
of *this* chain lie beyond it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from broker.audit import ChainHead, parse_record
from broker.errors import AuditChainError, TransportError
from broker.types import EventId


class DedupWindow:
    """The most recent ``capacity`` decided event ids of one chain.

    Bounded so the router's memory does not grow with the number of events it has seen; a
    re-publication is expected within minutes to hours of the original, far inside the window.
    """

    def __init__(self, capacity: int, initial: Iterable[EventId] = ()) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[EventId, None] = OrderedDict()
        for event_id in initial:
            self.add(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: EventId) -> None:
        """Remember ``event_id``, forgetting the oldest when full."""
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def discard(self, event_id: EventId) -> None:
        """Forget ``event_id`` (its decision was rolled back)."""
        self._ids.pop(event_id, None)


@dataclass
class ChainState:
    """What the audit topic says about one chain."""

    head: ChainHead
    decided: list[EventId] = field(default_factory=list)


async def read_chain_states(
    client_kwargs: dict[str, Any],
    audit_topic: str,
    chains: Iterable[str],
    *,
    window: int,
    timeout_s: float = 120.0,
) -> dict[str, ChainState]:
    """Scan the audit topic once and return the head and recent decisions of each chain."""
    states = {c: ChainState(head=ChainHead.genesis(c)) for c in chains}
    consumer = AIOKafkaConsumer(
        **client_kwargs,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _partitions(client_kwargs, audit_topic)
        if not partitions:
            raise TransportError(f"audit topic {audit_topic!r} does not exist or is not readable")
        tps = [TopicPartition(audit_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        high = await _high_watermarks(client_kwargs, tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pending = {tp for tp in tps if high[tp] > 0}
        while pending:
            if loop.time() > deadline:
                raise TransportError(
                    f"audit topic {audit_topic!r} not readable to its end within {timeout_s:.0f}s"
                    " (an open transaction elsewhere?)"
                )
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            for records in batches.values():
                for rec in records:
                    _apply(states, rec.value, window)
            for tp in list(pending):
                if await consumer.position(tp) >= high[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return states


def _apply(states: dict[str, ChainState], value: bytes | None, window: int) -> None:
    if value is None:
        return
    try:
        record = parse_record(value)
    except AuditChainError:
        return  # `msht audit verify` reports unreadable records; resuming passes over them
    state = states.get(record.chain)
    if state is None:
        return
    state.head = ChainHead(chain=record.chain, next_seq=record.seq + 1, digest=record.digest)
    if record.kind == "decision":
        state.decided.append(record.event_id)
        if len(state.decided) > 2 * window:
            del state.decided[:-window]


async def _partitions(client_kwargs: dict[str, Any], topic: str) -> set[int]:
    """The partition ids of ``topic`` (empty when it does not exist)."""
    # A consumer knows only the metadata of topics it subscribed to; a producer fetches any.
    probe = AIOKafkaProducer(**client_kwargs)
    await probe.start()
    try:
        return set(await asyncio.wait_for(probe.partitions_for(topic), 30))
    except (KafkaError, TimeoutError):
        return set()
    finally:
        await probe.stop()


async def _high_watermarks(
    client_kwargs: dict[str, Any], tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    probe = AIOKafkaConsumer(**client_kwargs, isolation_level="read_uncommitted")
    await probe.start()
    try:
        offsets: dict[TopicPartition, int] = await probe.end_offsets(tps)
    finally:
        await probe.stop()
    return offsets
