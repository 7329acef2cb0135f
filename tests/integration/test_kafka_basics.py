"""The local Kafka does what the exchange relies on: SCRAM, produce, consume, transactions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr

from broker.errors import AuthenticationError
from broker.kafka import clients as kafka
from broker.settings import Settings
from tests.integration.conftest import UniqueTopic


async def _read_values(settings: Settings, topic: str, count: int) -> list[bytes]:
    """Read ``count`` committed records from the start of ``topic``, then a moment more."""
    values: list[bytes] = []
    async with kafka.consumer(settings, topic, group_id=f"test-{uuid.uuid4().hex}") as consumer:
        while len(values) < count:
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
            values.append(record.value)
        # Anything past `count` would be a record that must not be there.
        extra = await consumer.getmany(timeout_ms=1000)
        values.extend(r.value for batch in extra.values() for r in batch)
    return values


async def test_records_round_trip_with_scram(settings: Settings, unique_topic: UniqueTopic) -> None:
    topic = await unique_topic("roundtrip")
    sent = [f"record-{i}".encode() for i in range(5)]
    async with kafka.producer(settings) as producer:
        for value in sent:
            await producer.send_and_wait(topic, value, key=b"case-1")

    assert await _read_values(settings, topic, len(sent)) == sent


async def test_wrong_password_is_refused(settings: Settings) -> None:
    wrong = settings.model_copy(update={"password": SecretStr("not-the-password")})

    with pytest.raises(AuthenticationError, match="refused the credentials of user 'admin'"):
        async with kafka.producer(wrong):
            pass


async def test_read_committed_consumer_sees_only_committed_transaction(
    settings: Settings, unique_topic: UniqueTopic
) -> None:
    topic = await unique_topic("tx")
    async with kafka.transactional_producer(settings, f"test-tx-{uuid.uuid4().hex}") as producer:
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
            await producer.send(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted-1")
        await producer.flush()
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-3")

    assert await _read_values(settings, topic, 3) == [
        b"committed-1",
        b"committed-2",
        b"committed-3",
    ]


async def test_ensure_topics_leaves_an_existing_topic_alone(
    settings: Settings, unique_topic: UniqueTopic
) -> None:
    topic = await unique_topic("exists", partitions=2)

    await kafka.ensure_topics(settings, [topic], partitions=1)

    async with kafka.admin_client(settings) as admin:
        described = await admin.describe_topics([topic])
    assert len(described[0]["partitions"]) == 2
