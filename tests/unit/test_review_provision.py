"""Provisioning for review: the held and decisions topics, and exactly the reviewers' access."""

from __future__ import annotations

from pathlib import Path

from broker.crypto.keyring import generate_agency_keys
from broker.policy import load_policy
from broker.provision.plan import (
    HELD_RETENTION_MS,
    Naming,
    ProvisionPlan,
    Role,
    build_plan,
)
from broker.provision.run import plan_for_policy

NAMING = Naming("ingress.", "deliver.", "msht.audit", "msht.quarantine")
REPO = Path(__file__).resolve().parents[2]


def _plan() -> ProvisionPlan:
    return build_plan(NAMING, partners=["cps"], agencies=["police"], reviewers=["duty-officer"])


def _grants(p: ProvisionPlan, user: str) -> set[tuple[str, str, str]]:
    return {
        (a.resource_type, a.resource_name, a.operation)
        for a in p.acls
        if a.principal == f"User:{user}"
    }


def _on(p: ProvisionPlan, topic: str, op: str) -> set[str]:
    return {a.principal for a in p.acls if a.resource_name == topic and a.operation == op}


def test_a_reviewer_may_read_held_and_write_decisions_and_nothing_else() -> None:
    assert _grants(_plan(), "duty-officer") == {
        ("TOPIC", "msht.held", "READ"),
        ("GROUP", "duty-officer", "READ"),
        ("TOPIC", "msht.decisions", "WRITE"),
        ("TOPIC", "msht.decisions", "DESCRIBE"),
        ("CLUSTER", "kafka-cluster", "IDEMPOTENT_WRITE"),
    }


def test_only_the_router_writes_the_held_topic() -> None:
    assert _on(_plan(), "msht.held", "WRITE") == {"User:router"}


def test_only_reviewers_write_decisions_and_only_the_router_reads_them() -> None:
    p = _plan()
    assert _on(p, "msht.decisions", "WRITE") == {"User:duty-officer"}
    assert _on(p, "msht.decisions", "READ") == {"User:router"}


def test_the_held_topic_keeps_holds_for_ninety_days() -> None:
    [held] = [t for t in _plan().topics if t.name == "msht.held"]
    assert ("retention.ms", str(HELD_RETENTION_MS)) in held.configs
    assert HELD_RETENTION_MS == 90 * 24 * 3600 * 1000


def test_a_reviewer_is_a_user_with_the_reviewer_role_only() -> None:
    [user] = [u for u in _plan().users if u.name == "duty-officer"]
    assert user.roles == (Role.REVIEWER,)


def test_a_reviewer_in_the_trust_store_gets_no_ingress_topic(tmp_path: Path) -> None:
    trust = tmp_path / "trust.yaml"
    generate_agency_keys(tmp_path / "keys", trust, "duty-officer")
    policy = load_policy(REPO / "deploy" / "policy.yaml")
    p = plan_for_policy(NAMING, policy, trust_store=trust)
    assert "ingress.duty-officer" not in p.topic_names
    assert "duty-officer" not in p.agencies
    assert ("TOPIC", "msht.decisions", "WRITE") in _grants(p, "duty-officer")
