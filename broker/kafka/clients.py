"""Kafka clients built from :class:`~broker.settings.Settings`, with errors in the project's terms.

Every client here is an async context manager: it is started on ``async with`` and always
closed on exit. aiokafka's errors are translated at this boundary (``raise ... from exc``):

* no broker at the address, or a timeout reaching it -> :class:`BrokerUnavailableError`
* the broker refused our SASL credentials             -> :class:`AuthenticationError`
* the broker's ACLs refused the operation             -> :class:`AuthorizationError`
* any other aiokafka error                            -> :class:`TransportError`

aiokafka reports a refused login during bootstrap only as "unable to bootstrap", so when a
client cannot start, :func:`_diagnose` opens one connection itself to tell a wrong password
apart from a broker that is not there.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)

from broker.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnavailableError,
    TlsError,
    TransportError,
)
from broker.settings import INGRESS_TOPIC_CONFIGS, Settings

__all__ = [
    "admin_client",
    "client_kwargs",
    "consumer",
    "delete_topics",
    "ensure_topics",
    "producer",
    "transactional_producer",
    "translate_error",
    "translate_errors",
    "wait_for_broker",
]

_AUTHENTICATION_ERRORS: tuple[type[Exception], ...] = (
    AuthenticationFailedError,
    SaslAuthenticationFailed,
    IllegalSaslStateError,
    UnsupportedSaslMechanismError,
)
_AUTHORIZATION_ERRORS: tuple[type[Exception], ...] = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
# Kafka error codes for "topic already exists" and "unknown topic", as CreateTopics and
# DeleteTopics report them per topic.
_TOPIC_ALREADY_EXISTS = 36
_UNKNOWN_TOPIC = 3
_TOPIC_AUTHORIZATION_FAILED = 29
_CLUSTER_AUTHORIZATION_FAILED = 31


def _unavailable_message(settings: Settings) -> str:
    return (
        f"no Kafka broker answered at {settings.bootstrap_servers} — "
        "start it with `bash deploy/kafka/kafka.sh start`"
    )


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection and SASL keyword arguments shared by every aiokafka client."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.username,
        "sasl_plain_password": settings.password.get_secret_value(),
    }
    if settings.security_protocol == "SASL_SSL":
        kwargs["ssl_context"] = tls_context(settings)
    return kwargs


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The client's TLS context verifying the broker with ``MSHT_SSL_CAFILE``.

    Raises :class:`TlsError` (one line, no traceback) when the CA file is missing,
    unreadable or not a PEM certificate.
    """
    cafile = settings.ssl_cafile
    try:
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise TlsError(f"MSHT_SSL_CAFILE {cafile}: not a usable CA file ({detail})") from exc


def translate_error(exc: BaseException, settings: Settings) -> Exception:
    """The project's error for an aiokafka (or asyncio) failure."""
    if isinstance(exc, _AUTHENTICATION_ERRORS):
        return AuthenticationError(
            f"Kafka at {settings.bootstrap_servers} refused the credentials of user "
            f"{settings.username!r} ({settings.sasl_mechanism}): {exc}"
        )
    if isinstance(exc, _AUTHORIZATION_ERRORS):
        return AuthorizationError(
            f"Kafka ACLs refused user {settings.username!r}: {type(exc).__name__}: {exc}"
        )
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        return TlsError(
            f"TLS with Kafka at {settings.bootstrap_servers} failed: {exc} "
            f"(CA file: {settings.ssl_cafile or 'system default'})"
        )
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError | TimeoutError | OSError):
        return BrokerUnavailableError(f"{_unavailable_message(settings)} ({exc})")
    error = TransportError(f"Kafka request failed: {type(exc).__name__}: {exc}")
    error.retriable = bool(getattr(exc, "retriable", False))
    return error


@contextmanager
def translate_errors(settings: Settings) -> Iterator[None]:
    """Re-raise aiokafka errors raised inside the block as the project's transport errors."""
    try:
        yield
    except (KafkaError, TimeoutError, OSError) as exc:
        raise translate_error(exc, settings) from exc


async def _diagnose(settings: Settings, seconds: float) -> None:
    """Open one connection to the first bootstrap server and raise what stops a client.

    Returns quietly when a connection and login succeed (the failure was elsewhere).
    """
    first = settings.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    kwargs = client_kwargs(settings)
    del kwargs["bootstrap_servers"]
    try:
        conn = await asyncio.wait_for(
            create_conn(host, int(port), request_timeout_ms=int(seconds * 1000), **kwargs),
            seconds,
        )
    except (KafkaError, TimeoutError, OSError) as exc:
        raise translate_error(exc, settings) from exc
    conn.close()


async def _close(client: Any) -> None:  # aiokafka's clients are untyped
    # Producers and consumers stop(); the admin client close()s.
    closer = client.stop if hasattr(client, "stop") else client.close
    await closer()


async def _start(client: Any, settings: Settings) -> None:  # aiokafka's clients are untyped
    """Start ``client``; on failure close it and raise the translated error."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        await _close(client)
        await _diagnose(settings, seconds=10.0)
        raise translate_error(exc, settings) from exc
    except (KafkaError, TimeoutError, OSError) as exc:
        await _close(client)
        raise translate_error(exc, settings) from exc


@asynccontextmanager
async def producer(
    settings: Settings, *, transactional_id: str | None = None, **overrides: Any
) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer (acks=all); transactional when ``transactional_id`` is given.

    ``overrides`` are passed to :class:`aiokafka.AIOKafkaProducer` unchanged (for example a
    ``value_serializer`` or ``linger_ms``).
    """
    kwargs: dict[str, Any] = {
        **client_kwargs(settings),
        "acks": "all",
        "enable_idempotence": True,
        "transactional_id": transactional_id,
        **overrides,
    }
    client = AIOKafkaProducer(**kwargs)
    await _start(client, settings)
    try:
        with translate_errors(settings):
            yield client
    finally:
        await client.stop()


def transactional_producer(
    settings: Settings, transactional_id: str, **overrides: Any
) -> AbstractAsyncContextManager[AIOKafkaProducer]:
    """A transactional producer; use ``async with p.transaction():`` around each batch.

    Returns the same async context manager as :func:`producer`.
    """
    return producer(settings, transactional_id=transactional_id, **overrides)


@asynccontextmanager
async def consumer(
    settings: Settings,
    *topics: str,
    group_id: str | None = None,
    **overrides: Any,
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer that reads only committed records (``isolation_level=read_committed``).

    Subscribes to ``topics`` when given. Offsets are committed by the caller (auto commit
    off) and a new group starts at the earliest offset, unless ``overrides`` say otherwise.
    """
    kwargs: dict[str, Any] = {
        **client_kwargs(settings),
        "group_id": group_id,
        "isolation_level": "read_committed",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        **overrides,
    }
    client = AIOKafkaConsumer(*topics, **kwargs)
    await _start(client, settings)
    try:
        with translate_errors(settings):
            yield client
    finally:
        await client.stop()


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client (topics, ACLs, configs) logged in as ``settings.username``."""
    client = AIOKafkaAdminClient(**client_kwargs(settings))
    await _start(client, settings)
    try:
        with translate_errors(settings):
            yield client
    finally:
        await client.close()


def _check_topic_errors(
    settings: Settings, results: Iterable[tuple[Any, ...]], tolerated: int
) -> None:
    """Raise for the first per-topic error code other than 0 and ``tolerated``."""
    for result in results:
        name, code = result[0], result[1]
        if code in (0, tolerated):
            continue
        if code in (_TOPIC_AUTHORIZATION_FAILED, _CLUSTER_AUTHORIZATION_FAILED):
            raise AuthorizationError(
                f"Kafka ACLs refused user {settings.username!r} on topic {name!r} "
                f"(error code {code})"
            )
        raise TransportError(f"topic {name!r}: Kafka error code {code}")


async def ensure_topics(
    settings: Settings,
    names: Iterable[str],
    *,
    partitions: int = 1,
    replication_factor: int = 1,
) -> None:
    """Create the topics that do not exist yet; existing topics are left as they are.

    An ingress topic (name under ``settings.ingress_prefix``) is created with
    :data:`INGRESS_TOPIC_CONFIGS`: the router trusts only the broker's append time.
    """
    wanted = [
        NewTopic(
            name,
            partitions,
            replication_factor,
            topic_configs=(
                dict(INGRESS_TOPIC_CONFIGS) if name.startswith(settings.ingress_prefix) else {}
            ),
        )
        for name in names
    ]
    if not wanted:
        return
    async with admin_client(settings) as admin:
        response = await admin.create_topics(wanted)
    _check_topic_errors(settings, response.topic_errors, _TOPIC_ALREADY_EXISTS)


async def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    """Delete the topics; a topic that does not exist is not an error."""
    doomed = list(names)
    if not doomed:
        return
    async with admin_client(settings) as admin:
        response = await admin.delete_topics(doomed)
    _check_topic_errors(settings, response.topic_error_codes, _UNKNOWN_TOPIC)


async def wait_for_broker(settings: Settings, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Return once the broker answers a SCRAM-authenticated metadata request.

    Raises :class:`BrokerUnavailableError` when none answers within ``timeout`` seconds and
    :class:`AuthenticationError` straight away when the broker refuses the credentials.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            await asyncio.wait_for(_diagnose(settings, seconds=max(remaining, 0.5)), remaining)
            async with admin_client(settings) as admin:
                await asyncio.wait_for(admin.list_topics(), max(remaining, 1.0))
        except (BrokerUnavailableError, TimeoutError) as exc:
            last = exc
        else:
            return
        if time.monotonic() + 0.5 >= deadline:
            raise BrokerUnavailableError(_unavailable_message(settings)) from last
        await asyncio.sleep(0.5)
