"""The desired Kafka state for a partner registry: topics, SCRAM users and ACL bindings.

Pure: nothing here talks to Kafka. :func:`build_plan` turns the registry (partner ids), the
agencies that publish, and the deployment's names (:class:`Naming`) into a
:class:`ProvisionPlan` that grants exactly what docs/PROVISIONING.md lists and nothing more:

* an agency writes (and describes) its own ingress topic only, plus ``IdempotentWrite`` on the
  cluster so its idempotent producer may ask for a producer id;
* a partner reads its own delivery topic, with the consumer group named exactly as the partner;
* the router reads every ingress topic (prefixed), writes every delivery topic (prefixed), the
  audit and quarantine topics, reads the audit topic (it restores its state from it), reads its
  consumer group and writes/describes the transactional ids under its prefix;
* the auditor reads the audit topic with its own group; the operator reads quarantine with its
  own group. Nobody else may read quarantine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from broker.errors import ConfigError
from broker.settings import INGRESS_TOPIC_CONFIGS, Settings

CLUSTER_RESOURCE = "kafka-cluster"
"""The one name Kafka gives the cluster resource in ACLs."""

DEFAULT_AUDITOR = "auditor"
"""The auditor's user name unless ``msht provision --auditor`` says otherwise."""
DEFAULT_OPERATOR = "operator"
"""The operator's user name unless ``msht provision --operator`` says otherwise."""

_DEFAULTS = Settings.model_fields
# The router's names come from Settings, the one place they are defined.
DEFAULT_ROUTER = str(_DEFAULTS["router_agency"].default)
DEFAULT_ROUTER_GROUP = str(_DEFAULTS["router_group"].default)
DEFAULT_ROUTER_TRANSACTIONAL_PREFIX = str(_DEFAULTS["router_transactional_prefix"].default)
DEFAULT_HELD_TOPIC = "msht.held"
DEFAULT_DECISIONS_TOPIC = "msht.decisions"
HELD_RETENTION_MS = 90 * 24 * 3600 * 1000
"""How long the held topic keeps a hold: long enough for a person to decide it (90 days)."""

MIN_INSYNC_REPLICAS = "min.insync.replicas"
"""The topic configuration that says how many replicas an acks=all write needs."""

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ResourceType(StrEnum):
    """Kafka ACL resource types the plan uses."""

    TOPIC = "TOPIC"
    GROUP = "GROUP"
    CLUSTER = "CLUSTER"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"


class PatternType(StrEnum):
    """How an ACL's resource name matches: the exact name, or every name with this prefix."""

    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    """Kafka ACL operations the plan grants."""

    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"
    IDEMPOTENT_WRITE = "IDEMPOTENT_WRITE"


class Role(StrEnum):
    """Why a principal is in the plan."""

    AGENCY = "agency"
    PARTNER = "partner"
    ROUTER = "router"
    AUDITOR = "auditor"
    OPERATOR = "operator"
    REVIEWER = "reviewer"


class TopicRole(StrEnum):
    """What a topic is for."""

    INGRESS = "ingress"
    DELIVERY = "delivery"
    AUDIT = "audit"
    QUARANTINE = "quarantine"
    HELD = "held"
    DECISIONS = "decisions"


@dataclass(frozen=True, order=True)
class Acl:
    """One ACL binding. Only ``ALLOW`` bindings from any host are ever planned.

    ``permission`` and ``host`` are kept so that bindings read back from the cluster (which
    may be ``DENY`` or host-specific) compare exactly.
    """

    principal: str
    resource_type: str
    resource_name: str
    pattern_type: str
    operation: str
    permission: str = "ALLOW"
    host: str = "*"

    def describe(self) -> str:
        """``User:cps READ TOPIC deliver.cps (LITERAL)`` for tables and logs."""
        deny = "" if self.permission == "ALLOW" else f" {self.permission}"
        host = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal}{deny} {self.operation} {self.resource_type} "
            f"{self.resource_name} ({self.pattern_type}){host}"
        )


@dataclass(frozen=True, order=True)
class TopicSpec:
    """A topic the plan wants, with its partition count and replication factor."""

    name: str
    role: TopicRole
    partitions: int
    replication_factor: int
    configs: tuple[tuple[str, str], ...] = ()
    """Topic-level configuration set at creation; an existing topic whose value differs is
    altered to it (see :func:`broker.provision.diff.diff`)."""


@dataclass(frozen=True, order=True)
class UserSpec:
    """A SCRAM-SHA-512 user the plan wants; ``roles`` says why (an agency may be a partner too)."""

    name: str
    roles: tuple[Role, ...]

    @property
    def principal(self) -> str:
        """The ACL principal of this user."""
        return principal(self.name)


def principal(user: str) -> str:
    """``User:<user>``: the principal Kafka's SCRAM login gives ``user``."""
    return f"User:{user}"


@dataclass(frozen=True)
class Naming:
    """The names of one deployment: topic names and prefixes, and the service principals.

    Two deployments may share a cluster when their prefixes, topics, principals and groups
    differ (the integration tests rely on this).
    """

    ingress_prefix: str
    delivery_prefix: str
    audit_topic: str
    quarantine_topic: str
    router_user: str = DEFAULT_ROUTER
    router_group: str = DEFAULT_ROUTER_GROUP
    router_transactional_prefix: str = DEFAULT_ROUTER_TRANSACTIONAL_PREFIX
    auditor_user: str = DEFAULT_AUDITOR
    operator_user: str = DEFAULT_OPERATOR
    partitions: int = 3
    replication_factor: int = 1
    min_insync_replicas: int = 1
    held_topic: str = DEFAULT_HELD_TOPIC
    decisions_topic: str = DEFAULT_DECISIONS_TOPIC

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        auditor_user: str = DEFAULT_AUDITOR,
        operator_user: str = DEFAULT_OPERATOR,
        partitions: int = 3,
        replication_factor: int | None = None,
        min_insync_replicas: int | None = None,
    ) -> Naming:
        """Names from ``settings``; router names fall back to the router contract's defaults.

        The replication factor and min ISR are the settings' (``MSHT_REPLICATION_FACTOR``,
        ``MSHT_MIN_INSYNC_REPLICAS``) unless given here (the command line's flags).
        """
        return cls(
            ingress_prefix=settings.ingress_prefix,
            delivery_prefix=settings.delivery_prefix,
            audit_topic=str(settings.audit_topic),
            quarantine_topic=str(settings.quarantine_topic),
            held_topic=str(settings.held_topic),
            decisions_topic=str(settings.decisions_topic),
            router_user=settings.router_agency,
            router_group=settings.router_group,
            router_transactional_prefix=settings.router_transactional_prefix,
            auditor_user=auditor_user,
            operator_user=operator_user,
            partitions=partitions,
            replication_factor=(
                settings.replication_factor if replication_factor is None else replication_factor
            ),
            min_insync_replicas=(
                settings.min_insync_replicas if min_insync_replicas is None else min_insync_replicas
            ),
        )

    def ingress_topic(self, agency: str) -> str:
        """The topic only ``agency`` may write."""
        return f"{self.ingress_prefix}{agency}"

    def delivery_topic(self, partner: str) -> str:
        """The topic only ``partner`` may read."""
        return f"{self.delivery_prefix}{partner}"

    @staticmethod
    def partner_group(partner: str) -> str:
        """The one consumer group ``partner`` may use: its own id, exactly."""
        return partner

    @property
    def auditor_group(self) -> str:
        """The consumer group the auditor reads the audit topic with."""
        return self.auditor_user

    @property
    def operator_group(self) -> str:
        """The consumer group the operator reads quarantine with."""
        return self.operator_user


@dataclass(frozen=True)
class ProvisionPlan:
    """Everything one deployment should have on the cluster."""

    naming: Naming
    topics: tuple[TopicSpec, ...]
    users: tuple[UserSpec, ...]
    acls: frozenset[Acl]
    agencies: tuple[str, ...] = field(default=())
    partners: tuple[str, ...] = field(default=())

    @property
    def principals(self) -> frozenset[str]:
        """Every principal the plan grants something to."""
        return frozenset(u.principal for u in self.users)

    @property
    def topic_names(self) -> frozenset[str]:
        """Every topic the plan wants."""
        return frozenset(t.name for t in self.topics)


def _allow(
    user: str, resource_type: ResourceType, name: str, pattern: PatternType, op: Operation
) -> Acl:
    return Acl(principal(user), resource_type.value, name, pattern.value, op.value)


def agency_acls(naming: Naming, agency: str) -> set[Acl]:
    """Write and describe its own ingress topic; ask for a producer id (idempotence)."""
    topic = naming.ingress_topic(agency)
    lit = PatternType.LITERAL
    return {
        _allow(agency, ResourceType.TOPIC, topic, lit, Operation.WRITE),
        _allow(agency, ResourceType.TOPIC, topic, lit, Operation.DESCRIBE),
        _allow(agency, ResourceType.CLUSTER, CLUSTER_RESOURCE, lit, Operation.IDEMPOTENT_WRITE),
    }


def partner_acls(naming: Naming, partner: str) -> set[Acl]:
    """Read its own delivery topic with the consumer group named as the partner."""
    lit = PatternType.LITERAL
    return {
        _allow(partner, ResourceType.TOPIC, naming.delivery_topic(partner), lit, Operation.READ),
        _allow(partner, ResourceType.GROUP, naming.partner_group(partner), lit, Operation.READ),
    }


def router_acls(naming: Naming) -> set[Acl]:
    """Read all ingress and decisions, write delivery/audit/quarantine/held, restore from
    audit, report overdue holds from held, transact."""
    user, lit, pre = naming.router_user, PatternType.LITERAL, PatternType.PREFIXED
    topic, group, txn = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
    return {
        _allow(user, topic, naming.ingress_prefix, pre, Operation.READ),
        _allow(user, topic, naming.delivery_prefix, pre, Operation.WRITE),
        _allow(user, topic, naming.audit_topic, lit, Operation.WRITE),
        _allow(user, topic, naming.audit_topic, lit, Operation.READ),
        _allow(user, topic, naming.quarantine_topic, lit, Operation.WRITE),
        _allow(user, topic, naming.held_topic, lit, Operation.WRITE),
        _allow(user, topic, naming.held_topic, lit, Operation.READ),
        _allow(user, topic, naming.decisions_topic, lit, Operation.READ),
        _allow(user, group, naming.router_group, lit, Operation.READ),
        _allow(user, txn, naming.router_transactional_prefix, pre, Operation.WRITE),
        _allow(user, txn, naming.router_transactional_prefix, pre, Operation.DESCRIBE),
        _allow(user, ResourceType.CLUSTER, CLUSTER_RESOURCE, lit, Operation.IDEMPOTENT_WRITE),
    }


def auditor_acls(naming: Naming) -> set[Acl]:
    """Read the audit topic with the auditor's own group."""
    user, lit = naming.auditor_user, PatternType.LITERAL
    return {
        _allow(user, ResourceType.TOPIC, naming.audit_topic, lit, Operation.READ),
        _allow(user, ResourceType.GROUP, naming.auditor_group, lit, Operation.READ),
    }


def reviewer_acls(naming: Naming, reviewer: str) -> set[Acl]:
    """Read the held topic with the reviewer's own group; write decisions (docs/REVIEW.md)."""
    lit = PatternType.LITERAL
    return {
        _allow(reviewer, ResourceType.TOPIC, naming.held_topic, lit, Operation.READ),
        _allow(reviewer, ResourceType.GROUP, reviewer, lit, Operation.READ),
        _allow(reviewer, ResourceType.TOPIC, naming.decisions_topic, lit, Operation.WRITE),
        _allow(reviewer, ResourceType.TOPIC, naming.decisions_topic, lit, Operation.DESCRIBE),
        _allow(reviewer, ResourceType.CLUSTER, CLUSTER_RESOURCE, lit, Operation.IDEMPOTENT_WRITE),
    }


def operator_acls(naming: Naming) -> set[Acl]:
    """Read the quarantine topic with the operator's own group."""
    user, lit = naming.operator_user, PatternType.LITERAL
    return {
        _allow(user, ResourceType.TOPIC, naming.quarantine_topic, lit, Operation.READ),
        _allow(user, ResourceType.GROUP, naming.operator_group, lit, Operation.READ),
    }


def wanted_min_insync(naming: Naming) -> int:
    """The ``min.insync.replicas`` the plan wants on each topic: the settings' value, but at
    least 2 with three or more replicas, so that losing one broker never leaves an
    acknowledged write on a single copy."""
    floor = 2 if naming.replication_factor >= 3 else 1
    return max(naming.min_insync_replicas, floor)


def topic_configs(naming: Naming, role: TopicRole) -> tuple[tuple[str, str], ...]:
    """Configuration for a new topic of ``role``.

    The audit topic is kept forever (its hash chain and the router's restored state depend on
    every record). An ingress topic stamps records with the broker's append time, the time
    the router judges signatures at (:data:`~broker.settings.INGRESS_TOPIC_CONFIGS`).
    ``min.insync.replicas`` is set when the plan wants more than one replica in sync
    (:func:`wanted_min_insync`); it is never set to 1, which would lower a cluster whose
    brokers default to more.
    """
    configs: list[tuple[str, str]] = []
    if role is TopicRole.INGRESS:
        configs.extend(INGRESS_TOPIC_CONFIGS)
    if role is TopicRole.AUDIT:
        configs.append(("retention.ms", "-1"))
    if role is TopicRole.HELD:
        configs.append(("retention.ms", str(HELD_RETENTION_MS)))
    min_isr = wanted_min_insync(naming)
    if min_isr > 1:
        configs.append((MIN_INSYNC_REPLICAS, str(min_isr)))
    return tuple(configs)


def _unique_sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(names)))


def _check_names(
    naming: Naming,
    agencies: Sequence[str],
    partners: Sequence[str],
    reviewers: Sequence[str] = (),
) -> None:
    problems: list[str] = []
    services = {
        naming.router_user: "router",
        naming.auditor_user: "auditor",
        naming.operator_user: "operator",
    }
    if len(services) != 3:
        problems.append("router, auditor and operator must be three different user names")
    for user in (*agencies, *partners, *services):
        if not _USER_NAME.match(user):
            problems.append(f"user name {user!r}: use 1-64 of A-Z a-z 0-9 . _ -")
    for user in reviewers:
        if not _USER_NAME.match(user):
            problems.append(f"user name {user!r}: use 1-64 of A-Z a-z 0-9 . _ -")
        if user in (*agencies, *partners):
            problems.append(f"reviewer {user!r}: the name is also an agency or partner")
    for who, ids in (("agency", agencies), ("partner", partners), ("reviewer", reviewers)):
        for name in ids:
            if name in services:
                problems.append(
                    f"{who} {name!r}: the name is taken by the {services[name]} principal"
                )
    if naming.partitions < 1:
        problems.append(f"partitions: must be at least 1, not {naming.partitions}")
    if naming.replication_factor < 1:
        problems.append(f"replication factor: must be at least 1, not {naming.replication_factor}")
    if naming.min_insync_replicas < 1:
        problems.append(f"min ISR: must be at least 1, not {naming.min_insync_replicas}")
    elif naming.min_insync_replicas > naming.replication_factor:
        problems.append(
            f"min ISR {naming.min_insync_replicas} exceeds the replication factor "
            f"{naming.replication_factor}: no acks=all write could ever succeed"
        )
    prefixes = {"ingress prefix": naming.ingress_prefix, "delivery prefix": naming.delivery_prefix}
    for label, prefix in prefixes.items():
        if not prefix:
            problems.append(f"{label}: must not be empty")
    if naming.ingress_prefix and naming.delivery_prefix:
        a, b = naming.ingress_prefix, naming.delivery_prefix
        if a.startswith(b) or b.startswith(a):
            problems.append(
                f"ingress prefix {a!r} and delivery prefix {b!r} overlap: the router's "
                "prefixed grants would cover both"
            )
    if problems:
        raise ConfigError("provisioning plan: " + "; ".join(problems))


def build_plan(
    naming: Naming,
    *,
    partners: Iterable[str],
    agencies: Iterable[str],
    reviewers: Iterable[str] = (),
) -> ProvisionPlan:
    """The topics, users and ACLs for ``partners`` (readers) and ``agencies`` (writers).

    Raises :class:`ConfigError` naming every bad name (an agency or partner that clashes with a
    service principal, an illegal topic name, overlapping prefixes, a partition count below 1).
    """
    partner_ids = _unique_sorted(partners)
    agency_ids = _unique_sorted(agencies)
    reviewer_ids = _unique_sorted(reviewers)
    _check_names(naming, agency_ids, partner_ids, reviewer_ids)

    def spec(name: str, role: TopicRole) -> TopicSpec:
        if not _TOPIC_NAME.match(name) or name in (".", ".."):
            raise ConfigError(f"provisioning plan: {role} topic {name!r} is not a legal Kafka name")
        return TopicSpec(
            name, role, naming.partitions, naming.replication_factor, topic_configs(naming, role)
        )

    topics = {spec(naming.ingress_topic(a), TopicRole.INGRESS) for a in agency_ids}
    topics |= {spec(naming.delivery_topic(p), TopicRole.DELIVERY) for p in partner_ids}
    topics.add(spec(naming.audit_topic, TopicRole.AUDIT))
    topics.add(spec(naming.quarantine_topic, TopicRole.QUARANTINE))
    topics.add(spec(naming.held_topic, TopicRole.HELD))
    topics.add(spec(naming.decisions_topic, TopicRole.DECISIONS))

    roles: dict[str, list[Role]] = {}
    for a in agency_ids:
        roles.setdefault(a, []).append(Role.AGENCY)
    for p in partner_ids:
        roles.setdefault(p, []).append(Role.PARTNER)
    for r in reviewer_ids:
        roles.setdefault(r, []).append(Role.REVIEWER)
    roles[naming.router_user] = [Role.ROUTER]
    roles[naming.auditor_user] = [Role.AUDITOR]
    roles[naming.operator_user] = [Role.OPERATOR]
    users = tuple(sorted(UserSpec(name, tuple(r)) for name, r in roles.items()))

    acls: set[Acl] = set()
    for a in agency_ids:
        acls |= agency_acls(naming, a)
    for p in partner_ids:
        acls |= partner_acls(naming, p)
    for r in reviewer_ids:
        acls |= reviewer_acls(naming, r)
    acls |= router_acls(naming) | auditor_acls(naming) | operator_acls(naming)
    return ProvisionPlan(
        naming=naming,
        topics=tuple(sorted(topics)),
        users=users,
        acls=frozenset(acls),
        agencies=agency_ids,
        partners=partner_ids,
    )


def publishing_agencies(
    partners: Iterable[str], extra: Iterable[str] = (), trust_store_agencies: Iterable[str] = ()
) -> tuple[str, ...]:
    """Who gets an ingress topic: every partner, the named extras and the trust store's agencies.

    ``trust_store_agencies`` must already exclude router entries (the router writes delivery,
    not ingress).
    """
    return _unique_sorted([*partners, *extra, *trust_store_agencies])
