"""broker.kafka.clients reports Kafka failures as the project's own errors (no broker needed)."""

from __future__ import annotations

import socket
import time

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from pydantic import SecretStr

from broker.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnavailableError,
    TransportError,
)
from broker.kafka import clients as kafka
from broker.settings import Settings


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def nowhere() -> Settings:
    return Settings(bootstrap_servers=f"127.0.0.1:{_closed_port()}")


async def test_unreachable_broker_is_reported_quickly(nowhere: Settings) -> None:
    started = time.monotonic()

    with pytest.raises(BrokerUnavailableError, match=r"kafka\.sh start") as caught:
        async with kafka.producer(nowhere):
            pass

    assert time.monotonic() - started < 10
    assert caught.value.__cause__ is not None


async def test_wait_for_broker_gives_up_after_its_timeout(nowhere: Settings) -> None:
    started = time.monotonic()

    with pytest.raises(BrokerUnavailableError, match=r"no Kafka broker answered at 127\.0\.0\.1:"):
        await kafka.wait_for_broker(nowhere, timeout=1.5)

    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (SaslAuthenticationFailed(), AuthenticationError),
        (TopicAuthorizationFailedError(), AuthorizationError),
        (KafkaConnectionError("gone"), BrokerUnavailableError),
        (UnknownTopicOrPartitionError(), TransportError),
    ],
)
def test_aiokafka_errors_are_translated_with_their_cause(
    raised: Exception, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as caught, kafka.translate_errors(Settings()):
        raise raised

    assert caught.value.__cause__ is raised


def test_client_kwargs_carry_the_scram_login() -> None:
    kwargs = kafka.client_kwargs(Settings(password=SecretStr("pw-for-test")))

    assert kwargs["sasl_plain_password"] == "pw-for-test"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
