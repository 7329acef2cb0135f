"""Trusted time and one decision per event id, on the real broker (issue 13, defects 3 and 4).

The router judges ingress signatures at the broker's append time (``LogAppendTime``) and
accepts a record only on the partition Kafka's default partitioner gives its subject, so a
copy of an event pushed onto another partition, or another event re-using a decided id, is
quarantined with its reason and never delivered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.admin import NewTopic

from broker.crypto.keyfiles import signing_key_file
from broker.crypto.signing import sign
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import TrustStore, load_trust_store
from broker.events.envelope import build_envelope, encode_envelope
from broker.kafka import clients as kafka
from broker.kafka.partitioner import default_partition
from broker.settings import Settings
from broker.types import AgencyId, EventId
from tests.integration.router_env import RouterExchange, router_exchange

PARTITIONS = 3
CHARGE = ("police/case-charge.json", "case-json")
REVOKED_AGENCY = "nca"
REVOKED_AT = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture(scope="module")
async def exchange(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RouterExchange]:
    """Three ingress partitions; ``nca``'s signing key revoked a day ago; the router running."""
    async with router_exchange(
        settings, tmp_path_factory.mktemp("placement"), partitions=PARTITIONS
    ) as ex:
        path = ex.settings.trust_store_path
        trust = load_trust_store(path)
        entry = trust.agencies[AgencyId(REVOKED_AGENCY)]
        keys = tuple(
            dataclasses.replace(k, revoked_at=REVOKED_AT) if k.use == "sign" else k
            for k in entry.keys
        )
        revoked = dataclasses.replace(entry, keys=keys)
        ex.replace_trust_store(TrustStore({**trust.agencies, entry.agency: revoked}))
        ex.start_router()
        yield ex


async def _send(ex: RouterExchange, agency: str, value: bytes, key: bytes, **kw: Any) -> Any:
    topic = ex.settings.ingress_topic(AgencyId(agency))
    async with kafka.producer(ex.settings) as producer:
        return await producer.send_and_wait(topic, value, key=key, **kw)


async def _quarantine_reasons(ex: RouterExchange, event_id: str, count: int) -> list[str]:
    """The ``msht-reason`` of each quarantined record carrying ``event_id`` (polls)."""
    for _ in range(30):
        found = []
        for record in await ex.read(ex.settings.quarantine_topic, wait=1.0):
            if event_id.encode() in record.value:
                found.append(dict(record.headers)["msht-reason"].decode())
        if len(found) >= count:
            return found
    raise AssertionError(f"{count} quarantined record(s) of {event_id} expected")


async def _deliveries(ex: RouterExchange, event_id: str, partner: str = "cps") -> int:
    topic = ex.settings.delivery_topic(partner)  # type: ignore[arg-type]
    records = await ex.read(topic, wait=1.0)
    return sum(1 for r in records if dict(r.headers).get("msht-event-id") == event_id.encode())


async def _decided(ex: RouterExchange, event_id: str) -> None:
    for _ in range(40):
        if any(r.event_id == event_id for r in await ex.audit(wait=1.0)):
            return
    raise AssertionError(f"no audit record for {event_id}")


async def test_ingress_records_carry_the_brokers_append_time(exchange: RouterExchange) -> None:
    event = exchange.sample_event(*CHARGE)
    value = exchange.sealers["met-police"].seal(event, EventId(str(uuid.uuid4())))
    sent_at = datetime.now(UTC)
    meta = await _send(exchange, "met-police", value, event.subject.encode())
    # RecordMetadata.timestamp_type 1 = LogAppendTime: the broker's clock, not ours.
    assert meta.timestamp_type == 1
    appended = datetime.fromtimestamp(meta.timestamp / 1000, UTC)
    assert abs(appended - sent_at) < timedelta(minutes=1)


async def test_copy_on_another_partition_is_quarantined_not_delivered_twice(
    exchange: RouterExchange,
) -> None:
    event = exchange.sample_event(*CHARGE)
    event_id = EventId(str(uuid.uuid4()))
    value = exchange.sealers["met-police"].seal(event, event_id)
    key = event.subject.encode()
    right = default_partition(key, PARTITIONS)
    meta = await _send(exchange, "met-police", value, key)
    assert meta.partition == right
    await _decided(exchange, event_id)
    wrong = (right + 1) % PARTITIONS
    await _send(exchange, "met-police", value, key, partition=wrong)
    assert await _quarantine_reasons(exchange, event_id, 1) == ["wrong-partition"]
    assert await _deliveries(exchange, event_id) == 1


async def test_different_content_under_a_delivered_id_is_quarantined_as_conflicting(
    exchange: RouterExchange,
) -> None:
    event = exchange.sample_event(*CHARGE)
    event_id = EventId(str(uuid.uuid4()))
    sealer = exchange.sealers["met-police"]
    key = event.subject.encode()
    await _send(exchange, "met-police", sealer.seal(event, event_id), key)
    await _decided(exchange, event_id)
    altered = dataclasses.replace(event, payload={**event.payload, "court": "Another Court"})
    await _send(exchange, "met-police", sealer.seal(altered, event_id), key)
    assert await _quarantine_reasons(exchange, event_id, 1) == ["conflicting-duplicate"]
    assert await _deliveries(exchange, event_id) == 1


async def test_event_back_dated_before_its_keys_revocation_is_quarantined(
    exchange: RouterExchange,
) -> None:
    settings = exchange.settings
    key = load_signing_key(signing_key_file(settings.key_dir_path, REVOKED_AGENCY), REVOKED_AGENCY)
    before = REVOKED_AT - timedelta(hours=2)
    event = exchange.sample_event(*CHARGE)
    # Sealing to the router does not matter here: verification refuses it first.
    envelope = build_envelope(
        event_type=event.event_type,
        source=REVOKED_AGENCY,
        subject=event.subject,
        markings=event.markings,
        payload=event.payload,
        occurred_at=before,
        published_at=before,
        payload_record=event.record_name,
    )
    value = encode_envelope(sign(envelope, key, signed_at=before))
    event_id = envelope.header.event_id
    await _send(exchange, REVOKED_AGENCY, value, event.subject.encode())
    assert await _quarantine_reasons(exchange, event_id, 1) == ["unverified"]
    assert await _deliveries(exchange, event_id) == 0


async def test_record_on_a_create_time_ingress_topic_is_quarantined_as_untrusted_time(
    exchange: RouterExchange,
) -> None:
    settings = exchange.settings
    agency = "create-time-agency"
    topic = settings.ingress_topic(AgencyId(agency))
    async with kafka.admin_client(settings) as admin:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"message.timestamp.type": "CreateTime"})]
        )
    try:
        marker = uuid.uuid4().hex.encode()
        # The router finds the new topic by pattern within its metadata refresh (5 s).
        await asyncio.sleep(1)
        async with kafka.producer(settings) as producer:
            await producer.send_and_wait(topic, b"not trusted " + marker, key=b"s")
        for _ in range(40):
            records = await exchange.read(settings.quarantine_topic, wait=1.0)
            hits = [r for r in records if marker in r.value]
            if hits:
                break
        assert [dict(r.headers)["msht-reason"] for r in hits] == [b"untrusted-time"]
    finally:
        await kafka.delete_topics(settings, [topic])
