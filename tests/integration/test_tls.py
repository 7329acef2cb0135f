"""The local broker's SASL_SSL listener: verified round trips, and clients that must be refused.

The listener is the one ``deploy/kafka/kafka.sh`` runs on 127.0.0.1:9094 (``MSHT_KAFKA_TLS_PORT``)
with the certificates it made with ``msht tls generate`` in ``<state>/tls``
(``MSHT_KAFKA_STATE_DIR``). When no broker answers these tests fail; they never skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.crypto.tls import client_ssl_context, write_tls_files
from broker.errors import TlsError, TransportError
from broker.kafka import clients as kafka
from broker.provision.apply import ClusterAdmin
from broker.settings import Settings

TLS_HOST = "127.0.0.1"
TLS_PORT = int(os.environ.get("MSHT_KAFKA_TLS_PORT", "9094"))


def broker_tls_dir() -> Path:
    """Where kafka.sh keeps the broker's CA and certificate (same rule as kafka.sh)."""
    state = os.environ.get("MSHT_KAFKA_STATE_DIR") or os.environ.get("MSHT_KAFKA_HOME")
    default = Path.home() / ".local" / "state" / "msht-broker" / "kafka"
    return (Path(state) if state else default) / "tls"


@pytest.fixture
def broker_ca() -> Path:
    """The CA that signed the running broker's certificate."""
    ca = broker_tls_dir() / "ca.pem"
    if not ca.is_file():
        pytest.fail(
            f"no broker CA at {ca}: start the broker with `bash deploy/kafka/kafka.sh start`",
            pytrace=False,
        )
    return ca


def over_tls(settings: Settings, ca: Path) -> Settings:
    return settings.model_copy(
        update={
            "bootstrap_servers": f"{TLS_HOST}:{TLS_PORT}",
            "security_protocol": "SASL_SSL",
            "ssl_cafile": ca,
        }
    )


@pytest.fixture
async def tls_topic(settings: Settings, broker_ca: Path) -> AsyncIterator[str]:
    """A uuid-named topic, created and deleted over the TLS listener."""
    tls = over_tls(settings, broker_ca)
    name = f"tls-{uuid.uuid4().hex}"
    await kafka.ensure_topics(tls, [name])
    yield name
    await kafka.delete_topics(tls, [name])


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    files, _ = write_tls_files(tmp_path / "other")
    return files.ca_cert


async def test_produce_and_consume_over_tls_with_verified_certificate(
    settings: Settings, broker_ca: Path, tls_topic: str
) -> None:
    tls = over_tls(settings, broker_ca)
    async with kafka.producer(tls) as producer:
        await producer.send_and_wait(tls_topic, b"over tls", key=b"subject")
    async with kafka.consumer(tls, tls_topic, group_id=f"g-{uuid.uuid4().hex}") as consumer:
        record = await asyncio.wait_for(consumer.getone(), 20)
    assert record.value == b"over tls"


def test_aiokafka_context_checks_certificate_and_host_name(
    settings: Settings, broker_ca: Path
) -> None:
    context = kafka.client_kwargs(over_tls(settings, broker_ca))["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_client_that_does_not_trust_the_ca_is_refused(
    settings: Settings, other_ca: Path
) -> None:
    with pytest.raises(TlsError) as caught:
        async with kafka.producer(over_tls(settings, other_ca)):
            pass
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_provisioning_client_over_tls_verifies_the_broker(
    settings: Settings, broker_ca: Path
) -> None:
    ClusterAdmin(over_tls(settings, broker_ca), timeout=10).check()


def test_provisioning_client_that_does_not_trust_the_ca_is_refused(
    settings: Settings, other_ca: Path
) -> None:
    with pytest.raises(TransportError, match="TLS handshake"):
        ClusterAdmin(over_tls(settings, other_ca), timeout=10).check()


def _handshake(ca: Path, server_hostname: str) -> None:
    context = client_ssl_context(ca)
    with (
        socket.create_connection((TLS_HOST, TLS_PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname),
    ):
        pass


def test_broker_certificate_names_the_host_clients_dial(broker_ca: Path) -> None:
    _handshake(broker_ca, "localhost")


def test_host_name_not_in_the_certificate_is_refused(broker_ca: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(broker_ca, "not-the-broker.example")
