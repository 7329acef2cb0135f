"""Read and change the cluster with confluent-kafka's ``AdminClient``.

aiokafka's admin client has no ACL or SCRAM calls, so provisioning uses librdkafka's, through
confluent-kafka. Every librdkafka error is translated here (``raise ... from exc``):

* no broker answered, a timeout, a transport failure -> :class:`BrokerUnavailableError`
* the broker refused the admin's credentials          -> :class:`AuthenticationError`
* the TLS handshake failed (untrusted certificate)     -> :class:`TransportError`
* the broker's ACLs refused the operation              -> :class:`AuthorizationError`
* anything else                                        -> :class:`TransportError`
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)

# confluent-kafka's admin package re-exports these without __all__, which mypy --strict does
# not accept as an export; import them from the modules that define them.
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourcePatternType
from confluent_kafka.admin._resource import ResourceType as KafkaResourceType
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from confluent_kafka.cimpl import NewTopic

from broker.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnavailableError,
    TransportError,
)
from broker.provision.diff import ClusterState, topic_in_scope
from broker.provision.plan import MIN_INSYNC_REPLICAS, Acl, Naming, ResourceType, TopicSpec
from broker.settings import Settings

__all__ = ["SCRAM_ITERATIONS", "ClusterAdmin", "admin_config"]

SCRAM_ITERATIONS = 8192
"""PBKDF2 iterations for new SCRAM-SHA-512 credentials (Kafka's minimum is 4096)."""

_UNAVAILABLE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._RESOLVE,
    KafkaError.REQUEST_TIMED_OUT,
}
_AUTHENTICATION = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
_TLS = {KafkaError._SSL}
_AUTHORIZATION = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}
# The cluster resource is "BROKER" in librdkafka's enum (both are resource type 4 on the wire).
_TO_KAFKA_RESOURCE = {
    ResourceType.TOPIC.value: KafkaResourceType.TOPIC,
    ResourceType.GROUP.value: KafkaResourceType.GROUP,
    ResourceType.CLUSTER.value: KafkaResourceType.BROKER,
    ResourceType.TRANSACTIONAL_ID.value: KafkaResourceType.TRANSACTIONAL_ID,
}
_FROM_KAFKA_RESOURCE = {v.name: k for k, v in _TO_KAFKA_RESOURCE.items()}

T = TypeVar("T")

_POLL_SECONDS = 0.25
_DOWN_GRACE_SECONDS = 5.0
"""How long to keep waiting once librdkafka has reported every broker down."""
_ANY_NAME: Any = None
"""librdkafka's "match any string" in an ACL filter (its type hints say ``str``)."""


def _name(value: object) -> str:
    """The enum member name of a field confluent-kafka types as ``Enum | str | int``."""
    return str(getattr(value, "name", value))


def admin_config(settings: Settings) -> dict[str, Any]:
    """librdkafka configuration for an admin client logged in as ``settings.username``."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"{settings.client_id}-provision",
        "security.protocol": settings.security_protocol,
        "sasl.mechanism": settings.sasl_mechanism,
        "sasl.username": settings.username,
        "sasl.password": settings.password.get_secret_value(),
        # librdkafka's own lines go through stdlib logging (rendered as JSON like ours)
        # instead of straight to stderr.
        "logger": logging.getLogger("confluent_kafka"),
    }
    if settings.security_protocol == "SASL_SSL":
        config["ssl.endpoint.identification.algorithm"] = "https"
        if settings.ssl_cafile is not None:
            config["ssl.ca.location"] = str(settings.ssl_cafile)
    return config


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return int(exc.args[0].code())
    return None


class ClusterAdmin:
    """Provisioning's view of one cluster, as the administrator in ``settings``."""

    def __init__(self, settings: Settings, *, timeout: float = 15.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._fatal: KafkaError | None = None
        config = admin_config(settings)
        config["error_cb"] = self._on_error
        config["socket.timeout.ms"] = int(timeout * 1000)
        # librdkafka's own log lines would repeat every failed connection on stderr; errors
        # reach us through error_cb and the futures instead.
        config["log_level"] = 0
        self._client = AdminClient(config)

    def _on_error(self, error: KafkaError) -> None:
        # librdkafka reports a refused login or an unreachable cluster only here; the
        # request itself would just time out.
        if error.code() in _AUTHENTICATION | _UNAVAILABLE | _TLS:
            self._fatal = error

    def _translate(self, exc: BaseException, doing: str) -> Exception:
        code = _code(exc)
        fatal = self._fatal
        user = self._settings.username
        where = self._settings.bootstrap_servers
        if code in _AUTHENTICATION or (fatal is not None and fatal.code() in _AUTHENTICATION):
            detail = fatal.str() if fatal is not None else str(exc)
            return AuthenticationError(
                f"Kafka at {where} refused the credentials of user {user!r} "
                f"({self._settings.sasl_mechanism}) while {doing}: {detail}"
            )
        if code in _TLS or (fatal is not None and fatal.code() in _TLS):
            detail = fatal.str() if fatal is not None else str(exc)
            return TransportError(
                f"TLS handshake with Kafka at {where} failed while {doing} (is "
                f"ssl_cafile the CA that signed the broker's certificate?): {detail}"
            )
        if code in _AUTHORIZATION:
            return AuthorizationError(f"Kafka ACLs refused user {user!r} {doing}: {exc}")
        if code in _UNAVAILABLE or (code is None and isinstance(exc, TimeoutError)):
            seen = fatal is not None and fatal.str() not in str(exc)
            detail = f"; last error: {fatal.str()}" if seen and fatal is not None else ""
            return BrokerUnavailableError(
                f"no Kafka broker answered at {where} while {doing} ({exc}{detail}) - start it "
                "with `bash deploy/kafka/kafka.sh start`"
            )
        return TransportError(f"Kafka refused {doing}: {exc}")

    def _wait(self, future: Future[T], doing: str) -> T:
        # Poll so that a refused login ends the wait at once instead of at the timeout.
        started = time.monotonic()
        deadline = started + self._timeout + 5
        try:
            while True:
                try:
                    return future.result(timeout=_POLL_SECONDS)
                except TimeoutError:
                    self._client.poll(0)  # serves error_cb
                    fatal = self._fatal
                    now = time.monotonic()
                    down = now >= started + _DOWN_GRACE_SECONDS and fatal is not None
                    final = fatal is not None and fatal.code() in _AUTHENTICATION | _TLS
                    if fatal is not None and (final or down):
                        future.cancel()
                        raise KafkaException(fatal) from None
                    if now >= deadline:
                        raise
        except (KafkaException, TimeoutError) as exc:
            raise self._translate(exc, doing) from exc

    def check(self) -> None:
        """Raise the project's error unless the cluster answers and accepts our login."""
        future = self._call(
            lambda: self._client.describe_cluster(request_timeout=self._timeout),
            "connecting",
        )
        self._wait(future, "connecting")

    def _call(self, start: Callable[[], T], doing: str) -> T:
        try:
            return start()
        except KafkaException as exc:
            raise self._translate(exc, doing) from exc

    # --- reading ---------------------------------------------------------------------

    def _topic_metadata(self) -> dict[str, Any]:
        metadata = self._call(
            lambda: self._client.list_topics(timeout=self._timeout), "listing topics"
        )
        return {name: topic for name, topic in metadata.topics.items() if not name.startswith("__")}

    def topics(self) -> dict[str, int]:
        """Every topic on the cluster with its partition count (internal topics left out)."""
        return {name: len(topic.partitions) for name, topic in self._topic_metadata().items()}

    def replication(self, names: Iterable[str]) -> dict[str, int]:
        """The replication factor of each named topic: the fewest replicas of any partition."""
        wanted = set(names)
        return {
            name: min((len(p.replicas) for p in topic.partitions.values()), default=0)
            for name, topic in self._topic_metadata().items()
            if name in wanted
        }

    def min_insync(self, names: Iterable[str]) -> dict[str, int]:
        """The effective ``min.insync.replicas`` of each named topic (its own or the broker's)."""
        resources = [ConfigResource(KafkaResourceType.TOPIC, name) for name in sorted(set(names))]
        if not resources:
            return {}
        futures = self._call(
            lambda: self._client.describe_configs(resources, request_timeout=self._timeout),
            "describing topic configurations",
        )
        found: dict[str, int] = {}
        for resource, future in futures.items():
            entries = self._wait(future, f"describing topic {resource.name!r}")
            entry = entries.get(MIN_INSYNC_REPLICAS)
            if entry is not None and entry.value is not None:
                found[resource.name] = int(entry.value)
        return found

    def scram_users(self) -> frozenset[str]:
        """Every user holding a SCRAM-SHA-512 credential."""
        future = self._call(
            lambda: self._client.describe_user_scram_credentials(request_timeout=self._timeout),
            "describing SCRAM users",
        )
        # Without a user list the call returns one future for the whole mapping.
        whole = cast("Future[Mapping[str, Any]]", future)
        described = self._wait(whole, "describing SCRAM users")
        return frozenset(
            user
            for user, description in described.items()
            if any(
                info.mechanism == ScramMechanism.SCRAM_SHA_512
                for info in description.scram_credential_infos
            )
        )

    def acls(self) -> frozenset[Acl]:
        """Every ACL binding on the cluster."""
        everything = AclBindingFilter(
            KafkaResourceType.ANY,
            _ANY_NAME,
            ResourcePatternType.ANY,
            _ANY_NAME,
            _ANY_NAME,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        future = self._call(
            lambda: self._client.describe_acls(everything, request_timeout=self._timeout),
            "describing ACLs",
        )
        bindings: list[AclBinding] = self._wait(future, "describing ACLs")
        return frozenset(
            _from_binding(b) for b in bindings if _name(b.restype) in _FROM_KAFKA_RESOURCE
        )

    def state(self) -> ClusterState:
        """Topics, SCRAM users and ACLs, read in one go; replicas and min ISR of the topics in
        the settings' scope (their prefixes and names), so other deployments' topics on a
        shared cluster cost nothing."""
        self.check()
        topics = self.topics()
        naming = Naming.from_settings(self._settings)
        scope = [name for name in topics if topic_in_scope(naming, name)]
        return ClusterState(
            topics=topics,
            scram_users=self.scram_users(),
            acls=self.acls(),
            replication=self.replication(scope),
            min_insync=self.min_insync(scope),
        )

    def topic_configs(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        """The configuration of each topic in ``names`` (every entry, defaults included)."""
        resources = [ConfigResource(KafkaResourceType.TOPIC, name) for name in names]
        if not resources:
            return {}
        futures = self._call(
            lambda: self._client.describe_configs(resources, request_timeout=self._timeout),
            "describing topic configuration",
        )
        found: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            entries = self._wait(future, f"describing topic {resource.name!r}")
            found[resource.name] = {
                name: str(entry.value) for name, entry in entries.items() if entry.value is not None
            }
        return found

    # --- changing --------------------------------------------------------------------

    def create_topics(self, topics: Iterable[TopicSpec]) -> None:
        """Create ``topics``; one that appeared meanwhile is not an error."""
        wanted = [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=t.replication_factor,
                config=dict(t.configs),
            )
            for t in topics
        ]
        if not wanted:
            return
        futures = self._call(
            lambda: self._client.create_topics(wanted, request_timeout=self._timeout),
            "creating topics",
        )
        for name, future in futures.items():
            try:
                self._wait(future, f"creating topic {name!r}")
            except TransportError as exc:
                if _code(exc.__cause__ or exc) != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def alter_topic_configs(
        self, changes: Iterable[tuple[str, tuple[tuple[str, str], ...]]]
    ) -> None:
        """Set each listed configuration value on each topic, leaving its others alone."""
        resources = [
            ConfigResource(
                KafkaResourceType.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    for key, value in configs
                ],
            )
            for name, configs in changes
        ]
        if not resources:
            return
        futures = self._call(
            lambda: self._client.incremental_alter_configs(
                resources, request_timeout=self._timeout
            ),
            "altering topic configuration",
        )
        for resource, future in futures.items():
            self._wait(future, f"altering the configuration of topic {resource.name!r}")

    def upsert_users(self, passwords: Mapping[str, str]) -> None:
        """Create (or reset) a SCRAM-SHA-512 credential for each user."""
        if not passwords:
            return
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        changes: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(user, info, password.encode("utf-8"))
            for user, password in passwords.items()
        ]
        futures = self._call(
            lambda: self._client.alter_user_scram_credentials(
                changes, request_timeout=self._timeout
            ),
            "creating SCRAM users",
        )
        for user, future in futures.items():
            self._wait(future, f"creating SCRAM user {user!r}")

    def delete_users(self, users: Iterable[str]) -> None:
        """Remove the SCRAM-SHA-512 credential of each user."""
        changes: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(u, ScramMechanism.SCRAM_SHA_512) for u in users
        ]
        if not changes:
            return
        futures = self._call(
            lambda: self._client.alter_user_scram_credentials(
                changes, request_timeout=self._timeout
            ),
            "removing SCRAM users",
        )
        for user, future in futures.items():
            self._wait(future, f"removing SCRAM user {user!r}")

    def create_acls(self, acls: Iterable[Acl]) -> None:
        """Create the ACL bindings."""
        bindings = [_to_binding(a) for a in acls]
        if not bindings:
            return
        futures = self._call(
            lambda: self._client.create_acls(bindings, request_timeout=self._timeout),
            "creating ACLs",
        )
        for binding, future in futures.items():
            self._wait(future, f"creating ACL {_from_binding(binding).describe()}")

    def delete_acls(self, acls: Iterable[Acl]) -> None:
        """Delete exactly these ACL bindings (each filter matches one binding)."""
        filters = [_to_filter(a) for a in acls]
        if not filters:
            return
        futures = self._call(
            lambda: self._client.delete_acls(filters, request_timeout=self._timeout),
            "deleting ACLs",
        )
        for _, future in futures.items():
            self._wait(future, "deleting ACLs")


def _to_binding(acl: Acl) -> AclBinding:
    return AclBinding(
        _TO_KAFKA_RESOURCE[acl.resource_type],
        acl.resource_name,
        ResourcePatternType[acl.pattern_type],
        acl.principal,
        acl.host,
        AclOperation[acl.operation],
        AclPermissionType[acl.permission],
    )


def _to_filter(acl: Acl) -> AclBindingFilter:
    return AclBindingFilter(
        _TO_KAFKA_RESOURCE[acl.resource_type],
        acl.resource_name,
        ResourcePatternType[acl.pattern_type],
        acl.principal,
        acl.host,
        AclOperation[acl.operation],
        AclPermissionType[acl.permission],
    )


def _from_binding(binding: AclBinding) -> Acl:
    return Acl(
        principal=binding.principal,
        resource_type=_FROM_KAFKA_RESOURCE[_name(binding.restype)],
        resource_name=binding.name,
        pattern_type=_name(binding.resource_pattern_type),
        operation=_name(binding.operation),
        permission=_name(binding.permission_type),
        host=binding.host,
    )
