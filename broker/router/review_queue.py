"""The review queue on Kafka: read it from the held topic, send a decision to the router.

``msht held`` and the demo's reviewer share these; what a decision says and how it is
signed is :mod:`broker.review.deciding`.
"""

from __future__ import annotations

from broker.audit.reader import read_audit_topic
from broker.kafka import clients as kafka
from broker.review.queue import Queue, build_queue
from broker.settings import Settings


async def read_held_queue(settings: Settings, timeout_s: float = 60.0) -> Queue:
    """The review queue from the whole held topic (committed records only)."""
    entries = await read_audit_topic(settings, settings.held_topic, timeout_s=timeout_s)
    ordered = sorted(entries, key=lambda e: (e.partition, e.offset))
    return build_queue(e.value for e in ordered)


async def send_decision(settings: Settings, hold_id: str, value: bytes) -> None:
    """Publish a signed decision to the decisions topic, keyed by its hold."""
    async with kafka.producer(settings) as producer:
        await producer.send_and_wait(settings.decisions_topic, value, key=hold_id.encode("ascii"))
