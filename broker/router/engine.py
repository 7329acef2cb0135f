"""Exactly-once consume → process → produce over Kafka transactions.

aiokafka implements transactions without KIP-447 (no consumer-group fencing of producers),
so a producer that lost its partitions in a rebalance could otherwise still commit. The
engine therefore keeps **one transactional producer per input partition**, its
transactional id derived from the topic and partition: whoever is assigned the partition
next starts a producer with the same id, and the broker fences (and aborts) the old one.

Per batch of one partition: begin → outputs of every record → input offsets → commit.
Revocation aborts a batch that has not committed yet; a failed batch is aborted, the
partition's processor rolls back its in-memory state and the consumer re-reads the batch.
A producer fenced while the group still assigns us its partition (Kafka aborted a
transaction that outlived the transaction timeout) is replaced: new producer, state read
again from the audit topic, input re-read from the committed offset.
The processor decides what each record becomes and never raises for bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError, ProducerFenced
from aiokafka.structs import TopicPartition

from broker.logging import get_logger

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One input record, detached from aiokafka's types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    timestamp_type: int
    """Kafka's timestamp type: 1 when ``timestamp_ms`` is the broker's append time."""
    partitions: int
    """The topic's partition count when the record was read."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce inside the partition's transaction."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class PartitionProcessor(Protocol):
    """The pure part of one input partition's pipeline.

    ``process`` must not raise for bad input (it turns it into quarantine output).
    ``committed`` and ``rolled_back`` tell it whether the outputs it returned since the last
    call became durable, so in-memory state (audit chain head, dedup window) stays equal to
    what Kafka holds.
    """

    def process(self, record: Incoming) -> Sequence[Outgoing]:
        """The records to produce for ``record``."""
        ...

    def committed(self) -> None:
        """The outputs returned since the last commit are now durable."""
        ...

    def rolled_back(self) -> None:
        """The outputs returned since the last commit were aborted; forget them."""
        ...


ProcessorFactory = Callable[
    [Sequence[tuple[str, int]]], Awaitable[Mapping[tuple[str, int], PartitionProcessor]]
]
"""Builds (and restores the state of) the processors for newly assigned partitions, all at
once so state is read in one pass."""


@dataclass
class _Worker:
    producer: Any
    processor: PartitionProcessor
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    revoking: bool = False


class _RevokedError(Exception):
    """The partition was revoked while its batch was in flight; the batch is aborted."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine names its consumer group and transactional producers."""

    group_id: str
    topic_pattern: str
    transactional_id_prefix: str
    max_batch: int = 500
    poll_timeout_ms: int = 200
    metadata_max_age_ms: int = 5_000


@dataclass
class EngineStats:
    """Counters for progress reporting and tests."""

    records: int = 0
    batches: int = 0
    aborted_batches: int = 0


class TransactionalEngine:
    """Runs the consume → process → produce loop until ``stop`` is set."""

    def __init__(
        self,
        config: EngineConfig,
        client_kwargs: dict[str, Any],
        factory: ProcessorFactory,
    ) -> None:
        self._config = config
        self._client_kwargs = client_kwargs
        self._factory = factory
        self._workers: dict[TopicPartition, _Worker] = {}
        self._failure: Exception | None = None
        self.stats = EngineStats()

    # --- rebalance -----------------------------------------------------------------------

    async def _start_producer(self, tp: TopicPartition) -> Any:
        producer = AIOKafkaProducer(
            **self._client_kwargs,
            acks="all",
            enable_idempotence=True,
            transactional_id=f"{self._config.transactional_id_prefix}{tp.topic}.{tp.partition}",
        )
        # start() runs InitProducerId, which fences any earlier owner of this id and
        # aborts its open transaction before we read the state that depends on it.
        await producer.start()
        return producer

    async def _assign(self, partitions: Sequence[TopicPartition]) -> None:
        fresh = [tp for tp in partitions if tp not in self._workers]
        if not fresh:
            return
        producers = {tp: await self._start_producer(tp) for tp in fresh}
        processors = await self._factory([(tp.topic, tp.partition) for tp in fresh])
        for tp in fresh:
            self._workers[tp] = _Worker(
                producer=producers[tp], processor=processors[(tp.topic, tp.partition)]
            )
            _log.info("partition assigned", topic=tp.topic, partition=tp.partition)

    async def _revoke(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            worker = self._workers.get(tp)
            if worker is None:
                continue
            worker.revoking = True
            async with worker.lock:
                self._workers.pop(tp, None)
                await worker.producer.stop()
            _log.info("partition revoked", topic=tp.topic, partition=tp.partition)

    async def close(self) -> None:
        """Abort nothing in flight (the loop has stopped) and close every producer."""
        await self._revoke(list(self._workers))

    # --- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, process and commit until ``stop`` is set."""
        engine = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
                await engine._revoke(list(revoked))

            async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
                try:
                    await engine._assign(list(assigned))
                except Exception as exc:
                    # Without its state a partition cannot be routed safely; stop the
                    # instance so a supervisor restarts it rather than skip the partition.
                    engine._failure = exc

        consumer = AIOKafkaConsumer(
            **self._client_kwargs,
            group_id=self._config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=self._config.metadata_max_age_ms,
        )
        consumer.subscribe(pattern=self._config.topic_pattern, listener=_Listener())
        await consumer.start()
        try:
            while not stop.is_set():
                if self._failure is not None:
                    raise self._failure
                batches = await consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms, max_records=self._config.max_batch
                )
                for tp, records in batches.items():
                    if records:
                        await self._run_batch(consumer, tp, records)
        finally:
            await self.close()
            await consumer.stop()

    async def _run_batch(self, consumer: Any, tp: TopicPartition, records: list[Any]) -> None:
        worker = self._workers.get(tp)
        if worker is None:
            # aiokafka starts fetching a newly assigned partition while our rebalance
            # listener is still restoring its state; read these records again once ready
            # (or let the next owner read them, if it was revoked meanwhile).
            if tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
            return
        partitions = len(consumer.partitions_for_topic(tp.topic) or ())
        if partitions == 0:
            # No metadata for a topic we hold records of (it was just deleted?): without the
            # partition count the placement check cannot run; read the batch again later.
            if tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
            return
        async with worker.lock:
            if worker.revoking:
                return
            producer = worker.producer
            try:
                await producer.begin_transaction()
                for rec in records:
                    incoming = Incoming(
                        topic=rec.topic,
                        partition=rec.partition,
                        offset=rec.offset,
                        key=rec.key,
                        value=rec.value if rec.value is not None else b"",
                        timestamp_ms=rec.timestamp,
                        timestamp_type=rec.timestamp_type,
                        partitions=partitions,
                    )
                    for out in worker.processor.process(incoming):
                        await producer.send(
                            out.topic, out.value, key=out.key, headers=list(out.headers)
                        )
                await producer.send_offsets_to_transaction(
                    {tp: records[-1].offset + 1}, self._config.group_id
                )
                if worker.revoking:
                    raise _RevokedError
                await producer.commit_transaction()
            except (KafkaError, _RevokedError, asyncio.CancelledError) as exc:
                await self._abort(consumer, tp, worker, records[0].offset, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            worker.processor.committed()
            self.stats.records += len(records)
            self.stats.batches += 1

    async def _restart_partition(self, consumer: Any, tp: TopicPartition, worker: _Worker) -> None:
        """Take ``tp`` up again after its producer was fenced while the group still gives
        it to us; called with ``worker.lock`` held.

        Kafka fences a producer not only when another router starts one with the same
        transactional id, but also when the coordinator aborts a transaction that outlived
        ``transaction_timeout_ms`` (a long broker outage or a stalled batch). Without this
        the partition would stay assigned to us and never be routed again until the next
        rebalance. A new producer fences whoever holds the id now; the state is then read
        again from the audit topic and the input resumes at the committed offset, so the
        aborted batch is routed again, once. The worker is updated in place, so a
        revocation waiting for its lock stops the new producer.
        """
        _log.warning("partition restarted after fencing", topic=tp.topic, partition=tp.partition)
        try:
            worker.producer = await self._start_producer(tp)
            processors = await self._factory([(tp.topic, tp.partition)])
            worker.processor = processors[(tp.topic, tp.partition)]
            committed = await consumer.committed(tp)
        except Exception as exc:
            # Without a producer and its state the partition cannot be routed; stop the
            # instance so a supervisor restarts it rather than leave the partition idle.
            self._workers.pop(tp, None)
            self._failure = exc
            with contextlib.suppress(KafkaError):
                await worker.producer.stop()
            return
        if tp not in consumer.assignment():
            return  # revoked meanwhile; the revocation stops the new producer
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)

    async def _abort(
        self, consumer: Any, tp: TopicPartition, worker: _Worker, first_offset: int, exc: object
    ) -> None:
        self.stats.aborted_batches += 1
        worker.processor.rolled_back()
        if isinstance(exc, ProducerFenced):
            _log.warning("producer fenced", topic=tp.topic, partition=tp.partition)
            with contextlib.suppress(KafkaError):
                await worker.producer.stop()
            if tp in consumer.assignment() and not worker.revoking:
                await self._restart_partition(consumer, tp, worker)
            else:
                self._workers.pop(tp, None)
            return
        try:
            await worker.producer.abort_transaction()
        except KafkaError as abort_exc:
            _log.warning("abort failed", topic=tp.topic, error=type(abort_exc).__name__)
        if tp in consumer.assignment():
            consumer.seek(tp, first_offset)
        _log.warning(
            "batch aborted",
            topic=tp.topic,
            partition=tp.partition,
            reason=type(exc).__name__,
        )
