"""The Kafka seam (:mod:`broker.kafka.protocols`) implemented over aiokafka.

:class:`AioKafkaClients` is the one place the router's clients are built from
:class:`~broker.settings.Settings`. Every aiokafka error is translated here, at the
boundary: a fenced producer becomes :class:`~broker.errors.ProducerFencedError`, anything
else the :class:`~broker.errors.TransportError` family (see :mod:`broker.kafka.clients`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Generator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.producer import sender as _aiokafka_sender

from broker.errors import ProducerFencedError, RecordRefusedError, TransportError
from broker.kafka import clients
from broker.kafka.clients import client_kwargs, translate_error
from broker.kafka.protocols import RebalanceListener
from broker.kafka.records import Incoming, Outgoing, TopicPartition, Written
from broker.settings import Settings

_RECORD_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)
"""Produce errors that retrying the same record cannot cure: the record itself is refused."""

CONCURRENT_TRANSACTIONS_BACKOFF_S = 0.005
"""How long a transactional producer waits before asking again to add a partition to a new
transaction that the coordinator refused with CONCURRENT_TRANSACTIONS.

That refusal is the normal case right after a commit: the coordinator answers EndTxn before
it has written the previous transaction's commit markers (KAFKA-5477), which takes a few
milliseconds. aiokafka waits a fixed 20 ms (``sender.BACKOFF_OVERRIDE``) every time, which
on a router taking one transaction per fetched batch was the largest wait between publish
and delivery at 100-200 referrals/s (issue 19: the add-partitions step took ~25 ms at the
90th percentile instead of ~2-5 ms, and later inputs queued behind it). Asking again sooner
costs the coordinator a few small requests per transaction and changes nothing about what
is committed: the request is the same, only its retry comes sooner."""


def shorten_concurrent_transactions_backoff() -> None:
    """Set aiokafka's retry delay for CONCURRENT_TRANSACTIONS to
    :data:`CONCURRENT_TRANSACTIONS_BACKOFF_S` (process-wide; idempotent).

    aiokafka offers no setting for it (``retry_backoff_ms`` does not cover it), so the
    module constant its sender reads at each retry is replaced.
    """
    _aiokafka_sender.BACKOFF_OVERRIDE = CONCURRENT_TRANSACTIONS_BACKOFF_S


def _producer_error(exc: BaseException, settings: Settings) -> Exception:
    if isinstance(exc, ProducerFenced):
        return ProducerFencedError(f"producer fenced: {exc}")
    if isinstance(exc, _RECORD_ERRORS):
        return RecordRefusedError(f"Kafka refused the record: {type(exc).__name__}")
    return translate_error(exc, settings)


@contextmanager
def _translated(settings: Settings) -> Iterator[None]:
    """Re-raise aiokafka's errors in the block as the project's (fencing and refusals apart)."""
    try:
        yield
    except (KafkaError, TimeoutError, OSError) as exc:
        raise _producer_error(exc, settings) from exc


class _Delivery:
    """aiokafka's delivery future, raising the project's errors when awaited."""

    def __init__(self, future: Awaitable[object], settings: Settings) -> None:
        self._future = future
        self._settings = settings

    def __await__(self) -> Generator[object, None, object]:
        with _translated(self._settings):
            return (yield from self._future.__await__())


def _aio(tp: TopicPartition) -> AioTopicPartition:
    return AioTopicPartition(tp.topic, tp.partition)


def _ours(tp: Any) -> TopicPartition:
    return TopicPartition(str(tp.topic), int(tp.partition))


class AioTransactionalProducer:
    """:class:`~broker.kafka.protocols.TransactionalProducer` over :class:`AIOKafkaProducer`."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings) -> None:
        self._producer = producer
        self._settings = settings

    async def begin_transaction(self) -> None:
        """Open a transaction."""
        with _translated(self._settings):
            await self._producer.begin_transaction()

    async def send(self, record: Outgoing) -> Awaitable[object]:
        """Add ``record`` to the transaction; returns its delivery."""
        with _translated(self._settings):
            future = await self._producer.send(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        return _Delivery(future, self._settings)

    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        """Commit the input offsets with the transaction."""
        with _translated(self._settings):
            await self._producer.send_offsets_to_transaction(
                {_aio(tp): offset for tp, offset in offsets.items()}, group_id
            )

    async def commit_transaction(self) -> None:
        """Commit the transaction."""
        with _translated(self._settings):
            await self._producer.commit_transaction()

    async def abort_transaction(self) -> None:
        """Abort the transaction."""
        with _translated(self._settings):
            await self._producer.abort_transaction()

    async def stop(self) -> None:
        """Close the producer."""
        with _translated(self._settings):
            await self._producer.stop()


class _Written:
    """aiokafka's delivery future, as :class:`Written` and the project's errors."""

    def __init__(self, future: Awaitable[Any], settings: Settings) -> None:
        self._future = future
        self._settings = settings

    def __await__(self) -> Generator[object, None, Written]:
        with _translated(self._settings):
            meta = yield from self._future.__await__()
        return Written(int(meta.partition), int(meta.offset))


class AioProducer:
    """:class:`~broker.kafka.protocols.Producer` over :class:`AIOKafkaProducer`."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings) -> None:
        self._producer = producer
        self._settings = settings

    async def send(self, record: Outgoing) -> Awaitable[Written]:
        """Queue ``record``; returns its delivery."""
        with _translated(self._settings):
            future = await self._producer.send(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        return _Written(future, self._settings)

    async def send_and_wait(self, record: Outgoing) -> Written:
        """Send ``record`` and wait for Kafka's acknowledgement."""
        return await (await self.send(record))


class AioConsumer:
    """:class:`~broker.kafka.protocols.Consumer` over :class:`AIOKafkaConsumer`."""

    def __init__(self, consumer: AIOKafkaConsumer, settings: Settings) -> None:
        self._consumer = consumer
        self._settings = settings

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Incoming]]:
        """The next committed records."""
        with _translated(self._settings):
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return _incoming(batches, self._consumer)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` for the consumer's group."""
        with _translated(self._settings):
            await self._consumer.commit({_aio(tp): offset for tp, offset in offsets.items()})

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions assigned now."""
        return frozenset(_ours(tp) for tp in self._consumer.assignment())

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset to be returned for ``tp`` (``None`` before the first fetch)."""
        return _position(self._consumer, _aio(tp))

    def end_offset(self, tp: TopicPartition) -> int | None:
        """``tp``'s last stable offset as of the last fetch (read_committed)."""
        end: int | None = self._consumer.last_stable_offset(_aio(tp))
        return end


def _incoming(
    batches: Mapping[Any, Sequence[Any]], consumer: AIOKafkaConsumer
) -> dict[TopicPartition, list[Incoming]]:
    out: dict[TopicPartition, list[Incoming]] = {}
    for tp, records in batches.items():
        # The partition count lets the router check a record sits where its key belongs.
        partitions = len(consumer.partitions_for_topic(tp.topic) or ())
        out[_ours(tp)] = [
            Incoming(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value if r.value is not None else b"",
                timestamp_ms=r.timestamp,
                timestamp_type=r.timestamp_type,
                partitions=partitions,
                headers=tuple((k, bytes(v or b"")) for k, v in (r.headers or ())),
            )
            for r in records
        ]
    return out


@asynccontextmanager
async def producer(settings: Settings, **overrides: Any) -> AsyncIterator[AioProducer]:
    """An idempotent (acks=all) producer, started; stopped on exit."""
    async with clients.producer(settings, **overrides) as raw:
        yield AioProducer(raw, settings)


@asynccontextmanager
async def consumer(
    settings: Settings, *topics: str, group_id: str | None = None, **overrides: Any
) -> AsyncIterator[AioConsumer]:
    """A read-committed consumer of ``topics`` in ``group_id``, started; stopped on exit."""
    async with clients.consumer(settings, *topics, group_id=group_id, **overrides) as raw:
        yield AioConsumer(raw, settings)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, listener: RebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Sequence[Any]) -> None:
        await self._listener.on_partitions_revoked([_ours(tp) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Sequence[Any]) -> None:
        await self._listener.on_partitions_assigned([_ours(tp) for tp in assigned])


class AioGroupConsumer:
    """:class:`~broker.kafka.protocols.GroupConsumer` over :class:`AIOKafkaConsumer`."""

    def __init__(self, consumer: AIOKafkaConsumer, settings: Settings) -> None:
        self._consumer = consumer
        self._settings = settings

    def subscribe(self, pattern: str, listener: RebalanceListener) -> None:
        """Follow every topic matching ``pattern``."""
        self._consumer.subscribe(pattern=pattern, listener=_Listener(listener))

    async def start(self) -> None:
        """Connect and join the group."""
        with _translated(self._settings):
            await self._consumer.start()

    async def stop(self) -> None:
        """Leave the group and close."""
        await self._consumer.stop()

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Incoming]]:
        """The next records of assigned partitions."""
        with _translated(self._settings):
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return _incoming(batches, self._consumer)

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions assigned now."""
        return frozenset(_ours(tp) for tp in self._consumer.assignment())

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` next."""
        self._consumer.seek(_aio(tp), offset)

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset to be returned for ``tp`` (``None`` before the first fetch)."""
        return _position(self._consumer, _aio(tp))

    def end_offset(self, tp: TopicPartition) -> int | None:
        """``tp``'s last stable offset as of the last fetch (read_committed)."""
        end: int | None = self._consumer.last_stable_offset(_aio(tp))
        return end

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        """Read ``tp`` from its first offset next."""
        await self._consumer.seek_to_beginning(_aio(tp))

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp``."""
        with _translated(self._settings):
            offset = await self._consumer.committed(_aio(tp))
        return None if offset is None else int(offset)


class AioPartitionReader:
    """:class:`~broker.kafka.protocols.PartitionReader` over aiokafka, outside any group."""

    def __init__(self, settings: Settings, deadline: float) -> None:
        self._settings = settings
        self._deadline = deadline
        self._consumer: AIOKafkaConsumer | None = None

    async def partitions(self, topic: str) -> frozenset[int]:
        """The partition ids of ``topic`` (empty when it does not exist)."""
        # A consumer knows only the metadata of topics it subscribed to; a producer fetches any.
        probe = AIOKafkaProducer(**client_kwargs(self._settings))
        try:
            await probe.start()
            return frozenset(await asyncio.wait_for(probe.partitions_for(topic), 30))
        except (KafkaError, TimeoutError):
            return frozenset()
        finally:
            await probe.stop()

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The high watermark of each of ``tps``."""
        probe = AIOKafkaConsumer(
            **client_kwargs(self._settings), isolation_level="read_uncommitted"
        )
        try:
            with _translated(self._settings):
                await probe.start()
                offsets = await probe.end_offsets([_aio(tp) for tp in tps])
        finally:
            await probe.stop()
        return {_ours(tp): int(offset) for tp, offset in offsets.items()}

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[bytes]:
        """Committed values in ``[start, end)`` of ``tp``."""
        consumer = await self._reader()
        aio_tp = _aio(tp)
        if aio_tp not in consumer.assignment():
            consumer.assign([aio_tp])
        consumer.seek(aio_tp, start)
        values: list[bytes] = []
        loop = asyncio.get_running_loop()
        try:
            while await consumer.position(aio_tp) < end:
                if loop.time() > self._deadline:
                    raise TransportError(
                        f"topic {tp.topic!r} not readable to offset {end} within the restore "
                        "timeout (an open transaction elsewhere?)"
                    )
                batch = await consumer.getmany(aio_tp, timeout_ms=500, max_records=5_000)
                for record in batch.get(aio_tp, []):
                    if record.offset < end and record.value is not None:
                        values.append(record.value)
        except KafkaError as exc:
            raise translate_error(exc, self._settings) from exc
        return values

    async def _reader(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **client_kwargs(self._settings),
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        """Close the reading consumer, if one was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


class AioKafkaClients:
    """:class:`~broker.kafka.protocols.KafkaClients` for aiokafka, from ``settings``."""

    def __init__(self, settings: Settings, *, metadata_max_age_ms: int = 5_000) -> None:
        self._settings = settings
        self._metadata_max_age_ms = metadata_max_age_ms

    async def transactional_producer(self, transactional_id: str) -> AioTransactionalProducer:
        """A started transactional producer (acks=all, idempotent)."""
        shorten_concurrent_transactions_backoff()
        producer = AIOKafkaProducer(
            **client_kwargs(self._settings),
            acks="all",
            enable_idempotence=True,
            transactional_id=transactional_id,
        )
        # start() runs InitProducerId, which fences any earlier owner of this id and
        # aborts its open transaction before we read the state that depends on it.
        try:
            await producer.start()
        except (KafkaError, TimeoutError, OSError) as exc:
            await producer.stop()
            raise translate_error(exc, self._settings) from exc
        return AioTransactionalProducer(producer, self._settings)

    def group_consumer(self, group_id: str) -> AioGroupConsumer:
        """A read-committed consumer in ``group_id`` (offsets committed by transactions)."""
        consumer = AIOKafkaConsumer(
            **client_kwargs(self._settings),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=self._metadata_max_age_ms,
        )
        return AioGroupConsumer(consumer, self._settings)

    @asynccontextmanager
    async def partition_reader(self, timeout_s: float) -> AsyncIterator[AioPartitionReader]:
        """A reader whose reads give up after ``timeout_s`` in all."""
        reader = AioPartitionReader(self._settings, asyncio.get_running_loop().time() + timeout_s)
        try:
            yield reader
        finally:
            await reader.close()


def _position(consumer: AIOKafkaConsumer, tp: AioTopicPartition) -> int | None:
    """The fetch position aiokafka holds for ``tp`` without a broker round trip.

    ``AIOKafkaConsumer.position`` is a coroutine that may ask the broker; the metrics only
    need the position already known, which aiokafka keeps in its subscription state.
    """
    try:
        state = consumer._subscription.subscription.assignment.state_value(tp)
    except (AttributeError, KeyError):
        return None
    if state is None or not state.has_valid_position:
        return None
    position: int = state.position
    return position
