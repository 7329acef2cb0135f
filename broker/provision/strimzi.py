"""The provisioning plan as Strimzi resources: ``msht provision --emit strimzi``.

Pure: :func:`strimzi_resources` turns the same :class:`~broker.provision.plan.ProvisionPlan`
that ``msht provision`` applies to a cluster into ``KafkaTopic`` and ``KafkaUser`` resources
(``kafka.strimzi.io/v1``), so Strimzi's Topic and User Operators apply what ``msht provision``
applies here: the same topics with the same partitions, replicas and configuration, one
SCRAM-SHA-512 user per principal and exactly the plan's ACLs (docs/DEPLOY.md).

Names: a ``KafkaUser``'s resource name *is* the Kafka user name, so a user the plan has that
is not a legal Kubernetes name (upper case, ``_``) is refused, never silently renamed. A
``KafkaTopic`` keeps the real topic name in ``spec.topicName`` and gets a legal resource name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import yaml

from broker.errors import ConfigError
from broker.provision.plan import Acl, ProvisionPlan, TopicSpec

API_VERSION = "kafka.strimzi.io/v1"
"""The Strimzi API the resources are written for (the schemas in deploy/k8s/schemas/)."""
CLUSTER_LABEL = "strimzi.io/cluster"

_RESOURCE_TYPE = {
    "TOPIC": "topic",
    "GROUP": "group",
    "CLUSTER": "cluster",
    "TRANSACTIONAL_ID": "transactionalId",
}
_PATTERN = {"LITERAL": "literal", "PREFIXED": "prefix"}
_OPERATION = {
    "READ": "Read",
    "WRITE": "Write",
    "DESCRIBE": "Describe",
    "IDEMPOTENT_WRITE": "IdempotentWrite",
}
# A DNS-1123 subdomain: what Kubernetes accepts as a resource name.
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _metadata(name: str, cluster: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {CLUSTER_LABEL: cluster}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def topic_resource_name(topic: str) -> str:
    """A legal resource name for ``topic``: the name itself when Kubernetes accepts it, else
    a lower-cased, ``_``-free spelling with a short digest so two topics never collide."""
    if _K8S_NAME.match(topic):
        return topic
    base = re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip("-.")[:200] or "topic"
    return f"{base}-{hashlib.sha256(topic.encode()).hexdigest()[:8]}"


def topic_resource(spec: TopicSpec, cluster: str, namespace: str | None) -> dict[str, Any]:
    """The ``KafkaTopic`` for one planned topic."""
    resource: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "KafkaTopic",
        "metadata": _metadata(topic_resource_name(spec.name), cluster, namespace),
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replication_factor,
        },
    }
    if spec.configs:
        resource["spec"]["config"] = dict(spec.configs)
    return resource


def acl_rules(acls: Iterable[Acl]) -> list[dict[str, Any]]:
    """Strimzi ACL rules for one principal's bindings: one rule per resource, operations
    merged, in a stable order."""
    merged: dict[tuple[str, str, str], set[str]] = {}
    for acl in acls:
        if acl.permission != "ALLOW" or acl.host != "*":
            raise ConfigError(f"strimzi: the plan has a binding it never plans: {acl.describe()}")
        key = (acl.resource_type, acl.resource_name, acl.pattern_type)
        merged.setdefault(key, set()).add(_OPERATION[acl.operation])
    rules: list[dict[str, Any]] = []
    for (rtype, name, pattern), operations in sorted(merged.items()):
        resource: dict[str, Any] = {"type": _RESOURCE_TYPE[rtype]}
        if rtype != "CLUSTER":  # the cluster resource has no name in Strimzi's model
            resource["name"] = name
            resource["patternType"] = _PATTERN[pattern]
        rules.append(
            {"type": "allow", "resource": resource, "operations": sorted(operations), "host": "*"}
        )
    return rules


def user_resource(
    user: str, acls: Iterable[Acl], cluster: str, namespace: str | None
) -> dict[str, Any]:
    """The ``KafkaUser`` for one planned user: SCRAM-SHA-512 (Strimzi generates the password
    into a Secret named as the user) and simple authorization with exactly its ACLs."""
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(user, cluster, namespace),
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acl_rules(acls)},
        },
    }


def strimzi_resources(
    plan: ProvisionPlan, *, cluster: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """Every ``KafkaTopic`` and ``KafkaUser`` of ``plan`` for the Kafka cluster named
    ``cluster``. Raises :class:`ConfigError` naming every user that Kubernetes cannot name."""
    bad = [u.name for u in plan.users if not _K8S_NAME.match(u.name)]
    if not _K8S_NAME.match(cluster):
        bad.append(f"cluster {cluster}")
    if bad:
        raise ConfigError(
            "strimzi: not legal Kubernetes names (lower-case letters, digits, '-' and '.'): "
            + ", ".join(bad)
        )
    topics = [topic_resource(t, cluster, namespace) for t in plan.topics]
    users = [
        user_resource(
            u.name, (a for a in plan.acls if a.principal == u.principal), cluster, namespace
        )
        for u in plan.users
    ]
    return [*topics, *users]


def render_yaml(resources: Iterable[dict[str, Any]]) -> str:
    """The resources as one multi-document YAML stream (``kubectl apply -f`` reads it)."""
    return yaml.safe_dump_all(list(resources), sort_keys=False, explicit_start=True)
