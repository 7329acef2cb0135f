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

No input can hold its partition: the processor keeps every output under a fixed size, and
a record Kafka still refuses (too large for a topic's own limit, say) marks its input
*unwritable* — the batch is aborted once and, read again, that input yields only its small
audit-by-digest record. Processing runs in a worker thread, a slice of the batch at a time,
so CPU-heavy inputs never keep the event loop (heartbeats, fetches) waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from broker.errors import ProducerFencedError, RecordRefusedError, TransportError
from broker.kafka.protocols import GroupConsumer, KafkaClients, TransactionalProducer
from broker.kafka.records import Incoming, Outgoing, TopicPartition
from broker.logging import get_logger
from broker.observe.metrics import Metrics

_log = get_logger(__name__)


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

    def unwritable(self, record: Incoming, problem: str) -> Sequence[Outgoing]:
        """Kafka refused what ``process`` made of ``record``: the (small) records that
        audit it by digest instead, so that it does not hold its partition."""
        ...


ProcessorFactory = Callable[
    [Sequence[tuple[str, int]]], Awaitable[Mapping[tuple[str, int], PartitionProcessor]]
]
"""Builds (and restores the state of) the processors for newly assigned partitions, all at
once so state is read in one pass."""


@dataclass
class _Worker:
    producer: TransactionalProducer
    processor: PartitionProcessor
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    revoking: bool = False
    unwritable: dict[int, str] = field(default_factory=dict)
    """Offsets whose outputs Kafka refused, and why: audited by digest when read again."""


class _RevokedError(Exception):
    """The partition was revoked while its batch was in flight; the batch is aborted."""


class _UnwritableError(Exception):
    """Kafka refused a record produced for one input; the batch is aborted and that input
    is audited by digest when the batch is read again."""


CPU_SLICE_RECORDS = 50
"""Records processed per hand-off to a worker thread. Processing is CPU work (decoding,
verifying, opening and sealing); off the event loop, aiokafka's heartbeats and fetches keep
running while it happens, and the interpreter's switch interval bounds how long the loop
waits for the CPU (milliseconds, whatever one input costs)."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine names its consumer group and transactional producers."""

    group_id: str
    topic_pattern: str
    transactional_id_prefix: str
    max_batch: int = 500
    poll_timeout_ms: int = 200


@dataclass
class EngineStats:
    """Counters for progress reporting and tests."""

    records: int = 0
    batches: int = 0
    aborted_batches: int = 0


class TransactionalEngine:
    """Runs the consume → process → produce loop until ``stop`` is set.

    ``clients`` builds the consumer and the transactional producers: aiokafka in service
    (:class:`broker.kafka.aio.AioKafkaClients`), :class:`broker.kafka.fake.FakeKafka` in the
    engine's unit tests.
    """

    def __init__(
        self,
        config: EngineConfig,
        clients: KafkaClients,
        factory: ProcessorFactory,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._clients = clients
        self._factory = factory
        self._metrics = metrics
        self._workers: dict[TopicPartition, _Worker] = {}
        self._failure: Exception | None = None
        self.stats = EngineStats()

    # --- rebalance -----------------------------------------------------------------------

    async def _start_producer(self, tp: TopicPartition) -> TransactionalProducer:
        # Starting it fences any earlier owner of this id and aborts its open transaction
        # before we read the state that depends on it.
        return await self._clients.transactional_producer(
            f"{self._config.transactional_id_prefix}{tp.topic}.{tp.partition}"
        )

    async def _assign(self, partitions: Sequence[TopicPartition]) -> None:
        health = self._metrics.health if self._metrics is not None else None
        fresh = [tp for tp in partitions if tp not in self._workers]
        if health is not None:
            health.assigned = True
            health.restored = not fresh
        if not fresh:
            return
        producers = {tp: await self._start_producer(tp) for tp in fresh}
        processors = await self._factory([(tp.topic, tp.partition) for tp in fresh])
        for tp in fresh:
            self._workers[tp] = _Worker(
                producer=producers[tp], processor=processors[(tp.topic, tp.partition)]
            )
            _log.info("partition assigned", topic=tp.topic, partition=tp.partition)
        if health is not None:
            health.restored = True

    async def _revoke(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            worker = self._workers.get(tp)
            if worker is None:
                continue
            worker.revoking = True
            async with worker.lock:
                self._workers.pop(tp, None)
                await worker.producer.stop()
            if self._metrics is not None:
                self._metrics.lag.remove(tp.topic, str(tp.partition))
            _log.info("partition revoked", topic=tp.topic, partition=tp.partition)

    async def close(self) -> None:
        """Abort nothing in flight (the loop has stopped) and close every producer."""
        await self._revoke(list(self._workers))

    # --- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, process and commit until ``stop`` is set."""
        consumer = self._clients.group_consumer(self._config.group_id)
        consumer.subscribe(self._config.topic_pattern, _Listener(self))
        await consumer.start()
        if self._metrics is not None:
            self._metrics.health.connected = True
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
                self._measure_lag(consumer)
        except BaseException as exc:
            if self._metrics is not None:
                self._metrics.health.failed = type(exc).__name__
            raise
        finally:
            if self._metrics is not None:
                self._metrics.health.connected = False
            await self.close()
            await consumer.stop()

    def _measure_lag(self, consumer: GroupConsumer) -> None:
        """Each owned partition's lag as of the last fetch (records not yet committed)."""
        if self._metrics is None:
            return
        for tp in consumer.assignment():
            end, position = consumer.end_offset(tp), consumer.position(tp)
            if end is not None and position is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(end - position, 0))

    async def _run_batch(
        self, consumer: GroupConsumer, tp: TopicPartition, records: Sequence[Incoming]
    ) -> None:
        worker = self._workers.get(tp)
        if worker is None:
            # aiokafka starts fetching a newly assigned partition while our rebalance
            # listener is still restoring its state; read these records again once ready
            # (or let the next owner read them, if it was revoked meanwhile).
            if tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
            return
        if records[0].partitions == 0:
            # No metadata for a topic we hold records of (it was just deleted?): without the
            # partition count the placement check cannot run; read the batch again later.
            if tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
            return
        async with worker.lock:
            if worker.revoking:
                return
            producer = worker.producer
            started = time.monotonic()
            try:
                await producer.begin_transaction()
                sent: list[tuple[int, Awaitable[object]]] = []
                for start in range(0, len(records), CPU_SLICE_RECORDS):
                    chunk = records[start : start + CPU_SLICE_RECORDS]
                    outputs = await asyncio.to_thread(_process_all, worker, chunk)
                    for record, outs in zip(chunk, outputs, strict=True):
                        await self._send(worker, record, outs, sent)
                await self._check_sent(worker, sent)
                await producer.send_offsets_to_transaction(
                    {tp: records[-1].offset + 1}, self._config.group_id
                )
                if worker.revoking:
                    raise _RevokedError
                await producer.commit_transaction()
            except (TransportError, _RevokedError, _UnwritableError, asyncio.CancelledError) as exc:
                await self._abort(consumer, tp, worker, records[0].offset, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            if self._metrics is not None:
                self._metrics.batch_seconds.observe(time.monotonic() - started)
                self._metrics.committed()
            worker.processor.committed()
            for rec in records:
                worker.unwritable.pop(rec.offset, None)
            self.stats.records += len(records)
            self.stats.batches += 1

    async def _send(
        self,
        worker: _Worker,
        record: Incoming,
        outs: Sequence[Outgoing],
        sent: list[tuple[int, Awaitable[object]]],
    ) -> None:
        """Hand ``record``'s outputs to the producer; a record Kafka's client refuses
        (too large) marks the input unwritable and aborts the batch."""
        for out in outs:
            try:
                future = await worker.producer.send(out)
            except RecordRefusedError as exc:
                self._mark_unwritable(worker, record.offset, exc)
                raise _UnwritableError from exc
            sent.append((record.offset, future))

    async def _check_sent(self, worker: _Worker, sent: list[tuple[int, Awaitable[object]]]) -> None:
        """Wait for every record of the batch; raise if the broker refused one.

        aiokafka commits a transaction even when one of its records failed, which would
        lose that record (an audit record: a gap in the chain). A refusal that retrying
        cannot cure marks its input unwritable, so the batch, read again, passes it.
        """
        failed: Exception | None = None
        for offset, delivery in sent:
            try:
                await delivery
            except RecordRefusedError as exc:
                self._mark_unwritable(worker, offset, exc)
                failed = failed or _UnwritableError()
            except TransportError as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    def _mark_unwritable(self, worker: _Worker, offset: int, exc: BaseException) -> None:
        if offset in worker.unwritable:
            # Even its audit-by-digest records were refused: the audit topic itself is
            # unusable, and an input must not pass unaudited. Keep retrying, loudly.
            _log.error("audit record refused", offset=offset, error=type(exc).__name__)
            return
        worker.unwritable[offset] = f"Kafka refused a record produced for it ({type(exc).__name__})"

    async def _restart_partition(
        self, consumer: GroupConsumer, tp: TopicPartition, worker: _Worker
    ) -> None:
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
            with contextlib.suppress(TransportError):
                await worker.producer.stop()
            return
        if tp not in consumer.assignment():
            return  # revoked meanwhile; the revocation stops the new producer
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)

    async def _abort(
        self,
        consumer: GroupConsumer,
        tp: TopicPartition,
        worker: _Worker,
        first_offset: int,
        exc: object,
    ) -> None:
        self.stats.aborted_batches += 1
        worker.processor.rolled_back()
        if self._metrics is not None:
            self._metrics.aborts.labels(_cause(exc)).inc()
            if isinstance(exc, ProducerFencedError):
                self._metrics.fenced.inc()
        if isinstance(exc, ProducerFencedError):
            _log.warning("producer fenced", topic=tp.topic, partition=tp.partition)
            with contextlib.suppress(TransportError):
                await worker.producer.stop()
            if tp in consumer.assignment() and not worker.revoking:
                await self._restart_partition(consumer, tp, worker)
            else:
                self._workers.pop(tp, None)
            return
        try:
            await worker.producer.abort_transaction()
        except TransportError as abort_exc:
            _log.warning("abort failed", topic=tp.topic, error=type(abort_exc).__name__)
        if tp in consumer.assignment():
            consumer.seek(tp, first_offset)
        _log.warning(
            "batch aborted",
            topic=tp.topic,
            partition=tp.partition,
            reason=type(exc).__name__,
        )


def _cause(exc: object) -> str:
    """A short, fixed label for why a batch was aborted."""
    if isinstance(exc, _RevokedError):
        return "revoked"
    if isinstance(exc, _UnwritableError):
        return "unwritable"
    if isinstance(exc, ProducerFencedError):
        return "fenced"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "transport"


def _process_all(worker: _Worker, records: Sequence[Incoming]) -> list[Sequence[Outgoing]]:
    """The outputs of each of ``records`` (run in a worker thread, one batch at a time)."""
    out: list[Sequence[Outgoing]] = []
    for record in records:
        problem = worker.unwritable.get(record.offset)
        if problem is None:
            out.append(worker.processor.process(record))
        else:
            out.append(worker.processor.unwritable(record, problem))
    return out


class _Listener:
    """The engine's side of a rebalance."""

    def __init__(self, engine: TransactionalEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._engine._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        try:
            await self._engine._assign(list(assigned))
        except Exception as exc:
            # Without its state a partition cannot be routed safely; stop the instance so
            # a supervisor restarts it rather than skip the partition.
            self._engine._failure = exc
