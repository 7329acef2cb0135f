"""Our murmur2 partitioner gives the partition Kafka's own clients give a key."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from broker.kafka.partitioner import default_partition, murmur2

# Apache Kafka's own vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS.items())
def test_murmur2_matches_kafkas_java_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_default_partition_matches_aiokafka_for_random_keys_and_partition_counts() -> None:
    rng = random.Random(7)
    aio = DefaultPartitioner()
    for _ in range(2_000):
        key = rng.randbytes(rng.randrange(0, 40))
        count = rng.randrange(1, 13)
        partitions = list(range(count))
        assert default_partition(key, count) == aio(key, partitions, partitions)


def test_a_topic_without_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        default_partition(b"k", 0)
