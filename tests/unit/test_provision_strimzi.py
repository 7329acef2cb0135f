"""``msht provision --emit strimzi``: the plan as KafkaTopic and KafkaUser resources, checked
against the resources' schemas vendored from Strimzi's CRDs (deploy/k8s/schemas/)."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main
from broker.errors import ConfigError
from broker.provision.plan import Acl, Naming, ProvisionPlan, build_plan, principal
from broker.provision.strimzi import (
    CLUSTER_LABEL,
    render_yaml,
    strimzi_resources,
    topic_resource_name,
)
from tests.unit.strimzi_schemas import K8S_NAME, schema_problems

REPO = Path(__file__).resolve().parents[2]
NAMING = Naming(
    ingress_prefix="ingress.",
    delivery_prefix="deliver.",
    audit_topic="msht.audit",
    quarantine_topic="msht.quarantine",
)
_BACK_TYPE = {"topic": "TOPIC", "group": "GROUP", "cluster": "CLUSTER"}
_BACK_TYPE["transactionalId"] = "TRANSACTIONAL_ID"
_BACK_PATTERN = {"literal": "LITERAL", "prefix": "PREFIXED"}
_BACK_OP = {"Read": "READ", "Write": "WRITE", "Describe": "DESCRIBE"}
_BACK_OP["IdempotentWrite"] = "IDEMPOTENT_WRITE"


def _problems(document: dict[str, Any]) -> list[str]:
    return schema_problems(document)


def _plans() -> list[ProvisionPlan]:
    three = dataclasses.replace(NAMING, replication_factor=3, min_insync_replicas=2)
    return [
        build_plan(NAMING, partners=("cps", "nca"), agencies=("cps", "police")),
        build_plan(NAMING, partners=(), agencies=("police",)),
        build_plan(three, partners=("cps", "ilo-nl", "nca"), agencies=("cps", "met-police")),
    ]


@pytest.mark.parametrize("plan", _plans())
def test_every_emitted_resource_matches_its_strimzi_schema(plan: ProvisionPlan) -> None:
    documents = list(yaml.safe_load_all(render_yaml(strimzi_resources(plan, cluster="msht"))))
    assert documents
    for document in documents:
        assert _problems(document) == [], document["metadata"]["name"]


def test_schema_check_refuses_an_unknown_operation() -> None:
    [user] = [
        d
        for d in strimzi_resources(_plans()[0], cluster="msht")
        if d["kind"] == "KafkaUser" and d["metadata"]["name"] == "router"
    ]
    broken = copy.deepcopy(user)
    broken["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    assert _problems(broken)


def test_schema_check_refuses_a_misspelt_member() -> None:
    [topic] = [
        d for d in strimzi_resources(_plans()[0], cluster="msht") if d["kind"] == "KafkaTopic"
    ][:1]
    broken = copy.deepcopy(topic)
    broken["spec"]["replicaz"] = broken["spec"].pop("replicas")
    assert _problems(broken)


def _acls_of(document: dict[str, Any]) -> set[Acl]:
    user = principal(document["metadata"]["name"])
    found: set[Acl] = set()
    for rule in document["spec"]["authorization"]["acls"]:
        resource = rule["resource"]
        rtype = _BACK_TYPE[resource["type"]]
        name = resource.get("name", "kafka-cluster")
        pattern = _BACK_PATTERN[resource.get("patternType", "literal")]
        for op in rule["operations"]:
            found.add(Acl(user, rtype, name, pattern, _BACK_OP[op], rule["type"].upper()))
    return found


@pytest.mark.parametrize("plan", _plans())
def test_users_carry_exactly_the_plans_acls(plan: ProvisionPlan) -> None:
    users = [d for d in strimzi_resources(plan, cluster="msht") if d["kind"] == "KafkaUser"]
    emitted = set().union(*(_acls_of(d) for d in users))
    assert emitted == set(plan.acls)
    assert {d["metadata"]["name"] for d in users} == {u.name for u in plan.users}


@pytest.mark.parametrize("plan", _plans())
def test_users_authenticate_with_scram_sha_512(plan: ProvisionPlan) -> None:
    users = [d for d in strimzi_resources(plan, cluster="msht") if d["kind"] == "KafkaUser"]
    assert {d["spec"]["authentication"]["type"] for d in users} == {"scram-sha-512"}


@pytest.mark.parametrize("plan", _plans())
def test_topics_carry_the_plans_partitions_replicas_and_configs(plan: ProvisionPlan) -> None:
    topics = [d for d in strimzi_resources(plan, cluster="msht") if d["kind"] == "KafkaTopic"]
    emitted = {
        d["spec"]["topicName"]: (
            d["spec"]["partitions"],
            d["spec"]["replicas"],
            tuple(sorted(d["spec"].get("config", {}).items())),
        )
        for d in topics
    }
    wanted = {
        t.name: (t.partitions, t.replication_factor, tuple(sorted(t.configs))) for t in plan.topics
    }
    assert emitted == wanted


def test_resources_name_the_cluster_and_namespace() -> None:
    for document in strimzi_resources(_plans()[1], cluster="exchange", namespace="msht"):
        assert document["metadata"]["labels"] == {CLUSTER_LABEL: "exchange"}
        assert document["metadata"]["namespace"] == "msht"


def test_user_kubernetes_cannot_name_is_refused_not_renamed() -> None:
    plan = build_plan(NAMING, partners=("Police_UK",), agencies=())
    with pytest.raises(ConfigError, match="Police_UK"):
        strimzi_resources(plan, cluster="msht")


@pytest.mark.parametrize("topic", ["Ingress.Police", "in_gress", "a..b_", "_x", "x" * 249])
def test_topic_names_kubernetes_cannot_take_get_a_legal_distinct_resource_name(topic: str) -> None:
    name = topic_resource_name(topic)
    assert re.match(K8S_NAME, name)
    assert name != topic_resource_name(topic.swapcase())


def test_cli_writes_the_resources_without_a_cluster(tmp_path: Path) -> None:
    out = tmp_path / "strimzi.yaml"
    code = main(
        [
            "provision",
            str(REPO / "deploy" / "policy.yaml"),
            "--emit",
            "strimzi",
            "--trust-store",
            str(tmp_path / "none.yaml"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    documents = list(yaml.safe_load_all(out.read_text(encoding="utf-8")))
    assert {d["kind"] for d in documents} == {"KafkaTopic", "KafkaUser"}
    assert all(_problems(d) == [] for d in documents)
