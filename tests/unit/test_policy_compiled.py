"""The per-policy tables equal what the policy says, and views that share equal views that copy.

:mod:`broker.policy.compiled` computes rule targets and view plans once per loaded policy;
:func:`broker.policy.views.apply_view_sharing` copies only what a view changes. Each is
compared here with the plain computation it replaces, over every rule, partner, view and
payload record, and (for the views) over arbitrary payloads and paths.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import example, given, settings
from hypothesis import strategies as st

from broker.crypto.sealing import SealScope, seal_fields
from broker.errors import SealingError
from broker.events.schemas import EVENT_TYPES, registry
from broker.policy import load_policy
from broker.policy.compiled import compiled
from broker.policy.model import LoadedPolicy
from broker.policy.rules import targets
from broker.policy.views import (
    IDENTITY,
    Action,
    Op,
    ViewPlan,
    apply_view,
    apply_view_sharing,
    plan_view,
    without_tags,
)
from broker.types import AgencyId, EventId, PartnerId
from tests.unit.test_policy_properties import POLICY as PROPERTIES_POLICY

REPO = Path(__file__).resolve().parents[2]
POLICIES = [
    load_policy(REPO / "deploy" / "policy.yaml"),
    load_policy(REPO / "benchmarks" / "policy.yaml"),
    PROPERTIES_POLICY,
]
RECORDS = sorted({record for record in EVENT_TYPES.values()})


def test_each_partners_rules_are_those_that_name_it_in_file_order() -> None:
    for loaded in POLICIES:
        policy = loaded.policy
        tables = compiled(loaded)
        for partner in policy.partners:
            expected = [r for r in policy.rules if partner.id in targets(r, policy)]
            assert list(tables.rules_for[partner.id]) == expected


def test_every_views_plan_equals_planning_it_from_the_schema() -> None:
    for loaded in POLICIES:
        tables = compiled(loaded)
        for record in RECORDS:
            fields = registry().fields(record)
            for name, view in loaded.policy.views.items():
                assert tables.plan(name, view, fields) == plan_view(view, fields)
                narrowed = plan_view(without_tags(view, [IDENTITY]), fields)
                assert tables.plan(name, view, fields, narrowed=True) == narrowed
                # Asked again (now from the table), the same plans.
                assert tables.plan(name, view, fields) == plan_view(view, fields)
                assert tables.plan(name, view, fields, narrowed=True) == narrowed


def test_the_tables_are_kept_with_the_loaded_policy_they_describe() -> None:
    loaded = load_policy(REPO / "deploy" / "policy.yaml")
    assert compiled(loaded) is compiled(loaded)
    # Another load of the same file (a reload) is another object with its own tables.
    assert compiled(load_policy(REPO / "deploy" / "policy.yaml")) is not compiled(loaded)


def test_a_policy_with_other_rules_gets_its_own_tables() -> None:
    loaded = load_policy(REPO / "deploy" / "policy.yaml")
    assert any(compiled(loaded).rules_for.values())
    emptied = LoadedPolicy(loaded.policy.model_copy(update={"rules": []}), "v-empty", loaded.source)
    assert not any(compiled(emptied).rules_for.values())
    replaced = dataclasses.replace(loaded, policy=emptied.policy)
    assert not any(compiled(replaced).rules_for.values())


# --- views that share what they do not change ---------------------------------------------

NAMES = ("a", "b", "c")
leaves = st.none() | st.text(max_size=4) | st.integers(-3, 3)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(NAMES), children, max_size=3)
    ),
    max_leaves=25,
)
payloads = st.dictionaries(st.sampled_from(NAMES), trees, max_size=3)
# View paths: names, each maybe followed by a step into every item ([] {}) or one ([1] {a}).
view_parts = st.tuples(
    st.sampled_from(NAMES), st.sampled_from(["", "[]", "{}", "[0]", "[1]", "{a}"])
)
# A field path ends at a field, as every plan's do.
view_paths = st.tuples(st.lists(view_parts, max_size=3), st.sampled_from(NAMES)).map(
    lambda p: ".".join([*(name + step for name, step in p[0]), p[1]])
)
# Seal paths (broker.crypto.sealing syntax): names with any number of [] and {} markers.
seal_parts = st.tuples(st.sampled_from(NAMES), st.lists(st.sampled_from(["[]", "{}"]), max_size=2))
seal_paths = st.lists(seal_parts, min_size=1, max_size=3).map(
    lambda parts: ".".join(name + "".join(marks) for name, marks in parts)
)
actions = st.builds(Action, view_paths, st.sampled_from(list(Op)), st.booleans())
KEY = X25519PrivateKey.generate().public_key()
SCOPE = SealScope(AgencyId("met-police"), EventId("e-1"), "referral.nrm")


STEPS = {"a": [{"b": "x"}, {"b": "y"}], "c": {"a": {"b": "z"}, "c": {"b": "w"}}}


@settings(max_examples=400, deadline=None)
@given(payload=payloads, plan_actions=st.lists(actions, max_size=4))
@example(payload=STEPS, plan_actions=[Action("a[1].b", Op.NULL, True)])
@example(payload=STEPS, plan_actions=[Action("a[].b", Op.MASK, False)])
@example(payload=STEPS, plan_actions=[Action("c{a}.b", Op.NULL, True)])
@example(payload=STEPS, plan_actions=[Action("c{}.b", Op.MASK, True)])
def test_a_shared_view_equals_the_copied_view_and_leaves_the_payload_alone(
    payload: dict[str, Any], plan_actions: list[Action]
) -> None:
    plan = ViewPlan(tuple(plan_actions), ())
    before = copy.deepcopy(payload)
    assert apply_view_sharing(payload, plan) == apply_view(payload, plan)
    assert payload == before


@settings(max_examples=400, deadline=None)
@given(
    payload=payloads,
    plan_actions=st.lists(actions, max_size=3),
    sealed=st.lists(seal_paths, min_size=1, max_size=3),
)
def test_sealing_inside_a_shared_view_leaves_the_payload_alone(
    payload: dict[str, Any], plan_actions: list[Action], sealed: list[str]
) -> None:
    plan = ViewPlan(tuple(plan_actions), ())
    before = copy.deepcopy(payload)
    view = apply_view_sharing(payload, plan, sealed).payload
    # A path the payload does not have raises (the router then withholds that view); what
    # was sealed before it was sealed inside the view all the same.
    with contextlib.suppress(SealingError):
        seal_fields(view, sealed, SCOPE, PartnerId("nca"), KEY, in_place=True)
    assert payload == before


def test_a_path_sharing_cannot_follow_falls_back_to_a_full_copy() -> None:
    payload = {"a": {"b": "x"}}
    view = apply_view_sharing(payload, ViewPlan((), ()), ["a.not a name"]).payload
    assert view == payload
    assert view["a"] is not payload["a"]
