"""Fixtures for tests that run against the real local Kafka (``deploy/kafka/kafka.sh``).

Every test in this directory is marked ``integration``. When no broker answers, each test
FAILS with a message saying how to start one; nothing here ever skips.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from broker.errors import MshtError
from broker.kafka import clients as kafka
from broker.settings import Settings

UniqueTopic = Callable[..., Awaitable[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/integration as ``integration``."""
    for item in items:
        if "tests/integration/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith(
            "integration/"
        ):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings for the local broker (``MSHT_*`` environment variables still apply)."""
    return Settings()


@pytest.fixture(scope="session", autouse=True)
async def kafka_broker(settings: Settings) -> Settings:
    """Check once per session that the broker answers a SCRAM-authenticated request.

    Fails (never skips) with the broker's own message when it does not.
    """
    try:
        await kafka.wait_for_broker(settings, timeout=20.0)
    except MshtError as exc:
        pytest.fail(f"integration tests need the local Kafka: {exc}", pytrace=False)
    return settings


@pytest.fixture
async def unique_topic(settings: Settings) -> AsyncIterator[UniqueTopic]:
    """Factory: ``await unique_topic("prefix", partitions=1)`` creates a uuid-named topic.

    Every topic created through the factory is deleted when the test ends.
    """
    created: list[str] = []

    async def make(prefix: str = "test", *, partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"
        await kafka.ensure_topics(settings, [name], partitions=partitions)
        created.append(name)
        return name

    yield make
    await kafka.delete_topics(settings, created)
