"""Kafka's default partitioner, so the router can tell which partition a key belongs on.

Apache Kafka's Java client (``BuiltInPartitioner.partitionForKey``) and aiokafka's
``DefaultPartitioner`` put a keyed record on ``toPositive(murmur2(key)) % partitions``;
librdkafka and kcat default to CRC32 instead. The router requires every ingress record to be
on the partition this function names for its key, so one event — and every copy of it —
meets one partition's de-duplication window whatever client published it.

Pure: a transcription of ``org.apache.kafka.common.utils.Utils.murmur2`` (seed
``0x9747b28c``), checked against the Java client's own test vectors.
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of ``data`` as a signed int (what Java returns)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    # Java's Utils.toPositive: clear the sign bit (not abs(), which differs for MIN_VALUE).
    return (murmur2(key) & 0x7FFFFFFF) % partitions
