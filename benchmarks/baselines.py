"""The two ceilings the router is compared with.

* **Compute ceiling** — the CPU one event costs in the signed-event core alone, in this
  process, without Kafka or asyncio: verify the publisher's signature, decode the envelope
  and payload, encode a recipient's view (payload and envelope, unvalidated as the router
  does it) and sign it as the router.
  Each stage runs over every sample event in turn and is timed with ``time.process_time``
  (CPU time of this process, so other processes on a shared machine do not inflate it).
* **I/O ceiling** — the rate at which aiokafka moves the same ~2 KB records from one topic
  to another on the same broker, with no processing: a consumer→producer pass-through.
  Measured twice: 1:1 non-transactional (the raw ceiling) and in the router's shape (one
  transaction per batch, the input offsets in the transaction, four records out per record
  in — three deliveries and one audit record).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.crypto.sealed_fields import scope_of
from broker.crypto.sealing import open_fields, seal_fields, sealed_paths
from broker.crypto.signing import sign, verify
from broker.crypto.signing_keys import SigningKey
from broker.crypto.trust import TrustStore
from broker.events.envelope import (
    Envelope,
    Provenance,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
    envelope_digest,
)
from broker.kafka import clients as kafka
from broker.kafka.aio import shorten_concurrent_transactions_backoff
from broker.settings import Settings
from broker.types import PartnerId, TopicName

ROUTER_ID = PartnerId("router")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ComputeCeiling:
    """CPU microseconds per event for each stage, and what they add up to."""

    events: int
    verify_us: float
    decode_us: float
    encode_us: float
    """Encode a view as the router does (payload from Avro, not re-validated)."""
    sign_us: float
    strict_encode_us: float
    """The same encode with fastavro's strict validation (a publisher's encode); not in
    the ceiling."""

    @property
    def total_us(self) -> float:
        """One verify, one decode, one encode and one signature."""
        return self.verify_us + self.decode_us + self.encode_us + self.sign_us

    @property
    def events_per_core_second(self) -> float:
        """How many events one core could process if that were all it did."""
        return 1e6 / self.total_us

    def routed_us(self, recipients: int) -> float:
        """One verify and decode, then an encode and a signature per recipient's view."""
        return self.verify_us + self.decode_us + recipients * (self.encode_us + self.sign_us)

    def as_dict(self, recipients: int) -> dict[str, Any]:
        """A JSON-ready dict, with the ceiling for ``recipients`` views."""
        routed = self.routed_us(recipients)
        return {
            **asdict(self),
            "total_us": self.total_us,
            "events_per_core_second": self.events_per_core_second,
            "recipients": recipients,
            "routed_us": routed,
            "routed_events_per_core_second": 1e6 / routed,
        }


def _timed(label: str, items: Sequence[Any], fn: Callable[[Any], Any]) -> tuple[float, list[Any]]:
    """CPU µs per item of ``fn`` over ``items``, and its results."""
    del label
    fn(items[0])  # warm caches (schema lookups, key objects) before timing
    out: list[Any] = []
    start = time.process_time()
    for item in items:
        out.append(fn(item))
    return (time.process_time() - start) / len(items) * 1e6, out


def compute_ceiling(
    envelopes: Sequence[bytes], trust: TrustStore, router_key: SigningKey
) -> ComputeCeiling:
    """Time verify, decode, encode and sign on ``envelopes`` (signed ingress events)."""
    decode_us, decoded = _timed("decode", envelopes, lambda data: (decode_envelope(data), data))
    envs: list[tuple[Envelope, bytes]] = decoded
    payload_us, payloads = _timed("payload", envs, lambda pair: decode_payload(pair[0]))
    verify_us, _ = _timed("verify", envs, lambda pair: verify(pair[0], trust))

    def encode(index: int, check: bool = False) -> Envelope:
        original, data = envs[index]
        h = original.header
        provenance = Provenance(
            original_digest=envelope_digest(data),
            original_signatures=original.signatures,
            recipient="nca",
            view="full",
        )
        return build_envelope(
            event_type=h.event_type,
            source=h.source,
            subject=h.subject,
            markings=h.markings,
            payload=payloads[index],
            occurred_at=h.occurred_at,
            published_at=h.published_at,
            event_id=h.event_id,
            payload_record=h.payload_schema_name,
            provenance=provenance,
            check=check,
        )

    indexes = list(range(len(envs)))
    # As the router encodes a view: the payload came out of Avro, so it is not re-validated.
    build_us, views = _timed("build", indexes, encode)
    sign_us, signed = _timed("sign", views, lambda view: sign(view, router_key))
    envelope_us, _ = _timed("encode", signed, lambda e: encode_envelope(e, check=False))
    # What the same encode costs with the strict validation a publisher's encode does.
    strict_us, _ = _timed("strict", indexes, lambda i: encode(i, check=True))
    return ComputeCeiling(
        events=len(envelopes),
        verify_us=verify_us,
        decode_us=decode_us + payload_us,
        encode_us=build_us + envelope_us,
        sign_us=sign_us,
        strict_encode_us=strict_us + envelope_us,
    )


@dataclass(frozen=True)
class SealingCost:
    """CPU µs per event of the field sealing the router adds (not part of the ceiling)."""

    events: int
    fields: int
    open_us: float
    """Open the identity fields the publisher sealed to the router (X25519 + AES-GCM)."""
    seal_us: float
    """Seal the sealed view's fields for one partner."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def sealing_cost(
    sealed_envelopes: Sequence[bytes],
    router_key: X25519PrivateKey,
    partner: PartnerId,
    partner_key: X25519PublicKey,
    paths: Sequence[str],
) -> SealingCost:
    """Time opening ingress fields sealed to the router and sealing ``paths`` for a partner."""
    envs = [decode_envelope(data) for data in sealed_envelopes]
    sealed = [(scope_of(e.header), decode_payload(e)) for e in envs]
    fields = len(sealed_paths(sealed[0][1]))
    open_us, opened = _timed(
        "open", sealed, lambda item: open_fields(item[1], item[0], ROUTER_ID, router_key)
    )
    scopes = [scope for scope, _ in sealed]
    seal_us, _ = _timed(
        "seal",
        list(range(len(scopes))),
        lambda i: seal_fields(opened[i], paths, scopes[i], partner, partner_key),
    )
    return SealingCost(len(envs), fields, open_us, seal_us)


@dataclass(frozen=True)
class IoCeiling:
    """Records per second a pass-through moved, and how it was shaped."""

    events: int
    fanout: int
    transactional: bool
    seconds: float
    events_per_second: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


async def fill_topic(
    settings: Settings,
    topic: str,
    values: Sequence[bytes],
    *,
    progress: Progress | None = None,
) -> None:
    """Produce ``values`` to ``topic`` (idempotent, acks=all), keyed by index."""
    async with kafka.producer(settings) as producer:
        pending: list[asyncio.Future[Any]] = []
        for index, value in enumerate(values):
            pending.append(await producer.send(topic, value, key=str(index).encode()))
            if len(pending) >= 2_000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress is not None:
                    progress(f"filled {index + 1:,}/{len(values):,} records into {topic}")
        await asyncio.gather(*pending)


async def pass_through(
    settings: Settings,
    source: str,
    sink: str,
    events: int,
    *,
    fanout: int = 1,
    transactional: bool = False,
    max_batch: int = 500,
) -> IoCeiling:
    """Copy ``events`` records from ``source`` to ``sink`` (``fanout`` copies each)."""
    kwargs = kafka.client_kwargs(settings)
    if transactional:
        # As the router's producers retry after CONCURRENT_TRANSACTIONS (broker.kafka.aio).
        shorten_concurrent_transactions_backoff()
    group = f"bench-pass-{uuid.uuid4().hex[:10]}"
    producer_args: dict[str, Any] = {"acks": "all", "enable_idempotence": True}
    if transactional:
        producer_args["transactional_id"] = f"{group}-tx"
    producer = AIOKafkaProducer(**kwargs, **producer_args)
    consumer = AIOKafkaConsumer(
        source,
        **kwargs,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await producer.start()
    await consumer.start()
    moved = 0
    started: float | None = None
    try:
        while moved < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=max_batch)
            for tp, records in batches.items():
                if not records:
                    continue
                if started is None:
                    started = time.perf_counter()
                offsets = {TopicPartition(tp.topic, tp.partition): records[-1].offset + 1}
                if transactional:
                    await producer.begin_transaction()
                futures = [
                    await producer.send(sink, rec.value, key=rec.key)
                    for rec in records
                    for _ in range(fanout)
                ]
                if transactional:
                    await producer.send_offsets_to_transaction(offsets, group)
                    await producer.commit_transaction()
                else:
                    await asyncio.gather(*futures)
                    await consumer.commit(offsets)
                moved += len(records)
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = time.perf_counter() - (started or time.perf_counter())
    return IoCeiling(moved, fanout, transactional, seconds, moved / seconds if seconds else 0.0)


async def io_ceiling(
    settings: Settings,
    values: Sequence[bytes],
    *,
    tag: str,
    partitions: int = 1,
    progress: Progress | None = None,
) -> list[IoCeiling]:
    """Fill a uniquely named topic with ``values`` and time both pass-through shapes."""
    source = TopicName(f"bench-{tag}-io-source")
    sinks = [TopicName(f"bench-{tag}-io-sink-plain"), TopicName(f"bench-{tag}-io-sink-tx")]
    await kafka.ensure_topics(settings, [source, *sinks], partitions=partitions)
    try:
        await fill_topic(settings, source, values, progress=progress)
        results = []
        for sink, fanout, transactional in ((sinks[0], 1, False), (sinks[1], 4, True)):
            shape = f"{fanout} out per record{', transactional' if transactional else ''}"
            if progress is not None:
                progress(f"I/O ceiling: pass-through of {len(values):,} records ({shape})")
            results.append(
                await pass_through(
                    settings,
                    source,
                    sink,
                    len(values),
                    fanout=fanout,
                    transactional=transactional,
                )
            )
        return results
    finally:
        await kafka.delete_topics(settings, [source, *sinks])
