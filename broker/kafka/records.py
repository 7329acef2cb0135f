"""Records as the exchange sees them, detached from any Kafka client's types.

The pure pipeline (:mod:`broker.router.processor`) and the engine's Protocols speak these, so
they can be loaded and tested without a Kafka client installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class TopicPartition(NamedTuple):
    """One partition of one topic."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Incoming:
    """One input record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    timestamp_type: int
    """Kafka's timestamp type: 1 when ``timestamp_ms`` is the broker's append time
    (``LogAppendTime``), 0 when the producer wrote it (``CreateTime``)."""
    partitions: int
    """The topic's partition count when the record was read (0 when not known)."""
    headers: tuple[tuple[str, bytes], ...] = ()
    """The record's headers as produced (the router reads ``msht-replay-of``)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce inside the partition's transaction."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Written:
    """Where Kafka wrote a produced record."""

    partition: int
    offset: int
