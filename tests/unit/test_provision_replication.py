"""Replication factor and min ISR: from the settings into the plan, and existing topics that
fall short of them reported by the diff (pure: no broker)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from broker.errors import ConfigError
from broker.provision.diff import Action, ClusterState, ProvisionDiff, diff
from broker.provision.plan import (
    MIN_INSYNC_REPLICAS,
    Naming,
    ProvisionPlan,
    TopicRole,
    build_plan,
)
from broker.settings import Settings, load_settings

ADMIN = "admin"
BASE = Naming("ingress.", "deliver.", "msht.audit", "msht.quarantine")


def plan(replication_factor: int = 3, min_insync_replicas: int = 2) -> ProvisionPlan:
    naming = dataclasses.replace(
        BASE, replication_factor=replication_factor, min_insync_replicas=min_insync_replicas
    )
    return build_plan(naming, partners=("cps",), agencies=("police",))


def provisioned(p: ProvisionPlan, *, replicas: int, min_isr: int) -> ClusterState:
    """A cluster on which ``p`` was applied, every topic with ``replicas`` and ``min_isr``."""
    return ClusterState(
        topics={t.name: t.partitions for t in p.topics},
        scram_users=frozenset(u.name for u in p.users) | {ADMIN},
        acls=p.acls,
        replication={t.name: replicas for t in p.topics},
        min_insync={t.name: min_isr for t in p.topics},
    )


def reported(d: ProvisionDiff) -> dict[str, str]:
    return dict(d.topics_report)


# --- settings -> naming -> plan -------------------------------------------------------


def test_settings_default_to_one_replica_and_one_in_sync() -> None:
    settings = Settings()
    assert (settings.replication_factor, settings.min_insync_replicas) == (1, 1)


def test_naming_takes_replication_and_min_isr_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MSHT_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("MSHT_MIN_INSYNC_REPLICAS", "2")
    naming = Naming.from_settings(load_settings())
    assert (naming.replication_factor, naming.min_insync_replicas) == (3, 2)


def test_command_line_values_override_the_settings() -> None:
    settings = Settings(replication_factor=3, min_insync_replicas=2)
    naming = Naming.from_settings(settings, replication_factor=5, min_insync_replicas=3)
    assert (naming.replication_factor, naming.min_insync_replicas) == (5, 3)


@pytest.mark.parametrize("variable", ["MSHT_REPLICATION_FACTOR", "MSHT_MIN_INSYNC_REPLICAS"])
@pytest.mark.parametrize("value", ["0", "-1", "three"])
def test_unusable_setting_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable.removeprefix("MSHT_").lower()):
        load_settings()


@pytest.mark.parametrize(("rf", "min_isr"), [(2, 2), (3, 2), (3, 3), (5, 4)])
def test_every_planned_topic_has_the_replication_and_min_isr_of_the_settings(
    rf: int, min_isr: int
) -> None:
    p = plan(rf, min_isr)
    assert {t.role for t in p.topics} == set(TopicRole)
    for topic in p.topics:
        assert topic.replication_factor == rf
        assert dict(topic.configs)[MIN_INSYNC_REPLICAS] == str(min_isr)


@pytest.mark.parametrize("rf", [3, 4, 5])
def test_three_or_more_replicas_need_at_least_two_in_sync_whatever_the_settings(rf: int) -> None:
    for topic in plan(rf, 1).topics:
        assert dict(topic.configs)[MIN_INSYNC_REPLICAS] == "2"


@pytest.mark.parametrize("rf", [1, 2])
def test_min_isr_of_one_is_not_set_so_a_broker_default_above_it_stands(rf: int) -> None:
    for topic in plan(rf, 1).topics:
        assert MIN_INSYNC_REPLICAS not in dict(topic.configs)


@pytest.mark.parametrize(("rf", "min_isr"), [(1, 2), (3, 4), (2, 0)])
def test_min_isr_above_the_replication_factor_or_below_one_is_refused(
    rf: int, min_isr: int
) -> None:
    with pytest.raises(ConfigError, match="min ISR"):
        plan(rf, min_isr)


def test_created_topic_row_says_its_replication_and_min_isr() -> None:
    p = plan(3, 2)
    empty = ClusterState(topics={}, scram_users=frozenset({ADMIN}), acls=frozenset())
    rows = [r for r in diff(p, empty, prune=False, admin_user=ADMIN).rows() if r.kind == "topic"]
    assert rows
    assert all(r.action is Action.CREATE and "replication 3, min ISR 2" in r.note for r in rows)


# --- existing topics against the plan ---------------------------------------------------


@pytest.mark.parametrize(("have", "want"), list(itertools.product(range(1, 5), repeat=2)))
def test_topic_is_reported_exactly_when_it_has_fewer_replicas_than_the_settings(
    have: int, want: int
) -> None:
    p = plan(want, 1)
    d = diff(p, provisioned(p, replicas=have, min_isr=2), prune=False, admin_user=ADMIN)
    if have < want:
        assert set(reported(d)) == p.topic_names
        assert all(f"has {have} replica" in why for why in reported(d).values())
        assert all("MSHT_REPLICATION_FACTOR" in why for why in reported(d).values())
        assert d.topics_keep == ()
    else:
        assert reported(d) == {}
        assert set(d.topics_keep) == p.topic_names


@pytest.mark.parametrize(("have", "want"), list(itertools.product(range(1, 5), range(2, 5))))
def test_topic_is_reported_exactly_when_its_min_isr_is_below_the_settings(
    have: int, want: int
) -> None:
    p = plan(4, want)
    d = diff(p, provisioned(p, replicas=4, min_isr=have), prune=False, admin_user=ADMIN)
    if have < want:
        assert set(reported(d)) == p.topic_names
        assert all(f"min.insync.replicas is {have}" in why for why in reported(d).values())
        assert all("MSHT_MIN_INSYNC_REPLICAS" in why for why in reported(d).values())
    else:
        assert reported(d) == {}


def test_topic_short_on_both_counts_is_reported_once_with_both_reasons() -> None:
    p = plan(3, 2)
    d = diff(p, provisioned(p, replicas=1, min_isr=1), prune=False, admin_user=ADMIN)
    assert len(d.topics_report) == len(p.topics)
    for why in reported(d).values():
        assert "has 1 replica," in why
        assert "min.insync.replicas is 1" in why


def test_shortfall_is_only_reported_never_changed() -> None:
    p = plan(3, 2)
    d = diff(p, provisioned(p, replicas=1, min_isr=1), prune=True, admin_user=ADMIN)
    assert not d.changes_anything
    assert {r.action for r in d.rows() if r.kind == "topic"} == {Action.REPORT}


def test_topic_whose_replicas_were_not_read_is_not_judged_on_them() -> None:
    p = plan(3, 2)
    state = dataclasses.replace(
        provisioned(p, replicas=3, min_isr=2), replication={}, min_insync={}
    )
    d = diff(p, state, prune=False, admin_user=ADMIN)
    assert set(d.topics_keep) == p.topic_names


def test_partition_count_and_replica_shortfall_are_reported_together() -> None:
    p = plan(3, 2)
    state = provisioned(p, replicas=1, min_isr=2)
    state = dataclasses.replace(state, topics={**state.topics, "deliver.cps": 1})
    why = reported(diff(p, state, prune=False, admin_user=ADMIN))["deliver.cps"]
    assert "has 1 partitions" in why
    assert "has 1 replica," in why
