"""Kafka's default partitioner, as the router re-computes it for every ingress record."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from broker.router.partitioner import murmur2, partition_for_key

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (Apache Kafka's Java client).
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), JAVA_VECTORS.items(), ids=lambda v: repr(v))
def test_murmur2_matches_the_java_clients_test_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@given(key=st.binary(max_size=64), partitions=st.integers(min_value=1, max_value=64))
def test_partition_is_the_one_aiokafkas_default_partitioner_chooses(
    key: bytes, partitions: int
) -> None:
    every = list(range(partitions))
    assert partition_for_key(key, partitions) == DefaultPartitioner()(key, every, every)


def test_negative_hash_maps_by_clearing_the_sign_bit_not_by_abs() -> None:
    # murmur2(b"21") is negative: Java's toPositive keeps its low 31 bits.
    assert partition_for_key(b"21", 1000) == (-973932308 & 0x7FFFFFFF) % 1000


def test_a_topic_without_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for_key(b"k", 0)
