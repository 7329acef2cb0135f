"""Compare a :class:`~broker.provision.plan.ProvisionPlan` with what the cluster has.

Pure: the cluster's state arrives as a :class:`ClusterState` value. What the comparison looks
at (the deployment's *scope*, see docs/PROVISIONING.md):

* topics whose names start with the ingress or delivery prefix, and the audit and quarantine
  topics;
* ACLs that could grant something on those topics, on the router's transactional ids or on
  the groups the plan uses (a ``*`` wildcard or a broader prefix included), and every ACL of a
  principal the plan names or that provisioning manages;
* SCRAM users the plan names or that provisioning manages.

A principal is **managed** when it is a user other than the administrator the provisioner
logs in as, and it holds a LITERAL ACL on the ingress or delivery topic that carries its own
name (``User:X`` on ``<ingress_prefix>X`` or ``<delivery_prefix>X``) - the signature of a
grant only provisioning makes - or when the plan names it. A managed principal that the plan
no longer names (a partner removed from the registry) loses every ACL on the next run; its
SCRAM credential is removed with ``prune`` and reported otherwise. ACLs in scope that the plan
does not contain, held by principals the plan does name or by anyone else, are reported and
removed only with ``prune``. Topics are never deleted or altered: a topic in scope that the
plan does not want, whose partition count differs, or that has fewer replicas or a lower
``min.insync.replicas`` than the plan (the settings' ``MSHT_REPLICATION_FACTOR`` and
``MSHT_MIN_INSYNC_REPLICAS``) is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from broker.provision.plan import (
    MIN_INSYNC_REPLICAS,
    Acl,
    Naming,
    PatternType,
    ProvisionPlan,
    ResourceType,
    TopicSpec,
    principal,
)

_WILDCARD = "*"


class Action(StrEnum):
    """What a run does (or would do) with one topic, user or ACL."""

    CREATE = "create"
    KEEP = "keep"
    ALTER = "alter"
    REMOVE = "remove"
    REPORT = "report"


@dataclass(frozen=True)
class ClusterState:
    """What the cluster has: topics and partition counts, SCRAM-SHA-512 users, ACL bindings.

    ``replication`` (the fewest replicas of any partition) and ``min_insync`` (the topic's
    effective ``min.insync.replicas``) are known for the topics in scope that were read; a
    topic missing from them is not judged on that count.
    """

    topics: Mapping[str, int]
    scram_users: frozenset[str]
    acls: frozenset[Acl]
    topic_configs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Configuration of topics in scope, by topic; a topic missing here is not compared."""
    replication: Mapping[str, int] = field(default_factory=dict)
    min_insync: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class Row:
    """One line of the plan table."""

    kind: str
    action: Action
    subject: str
    note: str = ""
    principal: str = ""


@dataclass(frozen=True)
class ProvisionDiff:
    """Everything a run creates, keeps, removes or only reports."""

    topics_create: tuple[TopicSpec, ...]
    topics_keep: tuple[str, ...]
    topics_report: tuple[tuple[str, str], ...]
    topics_alter: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    """Existing topics and the configuration values to set on them, with the values found."""
    users_create: tuple[str, ...]
    users_keep: tuple[str, ...]
    users_remove: tuple[str, ...]
    users_report: tuple[tuple[str, str], ...]
    acls_create: tuple[Acl, ...]
    acls_keep: tuple[Acl, ...]
    acls_remove: tuple[Acl, ...]
    acls_report: tuple[Acl, ...]

    @property
    def changes_anything(self) -> bool:
        """Whether applying this diff would change the cluster."""
        return bool(
            self.topics_create
            or self.topics_alter
            or self.users_create
            or self.users_remove
            or self.acls_create
            or self.acls_remove
        )

    def rows(self) -> list[Row]:
        """Every item as a table row: topics, then users, then ACLs; changes first."""
        rows = [Row("topic", Action.CREATE, t.name, _topic_note(t)) for t in self.topics_create]
        rows += [
            Row("topic", Action.ALTER, name, ", ".join(f"{k}={v}" for k, v in configs))
            for name, configs in self.topics_alter
        ]
        rows += [Row("topic", Action.KEEP, name) for name in self.topics_keep]
        rows += [Row("topic", Action.REPORT, name, why) for name, why in self.topics_report]
        rows += [Row("user", Action.CREATE, u, "SCRAM-SHA-512") for u in self.users_create]
        rows += [Row("user", Action.KEEP, u) for u in self.users_keep]
        rows += [Row("user", Action.REMOVE, u, "no longer in the plan") for u in self.users_remove]
        rows += [Row("user", Action.REPORT, u, why) for u, why in self.users_report]
        rows += [_acl_row(a, Action.CREATE) for a in self.acls_create]
        rows += [_acl_row(a, Action.KEEP) for a in self.acls_keep]
        rows += [_acl_row(a, Action.REMOVE) for a in self.acls_remove]
        rows += [
            _acl_row(a, Action.REPORT, "not in the plan; --prune removes it")
            for a in self.acls_report
        ]
        return rows


def _acl_row(acl: Acl, action: Action, note: str = "") -> Row:
    pattern = " (prefixed)" if acl.pattern_type == PatternType.PREFIXED.value else ""
    deny = "" if acl.permission == "ALLOW" else f"{acl.permission} "
    host = "" if acl.host == "*" else f" from {acl.host}"
    subject = f"{deny}{acl.operation} {acl.resource_type} {acl.resource_name}{pattern}{host}"
    return Row("acl", action, subject, note, principal=acl.principal)


def _topic_note(topic: TopicSpec) -> str:
    note = f"{topic.role}, {topic.partitions} partitions, replication {topic.replication_factor}"
    min_isr = dict(topic.configs).get(MIN_INSYNC_REPLICAS)
    return f"{note}, min ISR {min_isr}" if min_isr else note


def topic_shortfalls(topic: TopicSpec, state: ClusterState) -> list[str]:
    """Why the existing ``topic`` falls short of its spec (empty when it does not).

    Partitions must match; replicas and ``min.insync.replicas`` must be at least the plan's
    (more is safer, not a fault).
    """
    wanted_min_isr = int(dict(topic.configs).get(MIN_INSYNC_REPLICAS, "1"))
    found: list[str] = []
    have = state.topics[topic.name]
    if have != topic.partitions:
        found.append(f"has {have} partitions, the plan says {topic.partitions}")
    replicas = state.replication.get(topic.name)
    if replicas is not None and replicas < topic.replication_factor:
        found.append(
            f"has {replicas} replica{'s' if replicas != 1 else ''}, the settings want "
            f"{topic.replication_factor} (MSHT_REPLICATION_FACTOR; add replicas with "
            "kafka-reassign-partitions)"
        )
    min_isr = state.min_insync.get(topic.name)
    if min_isr is not None and min_isr < wanted_min_isr:
        found.append(
            f"min.insync.replicas is {min_isr}, the settings want {wanted_min_isr} "
            "(MSHT_MIN_INSYNC_REPLICAS; set it with kafka-configs --alter)"
        )
    return found


def _user_of(principal_name: str) -> str | None:
    kind, _, name = principal_name.partition(":")
    return name if kind == "User" and name else None


def topic_in_scope(naming: Naming, name: str) -> bool:
    """Whether a topic belongs to this deployment."""
    return (
        name.startswith(naming.ingress_prefix)
        or name.startswith(naming.delivery_prefix)
        or name
        in (naming.audit_topic, naming.quarantine_topic, naming.held_topic, naming.decisions_topic)
    )


def _pattern_touches(acl: Acl, names: Iterable[str], prefixes: Iterable[str]) -> bool:
    """Whether ``acl``'s pattern can match one of ``names`` or a name under ``prefixes``."""
    resource = acl.resource_name
    if acl.pattern_type == PatternType.LITERAL.value:
        if resource == _WILDCARD:
            return True
        return resource in names or any(resource.startswith(p) for p in prefixes)
    if acl.pattern_type == PatternType.PREFIXED.value:
        return any(n.startswith(resource) for n in names) or any(
            p.startswith(resource) or resource.startswith(p) for p in prefixes
        )
    return False


def acl_in_scope(
    naming: Naming, acl: Acl, groups: frozenset[str], principals: frozenset[str]
) -> bool:
    """Whether ``acl`` concerns this deployment (see the module docstring)."""
    if acl.principal in principals:
        return True
    if acl.resource_type == ResourceType.TOPIC.value:
        return _pattern_touches(
            acl,
            (
                naming.audit_topic,
                naming.quarantine_topic,
                naming.held_topic,
                naming.decisions_topic,
            ),
            (naming.ingress_prefix, naming.delivery_prefix),
        )
    if acl.resource_type == ResourceType.TRANSACTIONAL_ID.value:
        return _pattern_touches(acl, (), (naming.router_transactional_prefix,))
    if acl.resource_type == ResourceType.GROUP.value:
        return _pattern_touches(acl, groups, ())
    return False


def managed_principals(
    naming: Naming, acls: Iterable[Acl], plan: ProvisionPlan, admin_user: str
) -> frozenset[str]:
    """The plan's principals plus every user carrying provisioning's signature grant."""
    managed = set(plan.principals)
    for acl in acls:
        user = _user_of(acl.principal)
        if user is None or user == admin_user:
            continue
        own = (naming.ingress_topic(user), naming.delivery_topic(user))
        if (
            acl.resource_type == ResourceType.TOPIC.value
            and acl.pattern_type == PatternType.LITERAL.value
            and acl.resource_name in own
        ):
            managed.add(acl.principal)
    managed.discard(principal(admin_user))
    return frozenset(managed)


def diff(
    plan: ProvisionPlan, state: ClusterState, *, prune: bool, admin_user: str
) -> ProvisionDiff:
    """What to create, keep, remove and report to bring the cluster to ``plan``.

    ``admin_user`` is the (super) user the provisioner logs in as; it is never managed, so
    its ACLs and credential are never touched.
    """
    naming = plan.naming
    topics_create = tuple(t for t in plan.topics if t.name not in state.topics)
    topics_keep: list[str] = []
    topics_report: list[tuple[str, str]] = []
    topics_alter: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for t in plan.topics:
        if t.name not in state.topics:
            continue
        found = state.topic_configs.get(t.name)
        if found is not None:
            # min.insync.replicas is reported below, never changed here: raising it on a
            # degraded cluster could stop every write to the topic.
            wrong = tuple(
                (k, v) for k, v in t.configs if found.get(k) != v and k != MIN_INSYNC_REPLICAS
            )
            if wrong:
                topics_alter.append((t.name, wrong))
        if shortfalls := topic_shortfalls(t, state):
            topics_report.append((t.name, "; ".join(shortfalls) + "; left as it is"))
        else:
            topics_keep.append(t.name)
    for name in sorted(state.topics):
        if topic_in_scope(naming, name) and name not in plan.topic_names:
            topics_report.append((name, "not in the plan; topics are never deleted"))

    managed = managed_principals(naming, state.acls, plan, admin_user)
    removed = managed - plan.principals
    groups = frozenset(
        {naming.router_group, naming.auditor_group, naming.operator_group}
        | {naming.partner_group(p) for p in plan.partners}
        | {naming.partner_group(u) for u in map(_user_of, removed) if u}
    )
    scope_principals = managed | plan.principals
    admin_principal = principal(admin_user)
    in_scope = {
        a
        for a in state.acls
        if a.principal != admin_principal and acl_in_scope(naming, a, groups, scope_principals)
    }
    acls_create = tuple(sorted(plan.acls - state.acls))
    acls_keep = tuple(sorted(plan.acls & state.acls))
    unplanned = in_scope - plan.acls
    acls_remove = sorted(a for a in unplanned if a.principal in removed)
    acls_report: list[Acl] = []
    for a in sorted(unplanned - set(acls_remove)):
        (acls_remove if prune else acls_report).append(a)

    wanted_users = [u.name for u in plan.users]
    users_create = tuple(u for u in wanted_users if u not in state.scram_users)
    users_keep = tuple(u for u in wanted_users if u in state.scram_users)
    stale_users = sorted(
        u for u in map(_user_of, removed) if u is not None and u in state.scram_users
    )
    users_remove = tuple(stale_users) if prune else ()
    users_report = (
        ()
        if prune
        else tuple((u, "no longer in the plan; --prune removes it") for u in stale_users)
    )
    return ProvisionDiff(
        topics_create=topics_create,
        topics_keep=tuple(topics_keep),
        topics_report=tuple(topics_report),
        topics_alter=tuple(topics_alter),
        users_create=users_create,
        users_keep=users_keep,
        users_remove=users_remove,
        users_report=users_report,
        acls_create=acls_create,
        acls_keep=acls_keep,
        acls_remove=tuple(sorted(acls_remove)),
        acls_report=tuple(acls_report),
    )
