"""Which committed slots a view plan withholds (broker/router/proofs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.crypto.commitments import leaf_set, present_slots
from broker.events import codec
from broker.events.schemas import SchemaVersion, registry
from broker.policy.views import Action, Op, ViewPlan
from broker.router.proofs import withheld_by, withheld_slots
from tests.unit import event_samples as samples

_PATHS = (
    "victim.surname",
    "victim.aliases[]",
    "victim.aliases[1]",
    "victim.contact_details[].value",
    "victim.contact_details[0]",
    "exploiters[]",
    "first_responder",
    "exploitation_addresses[]",
    "nothing_here",
)


def _field(version: SchemaVersion, name: str) -> int:
    fields = leaf_set(version).root.fields
    return next(i for i, f in enumerate(fields) if f[0] == name)


def _referral() -> tuple[SchemaVersion, dict[str, Any]]:
    version = registry().current("Referral")
    body = codec.encode_body(version, samples.referral())
    return version, codec.decode_body(body, version, version)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_PATHS), max_size=5, unique=True))
def test_the_slots_a_plan_withholds_are_the_places_it_withholds_in_any_event(
    paths: list[str],
) -> None:
    version, payload = _referral()
    plan = ViewPlan(tuple(Action(p, Op.NULL, True) for p in paths), ())
    withheld = withheld_by(plan)
    present = present_slots(leaf_set(version), payload)
    by_place = {p.index for p in present if withheld(p.steps)}
    assert withheld_slots(plan, version) & {p.index for p in present} == by_place


@pytest.mark.parametrize("path", _PATHS)
def test_a_plan_withholds_every_slot_under_its_path_whether_or_not_an_event_fills_it(
    path: str,
) -> None:
    version, _ = _referral()
    slots = withheld_slots(ViewPlan((Action(path, Op.NULL, True),), ()), version)
    if path == "nothing_here":
        assert slots == frozenset()
    elif path == "exploiters[]":
        # Every item the array can hold, not only those an event fills.
        one = withheld_slots(ViewPlan((Action("exploiters[0]", Op.NULL, True),), ()), version)
        limit = leaf_set(version).root.fields[_field(version, "exploiters")][3].limit
        assert len(slots) == limit * len(one)
        assert one < slots
    else:
        assert slots
