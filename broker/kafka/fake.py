"""An in-memory Kafka implementing the seam (:mod:`broker.kafka.protocols`), for unit tests.

It keeps what the engine's guarantees depend on, and nothing else: partitioned logs;
transactions whose records and input offsets become visible together on commit and never
after an abort; ``read_committed`` visibility (nothing past an open transaction); fencing
by transactional id (starting a producer with an id bumps its epoch, aborts the older
owner's open transaction, and the older owner's next call raises
:class:`~broker.errors.ProducerFencedError`); a transaction the "coordinator" expires; group
assignment and revocation driven by the test; and injected failures. Nothing sleeps longer
than a poll's timeout, so the engine's hard paths run in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from broker.errors import ProducerFencedError, RecordRefusedError, TransportError
from broker.kafka.partitioner import default_partition
from broker.kafka.protocols import RebalanceListener
from broker.kafka.records import Incoming, Outgoing, TopicPartition


@dataclass
class _Transaction:
    state: str = "open"  # open | committed | aborted
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    group_id: str | None = None


@dataclass
class _Entry:
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    txn: _Transaction | None


class FakeKafka:
    """The cluster: topics, transactions, committed group offsets and group membership."""

    def __init__(self, *, max_record_bytes: int = 1_048_576) -> None:
        self.max_record_bytes = max_record_bytes
        """Records larger than this are refused, as a topic's ``max.message.bytes`` does."""
        self._logs: dict[TopicPartition, list[_Entry]] = {}
        self._epochs: dict[str, int] = {}
        self._open: dict[str, _Transaction] = {}
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._failures: dict[str, list[Exception]] = {}
        self.consumers: list[FakeGroupConsumer] = []
        self.on_operation: dict[str, Callable[[], Awaitable[None]]] = {}
        """One-shot callbacks run inside a producer operation (e.g. to revoke mid-batch)."""
        self.producers_started = 0

    # --- test set-up and inspection -----------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` with ``partitions`` empty partitions."""
        for p in range(partitions):
            self._logs.setdefault(TopicPartition(name, p), [])

    def produce(
        self,
        topic: str,
        partition: int,
        value: bytes,
        key: bytes | None = None,
        headers: tuple[tuple[str, bytes], ...] = (),
    ) -> int:
        """Append a committed, non-transactional record (test input); returns its offset."""
        log = self._logs[TopicPartition(topic, partition)]
        log.append(_Entry(len(log), key, value, headers, None))
        return len(log) - 1

    def committed_values(self, topic: str) -> list[bytes]:
        """Every committed value of ``topic``, partition by partition, in offset order."""
        return [
            e.value
            for tp in sorted(t for t in self._logs if t.topic == topic)
            for e in self._visible(tp, 0, len(self._logs[tp]))
        ]

    def committed_offset(self, group_id: str, tp: TopicPartition) -> int | None:
        """``group_id``'s committed offset of ``tp``."""
        return self._committed.get((group_id, tp))

    def fail_next(self, operation: str, error: Exception) -> None:
        """Make the next call of ``operation`` (a producer or consumer method name) raise."""
        self._failures.setdefault(operation, []).append(error)

    def expire_transaction(self, transactional_id: str) -> None:
        """What the coordinator does to a transaction that outlived its timeout: abort it
        and bump the epoch, so its producer is fenced."""
        self._abort_open(transactional_id)
        self._epochs[transactional_id] = self._epochs.get(transactional_id, 0) + 1

    async def rebalance(
        self, assignment: Mapping[FakeGroupConsumer, Sequence[TopicPartition]]
    ) -> None:
        """Give each consumer exactly the partitions named for it: revoke first, then assign,
        as a group coordinator does."""
        for consumer, tps in assignment.items():
            lost = [tp for tp in consumer.owned if tp not in tps]
            if lost and consumer.listener is not None:
                consumer.owned = [tp for tp in consumer.owned if tp not in lost]
                await consumer.listener.on_partitions_revoked(lost)
        for consumer, tps in assignment.items():
            gained = [tp for tp in tps if tp not in consumer.owned]
            for tp in gained:
                committed = self._committed.get((consumer.group_id, tp))
                consumer.positions[tp] = committed if committed is not None else 0
            consumer.owned = [*consumer.owned, *gained]
            if gained and consumer.listener is not None:
                await consumer.listener.on_partitions_assigned(gained)

    # --- the seam's builders -----------------------------------------------------------

    async def transactional_producer(self, transactional_id: str) -> FakeTransactionalProducer:
        """Start a producer: bump the id's epoch and abort the previous owner's transaction."""
        self._raise_if_failing("transactional_producer")
        self._abort_open(transactional_id)
        epoch = self._epochs.get(transactional_id, 0) + 1
        self._epochs[transactional_id] = epoch
        self.producers_started += 1
        return FakeTransactionalProducer(self, transactional_id, epoch)

    def group_consumer(self, group_id: str) -> FakeGroupConsumer:
        """A consumer in ``group_id``; partitions come from :meth:`rebalance`."""
        consumer = FakeGroupConsumer(self, group_id)
        self.consumers.append(consumer)
        return consumer

    @asynccontextmanager
    async def partition_reader(self, timeout_s: float) -> AsyncIterator[FakePartitionReader]:
        """A reader of committed records."""
        yield FakePartitionReader(self)

    # --- internals --------------------------------------------------------------------

    def _raise_if_failing(self, operation: str) -> None:
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)

    def _abort_open(self, transactional_id: str) -> None:
        txn = self._open.pop(transactional_id, None)
        if txn is not None:
            txn.state = "aborted"

    async def _pause(self, operation: str) -> None:
        callback = self.on_operation.pop(operation, None)
        if callback is not None:
            await callback()

    def _visible(self, tp: TopicPartition, start: int, end: int) -> list[_Entry]:
        """Committed entries in ``[start, end)``, stopping at the first open transaction."""
        out: list[_Entry] = []
        for entry in self._logs.get(tp, [])[start:end]:
            if entry.txn is not None and entry.txn.state == "open":
                break
            if entry.txn is None or entry.txn.state == "committed":
                out.append(entry)
        return out

    def _last_stable(self, tp: TopicPartition) -> int:
        for entry in self._logs.get(tp, []):
            if entry.txn is not None and entry.txn.state == "open":
                return entry.offset
        return len(self._logs.get(tp, []))

    def _partitions_of(self, topic: str) -> list[TopicPartition]:
        return sorted(tp for tp in self._logs if tp.topic == topic)


class _Delivery:
    """An already settled delivery (``await`` returns or raises)."""

    def __init__(self, error: Exception | None) -> None:
        self._error = error

    def __await__(self) -> Generator[None, None, None]:
        if self._error is not None:
            raise self._error
        yield from ()


class FakeTransactionalProducer:
    """One producer instance of one transactional id and epoch."""

    def __init__(self, cluster: FakeKafka, transactional_id: str, epoch: int) -> None:
        self._cluster = cluster
        self.transactional_id = transactional_id
        self._epoch = epoch
        self._txn: _Transaction | None = None
        self.stopped = False

    def _check(self, operation: str) -> None:
        if self.stopped:
            raise TransportError(f"{operation} on a stopped producer")
        if self._cluster._epochs.get(self.transactional_id) != self._epoch:
            raise ProducerFencedError(f"producer {self.transactional_id} epoch {self._epoch}")
        self._cluster._raise_if_failing(operation)

    def _current(self, operation: str) -> _Transaction:
        self._check(operation)
        if self._txn is None or self._txn.state != "open":
            raise TransportError(f"{operation} outside a transaction")
        return self._txn

    async def begin_transaction(self) -> None:
        """Open a transaction."""
        self._check("begin_transaction")
        self._txn = _Transaction()
        self._cluster._open[self.transactional_id] = self._txn

    async def send(self, record: Outgoing) -> Awaitable[object]:
        """Append ``record`` to its topic as part of the open transaction."""
        txn = self._current("send")
        if len(record.value) > self._cluster.max_record_bytes:
            return _Delivery(RecordRefusedError(f"record of {len(record.value)} bytes refused"))
        partitions = self._cluster._partitions_of(record.topic)
        if not partitions:
            return _Delivery(TransportError(f"unknown topic {record.topic!r}"))
        # Kafka's default partitioner, so a key's records stay together as they do on Kafka.
        index = default_partition(record.key, len(partitions)) if record.key else 0
        log = self._cluster._logs[partitions[index]]
        log.append(_Entry(len(log), record.key, record.value, record.headers, txn))
        await asyncio.sleep(0)
        return _Delivery(None)

    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        """Stage ``group_id``'s input offsets with the transaction."""
        txn = self._current("send_offsets_to_transaction")
        txn.offsets.update(offsets)
        txn.group_id = group_id
        await self._cluster._pause("send_offsets_to_transaction")

    async def commit_transaction(self) -> None:
        """Make the records and offsets visible together."""
        txn = self._current("commit_transaction")
        txn.state = "committed"
        self._cluster._open.pop(self.transactional_id, None)
        if txn.group_id is not None:
            for tp, offset in txn.offsets.items():
                self._cluster._committed[(txn.group_id, tp)] = offset
        self._txn = None

    async def abort_transaction(self) -> None:
        """Discard the open transaction."""
        self._check("abort_transaction")
        if self._txn is not None:
            self._txn.state = "aborted"
            self._cluster._open.pop(self.transactional_id, None)
        self._txn = None

    async def stop(self) -> None:
        """Close; an open transaction of this epoch is aborted."""
        if not self.stopped and self._cluster._epochs.get(self.transactional_id) == self._epoch:
            self._cluster._abort_open(self.transactional_id)
        self.stopped = True


class FakeGroupConsumer:
    """A group member whose partitions the test assigns with :meth:`FakeKafka.rebalance`."""

    def __init__(self, cluster: FakeKafka, group_id: str) -> None:
        self._cluster = cluster
        self.group_id = group_id
        self.listener: RebalanceListener | None = None
        self.pattern = ""
        self.owned: list[TopicPartition] = []
        self.positions: dict[TopicPartition, int] = {}
        self.started = False

    def subscribe(self, pattern: str, listener: RebalanceListener) -> None:
        """Remember the pattern and listener."""
        self.pattern, self.listener = pattern, listener

    async def start(self) -> None:
        """Join (partitions arrive with the next rebalance)."""
        self._cluster._raise_if_failing("start")
        self.started = True

    async def stop(self) -> None:
        """Leave the group: its partitions are revoked."""
        if self.owned and self.listener is not None:
            lost, self.owned = self.owned, []
            await self.listener.on_partitions_revoked(lost)
        self.started = False

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Incoming]]:
        """Committed records from each owned partition's position."""
        self._cluster._raise_if_failing("getmany")
        out: dict[TopicPartition, list[Incoming]] = {}
        for tp in list(self.owned):
            start = self.positions.get(tp, 0)
            entries = self._cluster._visible(tp, start, self._cluster._last_stable(tp))
            entries = entries[:max_records]
            if entries:
                count = len(self._cluster._partitions_of(tp.topic))
                out[tp] = [
                    # The fake stamps every record with its "append time", as an ingress
                    # topic with message.timestamp.type=LogAppendTime does.
                    Incoming(
                        tp.topic, tp.partition, e.offset, e.key, e.value, 0, 1, count, e.headers
                    )
                    for e in entries
                ]
                self.positions[tp] = entries[-1].offset + 1
        if not out:
            await asyncio.sleep(min(timeout_ms, 5) / 1000)
        return out

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions owned now."""
        return frozenset(self.owned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` next."""
        self.positions[tp] = offset

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset to be read from ``tp``."""
        return self.positions.get(tp, 0)

    def end_offset(self, tp: TopicPartition) -> int | None:
        """``tp``'s last stable offset."""
        return self._cluster._last_stable(tp)

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        """Read ``tp`` from offset 0 next."""
        self.positions[tp] = 0

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset."""
        return self._cluster._committed.get((self.group_id, tp))


class FakePartitionReader:
    """Reads committed records of any partition."""

    def __init__(self, cluster: FakeKafka) -> None:
        self._cluster = cluster

    async def partitions(self, topic: str) -> frozenset[int]:
        """The partition ids of ``topic``."""
        return frozenset(tp.partition for tp in self._cluster._logs if tp.topic == topic)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The high watermark of each partition."""
        return {tp: len(self._cluster._logs.get(tp, [])) for tp in tps}

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[bytes]:
        """Committed values in ``[start, end)``."""
        return [e.value for e in self._cluster._visible(tp, start, end)]
