"""The Kafka seam: what the exchange asks of a Kafka client, as Protocols.

The router's engine and state restore take these, never a concrete client. Two
implementations exist: :mod:`broker.kafka.clients` (aiokafka, built from
:class:`~broker.settings.Settings`) and :mod:`broker.kafka.fake` (in memory, for unit tests
of the engine's abort, fence and revoke paths). Implementations raise the project's
:class:`~broker.errors.TransportError` family, never their library's own errors; a fenced
producer raises :class:`~broker.errors.ProducerFencedError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from broker.kafka.records import Incoming, Outgoing, TopicPartition, Written


class RebalanceListener(Protocol):
    """Told when the consumer group takes partitions away or gives new ones."""

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """``revoked`` are no longer ours once this returns: stop work on them."""
        ...

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """``assigned`` are ours from now on: prepare their state before records arrive."""
        ...


class Producer(Protocol):
    """An idempotent (acks=all) producer outside transactions: what publishers use."""

    async def send(self, record: Outgoing) -> Awaitable[Written]:
        """Queue ``record``; returns its delivery (await it for where it was written)."""
        ...

    async def send_and_wait(self, record: Outgoing) -> Written:
        """Send ``record`` and wait until Kafka has it."""
        ...


class Consumer(Protocol):
    """A read-committed consumer of given topics whose offsets the caller commits."""

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Incoming]]:
        """The next records (possibly none)."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the group's ``offsets`` (the next offset to read, per partition)."""
        ...


class TransactionalProducer(Protocol):
    """A started producer with one transactional id; starting it fenced any earlier owner."""

    async def begin_transaction(self) -> None:
        """Open a transaction."""
        ...

    async def send(self, record: Outgoing) -> Awaitable[object]:
        """Add ``record`` to the open transaction (written only if it commits).

        Returns its delivery: awaiting it raises :class:`~broker.errors.RecordRefusedError`
        when Kafka refuses this record itself (too large), or another transport error.
        """
        ...

    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        """Commit ``group_id``'s input ``offsets`` together with the transaction."""
        ...

    async def commit_transaction(self) -> None:
        """Make the transaction's records and offsets durable and visible, atomically."""
        ...

    async def abort_transaction(self) -> None:
        """Discard the open transaction."""
        ...

    async def stop(self) -> None:
        """Close the producer (an open transaction is aborted by the broker)."""
        ...


@runtime_checkable
class PositionedConsumer(Protocol):
    """A consumer that can say how far behind it is (for the consumer-lag metric)."""

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        ...

    def position(self, tp: TopicPartition) -> int | None:
        """The offset of the next record to be returned for ``tp`` (``None`` if unknown)."""
        ...

    def end_offset(self, tp: TopicPartition) -> int | None:
        """``tp``'s last stable offset as of the last fetch (``None`` before one)."""
        ...


class GroupConsumer(Protocol):
    """A consumer in a group that reads committed records only and never auto-commits."""

    def subscribe(self, pattern: str, listener: RebalanceListener) -> None:
        """Follow every topic matching ``pattern``; ``listener`` hears of rebalances."""
        ...

    async def start(self) -> None:
        """Connect and join the group."""
        ...

    async def stop(self) -> None:
        """Leave the group and close."""
        ...

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Incoming]]:
        """The next records of assigned partitions (possibly none)."""
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` next."""
        ...

    def position(self, tp: TopicPartition) -> int | None:
        """The offset of the next record to be returned for ``tp`` (``None`` if unknown)."""
        ...

    def end_offset(self, tp: TopicPartition) -> int | None:
        """``tp``'s last stable offset as of the last fetch (``None`` before one)."""
        ...

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        """Read ``tp`` from its first offset next."""
        ...

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (``None`` when nothing was committed)."""
        ...


class PartitionReader(Protocol):
    """Reads committed records of given partitions, outside any group (state restore)."""

    async def partitions(self, topic: str) -> frozenset[int]:
        """The partition ids of ``topic`` (empty when it does not exist)."""
        ...

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The high watermark of each of ``tps``."""
        ...

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[bytes]:
        """The values of committed records in ``[start, end)`` of ``tp``, in offset order."""
        ...


class KafkaClients(Protocol):
    """Builds the clients the router needs; one place decides how they are configured."""

    async def transactional_producer(self, transactional_id: str) -> TransactionalProducer:
        """A started transactional producer with ``transactional_id`` (fences older owners)."""
        ...

    def group_consumer(self, group_id: str) -> GroupConsumer:
        """A (not yet started) read-committed consumer in ``group_id``."""
        ...

    def partition_reader(self, timeout_s: float) -> AbstractAsyncContextManager[PartitionReader]:
        """A reader whose reads give up (``TransportError``) after ``timeout_s`` in all."""
        ...
