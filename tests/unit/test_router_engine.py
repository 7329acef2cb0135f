"""The exactly-once engine's hard paths, driven through the in-memory Kafka of the seam.

Each test runs the real :class:`TransactionalEngine` against :class:`FakeKafka`: commits,
aborts, fencing by transactional id, revocation in the middle of a batch, a new instance
taking over, and records Kafka refuses. The live-broker fault tests
(tests/integration/test_router_faults.py) prove the same guarantees on real Kafka; these
run in milliseconds and reach branches a live broker only shows by chance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from broker.errors import ProducerFencedError, TransportError
from broker.kafka.fake import FakeGroupConsumer, FakeKafka
from broker.kafka.records import Incoming, Outgoing, TopicPartition
from broker.router.engine import EngineConfig, PartitionProcessor, TransactionalEngine

INPUT = "ingress.x"
OUTPUT = "deliver.y"
AUDIT = "audit"
TP = TopicPartition(INPUT, 0)
GROUP = "router"


@dataclass
class Processor:
    """Delivers each input as ``out-<value>`` and audits it; counts commits and rollbacks."""

    pending: list[int] = field(default_factory=list)
    durable: list[int] = field(default_factory=list)
    rollbacks: int = 0
    refuse_above: int | None = None

    def process(self, record: Incoming) -> Sequence[Outgoing]:
        self.pending.append(record.offset)
        return [
            Outgoing(OUTPUT, b"out-" + record.value, key=record.key),
            Outgoing(AUDIT, b"audit-%d" % record.offset),
        ]

    def unwritable(self, record: Incoming, problem: str) -> Sequence[Outgoing]:
        self.pending.append(record.offset)
        return [Outgoing(AUDIT, b"unwritable-%d" % record.offset)]

    def committed(self) -> None:
        self.durable.extend(self.pending)
        self.pending.clear()

    def rolled_back(self) -> None:
        self.pending.clear()
        self.rollbacks += 1


@dataclass
class Harness:
    kafka: FakeKafka
    processors: list[Processor] = field(default_factory=list)

    def factory(
        self,
    ) -> Callable[
        [Sequence[tuple[str, int]]], Awaitable[Mapping[tuple[str, int], PartitionProcessor]]
    ]:
        async def build(
            partitions: Sequence[tuple[str, int]],
        ) -> Mapping[tuple[str, int], PartitionProcessor]:
            built: dict[tuple[str, int], PartitionProcessor] = {}
            for tp in partitions:
                processor = Processor()
                self.processors.append(processor)
                built[tp] = processor
            return built

        return build

    def engine(self) -> TransactionalEngine:
        return TransactionalEngine(
            EngineConfig(GROUP, "^ingress\\..*", "tx-", max_batch=10, poll_timeout_ms=5),
            self.kafka,
            self.factory(),
        )


def _cluster(inputs: int) -> FakeKafka:
    kafka = FakeKafka()
    kafka.create_topic(INPUT)
    kafka.create_topic(OUTPUT)
    kafka.create_topic(AUDIT)
    for i in range(inputs):
        kafka.produce(INPUT, 0, b"e%d" % i, key=b"k")
    return kafka


async def _run_until(
    engine: TransactionalEngine,
    kafka: FakeKafka,
    done: Callable[[], bool],
    *,
    assign: bool = True,
) -> None:
    """Run ``engine`` with TP assigned to its consumer until ``done()`` or 2 s pass."""
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    consumer = await _consumer_of(kafka)
    if assign:
        await kafka.rebalance({consumer: [TP]})
    try:
        await _eventually(done)
    finally:
        stop.set()
        await task


async def _eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (the engine runs concurrently), at most 2 s."""
    async with asyncio.timeout(2):
        while not condition():  # noqa: ASYNC110  # polling the fake's state is the point
            await asyncio.sleep(0.001)


async def _consumer_of(kafka: FakeKafka) -> FakeGroupConsumer:
    await _eventually(lambda: bool(kafka.consumers) and kafka.consumers[-1].started)
    return kafka.consumers[-1]


def _delivered(kafka: FakeKafka) -> list[bytes]:
    return kafka.committed_values(OUTPUT)


def _each_once(kafka: FakeKafka, n: int) -> bool:
    return sorted(_delivered(kafka)) == sorted(b"out-e%d" % i for i in range(n))


async def test_a_batch_commits_its_outputs_and_input_offsets_together() -> None:
    kafka = _cluster(5)
    harness = Harness(kafka)
    await _run_until(harness.engine(), kafka, lambda: len(_delivered(kafka)) == 5)
    assert _each_once(kafka, 5)
    assert kafka.committed_values(AUDIT) == [b"audit-%d" % i for i in range(5)]
    assert kafka.committed_offset(GROUP, TP) == 5
    assert harness.processors[0].durable == [0, 1, 2, 3, 4]


async def test_a_failed_commit_aborts_the_batch_and_it_is_routed_again_once() -> None:
    kafka = _cluster(4)
    kafka.fail_next("commit_transaction", TransportError("broker went away"))
    harness = Harness(kafka)
    engine = harness.engine()
    await _run_until(engine, kafka, lambda: len(_delivered(kafka)) == 4)
    assert _each_once(kafka, 4)
    assert engine.stats.aborted_batches == 1
    assert harness.processors[0].rollbacks == 1
    assert harness.processors[0].durable == [0, 1, 2, 3]


async def test_a_fenced_producer_is_replaced_and_state_is_read_again() -> None:
    kafka = _cluster(3)
    harness = Harness(kafka)
    engine = harness.engine()

    async def expire() -> None:
        # The coordinator aborts a transaction that outlived its timeout: the producer
        # holding it is fenced while the partition is still ours.
        kafka.expire_transaction(f"tx-{INPUT}.0")

    kafka.on_operation["send_offsets_to_transaction"] = expire
    await _run_until(engine, kafka, lambda: len(_delivered(kafka)) == 3)
    assert _each_once(kafka, 3)
    assert kafka.producers_started == 2, "a new producer took the id over"
    assert len(harness.processors) == 2, "state was restored again for the new producer"
    assert harness.processors[1].durable == [0, 1, 2]


async def test_a_partition_revoked_mid_batch_commits_nothing_and_its_next_owner_routes_it() -> None:
    kafka = _cluster(3)
    harness = Harness(kafka)
    first = harness.engine()
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    consumer = await _consumer_of(kafka)

    async def revoke() -> None:
        # A rebalance arrives while the batch is in flight (the coordinator's task runs
        # the revocation concurrently with the batch).
        asyncio.create_task(kafka.rebalance({consumer: []}))  # noqa: RUF006
        await asyncio.sleep(0)

    kafka.on_operation["send_offsets_to_transaction"] = revoke
    await kafka.rebalance({consumer: [TP]})
    await _eventually(lambda: not consumer.owned and first.stats.aborted_batches > 0)
    assert _delivered(kafka) == []
    assert kafka.committed_offset(GROUP, TP) is None
    stop.set()
    await task

    second = harness.engine()
    await _run_until(second, kafka, lambda: len(_delivered(kafka)) == 3)
    assert _each_once(kafka, 3)


async def test_a_new_instance_fences_the_old_one_and_continues_from_the_committed_offset() -> None:
    kafka = _cluster(2)
    harness = Harness(kafka)
    await _run_until(harness.engine(), kafka, lambda: len(_delivered(kafka)) == 2)
    for i in range(2, 5):
        kafka.produce(INPUT, 0, b"e%d" % i, key=b"k")
    await _run_until(harness.engine(), kafka, lambda: len(_delivered(kafka)) == 5)
    assert _each_once(kafka, 5)
    assert harness.processors[1].durable == [2, 3, 4]


async def test_a_zombie_producer_cannot_commit_after_the_partition_moved() -> None:
    kafka = _cluster(1)
    zombie = await kafka.transactional_producer(f"tx-{INPUT}.0")
    await zombie.begin_transaction()
    await zombie.send(Outgoing(OUTPUT, b"out-zombie"))
    harness = Harness(kafka)
    await _run_until(harness.engine(), kafka, lambda: len(_delivered(kafka)) == 1)
    assert _delivered(kafka) == [b"out-e0"], "the zombie's open transaction was aborted"
    with pytest.raises(ProducerFencedError):
        await zombie.commit_transaction()


async def test_a_refused_output_aborts_once_then_the_input_is_audited_by_digest_and_passed() -> (
    None
):
    kafka = _cluster(0)
    kafka.max_record_bytes = 100
    kafka.produce(INPUT, 0, b"small", key=b"k")
    kafka.produce(INPUT, 0, b"x" * 200, key=b"k")
    kafka.produce(INPUT, 0, b"after", key=b"k")
    harness = Harness(kafka)
    engine = harness.engine()
    await _run_until(engine, kafka, lambda: len(kafka.committed_values(AUDIT)) == 3)
    assert engine.stats.aborted_batches == 1
    assert kafka.committed_values(AUDIT) == [b"audit-0", b"unwritable-1", b"audit-2"]
    assert sorted(_delivered(kafka)) == [b"out-after", b"out-small"]
