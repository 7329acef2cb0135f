"""The provisioning plan and its comparison with a cluster (pure: no broker)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.policy.model import parse_policy
from broker.provision.diff import ClusterState, diff
from broker.provision.plan import (
    CLUSTER_RESOURCE,
    Acl,
    Naming,
    ProvisionPlan,
    Role,
    TopicRole,
    build_plan,
)
from broker.provision.run import plan_for_policy
from broker.settings import Settings

NAMING = Naming(
    ingress_prefix="ingress.",
    delivery_prefix="deliver.",
    audit_topic="msht.audit",
    quarantine_topic="msht.quarantine",
)
ADMIN = "admin"


def plan(
    partners: tuple[str, ...] = ("cps", "nca"), agencies: tuple[str, ...] = ("cps", "police")
) -> ProvisionPlan:
    return build_plan(NAMING, partners=partners, agencies=agencies)


def acl(user: str, rtype: str, name: str, op: str, pattern: str = "LITERAL") -> Acl:
    return Acl(f"User:{user}", rtype, name, pattern, op)


def grants(p: ProvisionPlan, user: str) -> set[Acl]:
    return {a for a in p.acls if a.principal == f"User:{user}"}


def readers(p: ProvisionPlan, topic: str) -> set[str]:
    """Principals whose READ grant (literal or prefixed) covers ``topic``."""
    return {
        a.principal
        for a in p.acls
        if a.resource_type == "TOPIC"
        and a.operation == "READ"
        and (
            a.resource_name == topic
            or (a.pattern_type == "PREFIXED" and topic.startswith(a.resource_name))
        )
    }


def writers(p: ProvisionPlan, topic: str) -> set[str]:
    return {
        a.principal
        for a in p.acls
        if a.resource_type == "TOPIC"
        and a.operation == "WRITE"
        and (
            a.resource_name == topic
            or (a.pattern_type == "PREFIXED" and topic.startswith(a.resource_name))
        )
    }


def provisioned(p: ProvisionPlan, extra_acls: frozenset[Acl] = frozenset()) -> ClusterState:
    """A cluster on which ``p`` has been applied."""
    return ClusterState(
        topics={t.name: t.partitions for t in p.topics},
        scram_users=frozenset(u.name for u in p.users) | {ADMIN},
        acls=p.acls | extra_acls,
    )


EMPTY = ClusterState(topics={}, scram_users=frozenset({ADMIN}), acls=frozenset())


# --- what the plan grants ------------------------------------------------------------


def test_agency_may_write_its_own_ingress_topic_and_no_other() -> None:
    p = plan()
    assert writers(p, "ingress.police") == {"User:police"}
    assert "User:police" not in writers(p, "ingress.cps")


def test_agency_may_describe_its_own_ingress_topic() -> None:
    assert acl("police", "TOPIC", "ingress.police", "DESCRIBE") in plan().acls


def test_agency_may_ask_for_an_idempotent_producer_id() -> None:
    assert acl("police", "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE") in plan().acls


def test_partner_reads_its_own_delivery_topic() -> None:
    assert readers(plan(), "deliver.cps") == {"User:cps"}


def test_partner_reads_no_ingress_topic() -> None:
    p = plan()
    for agency in p.agencies:
        assert "User:cps" not in readers(p, f"ingress.{agency}")


def test_partner_consumer_group_is_named_exactly_as_the_partner() -> None:
    groups = {a for a in grants(plan(), "cps") if a.resource_type == "GROUP"}
    assert groups == {acl("cps", "GROUP", "cps", "READ")}


def test_partner_that_only_reads_gets_no_write_grant() -> None:
    assert {a.operation for a in grants(plan(), "nca") if a.resource_type == "TOPIC"} == {"READ"}


def test_router_reads_every_ingress_topic_by_prefix() -> None:
    assert acl("router", "TOPIC", "ingress.", "READ", "PREFIXED") in plan().acls


def test_router_writes_every_delivery_topic_by_prefix() -> None:
    assert acl("router", "TOPIC", "deliver.", "WRITE", "PREFIXED") in plan().acls


def test_router_writes_audit_and_quarantine() -> None:
    p = plan()
    assert writers(p, "msht.audit") == {"User:router"}
    assert writers(p, "msht.quarantine") == {"User:router"}


def test_router_reads_audit_to_restore_its_state() -> None:
    assert acl("router", "TOPIC", "msht.audit", "READ") in plan().acls


def test_router_reads_its_consumer_group() -> None:
    assert acl("router", "GROUP", "msht-router", "READ") in plan().acls


def test_router_writes_and_describes_transactional_ids_under_its_prefix() -> None:
    p = plan()
    assert acl("router", "TRANSACTIONAL_ID", "msht-router-", "WRITE", "PREFIXED") in p.acls
    assert acl("router", "TRANSACTIONAL_ID", "msht-router-", "DESCRIBE", "PREFIXED") in p.acls


def test_only_the_router_holds_transactional_id_grants() -> None:
    holders = {a.principal for a in plan().acls if a.resource_type == "TRANSACTIONAL_ID"}
    assert holders == {"User:router"}


def test_only_the_operator_reads_quarantine() -> None:
    assert readers(plan(), "msht.quarantine") == {"User:operator"}


def test_only_the_router_and_auditor_read_audit() -> None:
    assert readers(plan(), "msht.audit") == {"User:router", "User:auditor"}


def test_auditor_and_operator_have_their_own_groups() -> None:
    p = plan()
    assert acl("auditor", "GROUP", "auditor", "READ") in p.acls
    assert acl("operator", "GROUP", "operator", "READ") in p.acls


def test_no_delivery_topic_is_readable_by_another_partner() -> None:
    p = plan(partners=("a", "b", "c"), agencies=("a", "b", "c"))
    for partner in p.partners:
        assert readers(p, f"deliver.{partner}") == {f"User:{partner}"}


def test_every_grant_is_allow_from_any_host() -> None:
    assert {(a.permission, a.host) for a in plan().acls} == {("ALLOW", "*")}


# --- topics and users ----------------------------------------------------------------


def test_topics_are_ingress_per_agency_delivery_per_partner_audit_quarantine_and_review() -> None:
    roles = {t.name: t.role for t in plan().topics}
    assert roles == {
        "ingress.cps": TopicRole.INGRESS,
        "ingress.police": TopicRole.INGRESS,
        "deliver.cps": TopicRole.DELIVERY,
        "deliver.nca": TopicRole.DELIVERY,
        "msht.audit": TopicRole.AUDIT,
        "msht.quarantine": TopicRole.QUARANTINE,
        "msht.held": TopicRole.HELD,
        "msht.decisions": TopicRole.DECISIONS,
    }


def test_topics_get_the_requested_partition_count() -> None:
    naming = Naming("in.", "out.", "a", "q", partitions=7)
    p = build_plan(naming, partners=["x"], agencies=["x"])
    assert {t.partitions for t in p.topics} == {7}


def test_audit_topic_is_kept_forever() -> None:
    audit = next(t for t in plan().topics if t.role is TopicRole.AUDIT)
    assert ("retention.ms", "-1") in audit.configs


def test_every_agency_partner_and_service_gets_a_user() -> None:
    names = {u.name for u in plan().users}
    assert names == {"cps", "nca", "police", "router", "auditor", "operator"}


def test_partner_that_also_publishes_is_one_user_with_both_roles() -> None:
    cps = next(u for u in plan().users if u.name == "cps")
    assert set(cps.roles) == {Role.AGENCY, Role.PARTNER}


# --- refused plans -------------------------------------------------------------------


def test_partner_named_like_the_router_is_refused() -> None:
    with pytest.raises(ConfigError, match="router"):
        plan(partners=("router",))


def test_overlapping_prefixes_are_refused() -> None:
    naming = Naming("topics.", "topics.out.", "a", "q")
    with pytest.raises(ConfigError, match="overlap"):
        build_plan(naming, partners=["x"], agencies=["x"])


def test_fewer_than_one_partition_is_refused() -> None:
    naming = Naming("in.", "out.", "a", "q", partitions=0)
    with pytest.raises(ConfigError, match="partitions"):
        build_plan(naming, partners=["x"], agencies=["x"])


def test_illegal_topic_name_is_refused() -> None:
    naming = Naming("in gress.", "out.", "a", "q")
    with pytest.raises(ConfigError, match="legal Kafka name"):
        build_plan(naming, partners=["x"], agencies=["x"])


def test_illegal_user_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="user name"):
        plan(agencies=("po lice",))


# --- from a policy and settings ------------------------------------------------------

POLICY = b"""
version: "1"
partners:
  - id: cps
    kind: prosecutor
    jurisdiction: GB
    clearance: OFFICIAL
    subscriptions: {event_types: [case.arrest]}
  - id: nca
    kind: national_agency
    jurisdiction: GB
    clearance: SECRET
    subscriptions: {event_types: [referral.nrm]}
"""


def test_publishers_are_partners_extras_and_trust_store_agencies_but_not_routers(
    tmp_path: Path,
) -> None:
    store = tmp_path / "trust.yaml"
    store.write_text(
        "version: 1\nagencies:\n  west-yorkshire-police: {keys: []}\n"
        "  router: {router: true, keys: []}\n",
        encoding="utf-8",
    )
    p = plan_for_policy(
        NAMING, parse_policy(POLICY), extra_agencies=["border-force"], trust_store=store
    )
    assert set(p.agencies) == {"cps", "nca", "border-force", "west-yorkshire-police"}


def test_missing_trust_store_adds_no_agencies(tmp_path: Path) -> None:
    p = plan_for_policy(NAMING, parse_policy(POLICY), trust_store=tmp_path / "absent.yaml")
    assert set(p.agencies) == {"cps", "nca"}


def test_partners_of_the_policy_get_delivery_topics() -> None:
    p = plan_for_policy(NAMING, parse_policy(POLICY))
    assert set(p.partners) == {"cps", "nca"}


def test_naming_follows_the_settings_prefixes_and_topics() -> None:
    settings = Settings(
        ingress_prefix="i.", delivery_prefix="d.", audit_topic="au", quarantine_topic="qu"
    )
    naming = Naming.from_settings(settings)
    assert (naming.ingress_topic("x"), naming.delivery_topic("x")) == ("i.x", "d.x")
    assert (naming.audit_topic, naming.quarantine_topic) == ("au", "qu")


# --- comparing with the cluster ------------------------------------------------------


def test_empty_cluster_gets_everything_created() -> None:
    p = plan()
    d = diff(p, EMPTY, prune=False, admin_user=ADMIN)
    assert set(d.acls_create) == p.acls
    assert {t.name for t in d.topics_create} == p.topic_names
    assert set(d.users_create) == {u.name for u in p.users}


def test_provisioned_cluster_needs_no_change() -> None:
    p = plan()
    d = diff(p, provisioned(p), prune=True, admin_user=ADMIN)
    assert not d.changes_anything


def test_existing_user_keeps_its_credential() -> None:
    p = plan()
    d = diff(p, provisioned(p), prune=False, admin_user=ADMIN)
    assert "cps" in d.users_keep
    assert "cps" not in d.users_create


def test_removed_partner_loses_every_acl_without_prune() -> None:
    before, after = plan(partners=("cps", "nca")), plan(partners=("cps",), agencies=("cps",))
    d = diff(after, provisioned(before), prune=False, admin_user=ADMIN)
    assert {a.principal for a in d.acls_remove} == {"User:nca", "User:police"}
    assert acl("nca", "TOPIC", "deliver.nca", "READ") in d.acls_remove
    assert acl("nca", "GROUP", "nca", "READ") in d.acls_remove


def test_removed_partner_credential_is_reported_without_prune() -> None:
    before, after = plan(partners=("cps", "nca")), plan(partners=("cps",))
    d = diff(after, provisioned(before), prune=False, admin_user=ADMIN)
    assert [u for u, _ in d.users_report] == ["nca"]
    assert d.users_remove == ()


def test_removed_partner_credential_is_removed_with_prune() -> None:
    before, after = plan(partners=("cps", "nca")), plan(partners=("cps",))
    d = diff(after, provisioned(before), prune=True, admin_user=ADMIN)
    assert d.users_remove == ("nca",)


def test_unplanned_acl_of_a_planned_principal_is_reported_without_prune() -> None:
    extra = acl("cps", "TOPIC", "deliver.nca", "READ")
    p = plan()
    d = diff(p, provisioned(p, frozenset({extra})), prune=False, admin_user=ADMIN)
    assert d.acls_report == (extra,)
    assert extra not in d.acls_remove


def test_unplanned_acl_is_removed_with_prune() -> None:
    extra = acl("cps", "TOPIC", "deliver.nca", "READ")
    p = plan()
    d = diff(p, provisioned(p, frozenset({extra})), prune=True, admin_user=ADMIN)
    assert d.acls_remove == (extra,)


def test_wildcard_grant_on_topics_is_in_scope() -> None:
    extra = acl("snoop", "TOPIC", "*", "READ")
    p = plan()
    d = diff(p, provisioned(p, frozenset({extra})), prune=False, admin_user=ADMIN)
    assert extra in d.acls_report


def test_broader_prefix_covering_delivery_topics_is_in_scope() -> None:
    extra = acl("snoop", "TOPIC", "deliv", "READ", "PREFIXED")
    p = plan()
    d = diff(p, provisioned(p, frozenset({extra})), prune=False, admin_user=ADMIN)
    assert extra in d.acls_report


def test_grant_on_the_routers_group_is_in_scope() -> None:
    extra = acl("snoop", "GROUP", "msht-router", "READ")
    p = plan()
    d = diff(p, provisioned(p, frozenset({extra})), prune=False, admin_user=ADMIN)
    assert extra in d.acls_report


def test_another_deployments_acls_are_out_of_scope() -> None:
    other = build_plan(
        Naming(
            "t1.in.",
            "t1.out.",
            "t1.audit",
            "t1.q",
            "r1",
            "g1",
            "x1-",
            "a1",
            "o1",
            held_topic="t1.held",
            decisions_topic="t1.decisions",
        ),
        partners=["p1"],
        agencies=["p1"],
    )
    p = plan()
    d = diff(p, provisioned(p, other.acls), prune=True, admin_user=ADMIN)
    assert not d.changes_anything
    assert d.acls_report == ()


def test_administrator_acls_are_never_touched() -> None:
    mine = acl(ADMIN, "TOPIC", "deliver.cps", "READ")
    p = plan()
    d = diff(p, provisioned(p, frozenset({mine})), prune=True, admin_user=ADMIN)
    assert mine not in d.acls_remove + d.acls_report


def test_topic_no_longer_in_the_plan_is_reported_not_removed() -> None:
    before, after = plan(partners=("cps", "nca")), plan(partners=("cps",))
    d = diff(after, provisioned(before), prune=True, admin_user=ADMIN)
    assert "deliver.nca" in {name for name, _ in d.topics_report}


def test_topic_with_another_partition_count_is_reported_and_kept() -> None:
    p = plan()
    state = provisioned(p)
    state = ClusterState({**state.topics, "deliver.cps": 1}, state.scram_users, state.acls)
    d = diff(p, state, prune=True, admin_user=ADMIN)
    assert "deliver.cps" in dict(d.topics_report)
    assert not d.changes_anything


# --- ingress topics stamp the broker's append time (issue 13, defect 3) ---------------------


def test_every_ingress_topic_is_created_with_log_append_time() -> None:
    ingress = [t for t in plan().topics if t.role is TopicRole.INGRESS]
    assert ingress
    assert all(("message.timestamp.type", "LogAppendTime") in t.configs for t in ingress)


def test_no_other_topic_is_given_log_append_time() -> None:
    others = [t for t in plan().topics if t.role is not TopicRole.INGRESS]
    assert not any(key == "message.timestamp.type" for t in others for key, _ in t.configs)


def test_ingress_topic_stamped_with_create_time_is_altered_to_log_append_time() -> None:
    p = plan()
    ingress = next(t.name for t in p.topics if t.role is TopicRole.INGRESS)
    state = provisioned(p)
    configs = {t.name: dict(t.configs) for t in p.topics}
    configs[ingress]["message.timestamp.type"] = "CreateTime"
    d = diff(p, dataclasses.replace(state, topic_configs=configs), prune=False, admin_user=ADMIN)
    assert d.topics_alter == ((ingress, (("message.timestamp.type", "LogAppendTime"),)),)
    assert d.changes_anything
    assert ("alter", ingress) in {(r.action.value, r.subject) for r in d.rows()}


def test_topics_whose_configuration_matches_the_plan_are_not_altered() -> None:
    p = plan()
    configs = {t.name: {**dict(t.configs), "cleanup.policy": "delete"} for t in p.topics}
    state = dataclasses.replace(provisioned(p), topic_configs=configs)
    d = diff(p, state, prune=False, admin_user=ADMIN)
    assert d.topics_alter == ()
    assert not d.changes_anything
