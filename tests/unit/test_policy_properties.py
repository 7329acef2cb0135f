"""Properties over arbitrary events: no rule grants past a guard; views never leak identity."""

from __future__ import annotations

from typing import Any

from fastavro import parse_schema
from fastavro.validation import validate
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.events.markings import UK, Classification
from broker.policy.decide import decide
from broker.policy.model import View
from broker.policy.views import apply_view, plan_view
from broker.types import Outcome
from tests.unit.policy_support import (
    FIELDS,
    NOW,
    SCHEMA,
    facts,
    make,
    overseas,
    partner,
    payload,
)

PARTNERS = [
    partner("met", clearance="OFFICIAL_SENSITIVE", groups=["all"]),
    partner("nca", kind="national_agency", clearance="SECRET", groups=["all"]),
    partner("cps", kind="prosecutor", clearance="OFFICIAL", groups=["all"]),
    overseas("ilo-nl", "NL", clearance="SECRET", groups=["all"]),
    overseas("ilo-br", "BR", clearance="TOP_SECRET", groups=["all"]),
]
# The widest rule there is: everything to everyone, identity included, with a basis.
POLICY = make(
    PARTNERS,
    [
        {
            "id": "everything",
            "deliver": {"to": ["met", "nca", "cps", "ilo-nl", "ilo-br"], "view": "full"},
        }
    ],
)
NAMES = [p["id"] for p in PARTNERS] + ["someone-else"]
JURISDICTION = {p["id"]: p["jurisdiction"] for p in PARTNERS}
CLEARANCE = {p["id"]: Classification(p["clearance"]) for p in PARTNERS}

events = st.fixed_dictionaries(
    {
        "classification": st.sampled_from(list(Classification)),
        "tlp": st.sampled_from(["CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED"]),
        "siena_handling": st.sampled_from([None, "H0", "H1", "H2", "H3"]),
        "grading": st.sampled_from(
            [
                None,
                {"source": "SOURCE_2", "intelligence": "B", "handling": "P"},
                {"source": "SOURCE_2", "intelligence": "B", "handling": "C"},
            ]
        ),
        "intended_recipients": st.lists(st.sampled_from(NAMES), max_size=3),
        "origin_country": st.sampled_from([None, "NL", "FR", "US"]),
        "origin_authorised_recipients": st.lists(st.sampled_from(NAMES), max_size=2),
    }
)
victims = st.fixed_dictionaries(
    {
        "age_group": st.sampled_from(["adult", "child", "unknown"]),
        "consent": st.sampled_from([True, False, None]),
    }
)


@settings(max_examples=300, deadline=None)
@given(markings=events, victim=victims, source=st.sampled_from(NAMES))
def test_no_rule_grants_past_a_guard(
    markings: dict[str, Any], victim: dict[str, Any], source: str
) -> None:
    f = facts("alert.outbound", source=source, body=payload(**victim), **markings)
    for d in decide(POLICY, f, NOW).partners:
        if d.outcome is not Outcome.DELIVER:
            continue
        pid = d.partner
        assert f.classification.rank <= CLEARANCE[pid].rank
        assert markings["siena_handling"] not in ("H3",)
        assert markings["grading"] is None or markings["grading"]["handling"] != "C"
        if markings["siena_handling"] == "H2" or markings["tlp"] == "RED":
            assert pid in markings["intended_recipients"]
        if markings["siena_handling"] == "H1":
            # judicial use only with the provider's permission (its authorised recipients)
            assert pid != "cps" or pid in markings["origin_authorised_recipients"]
        abroad = JURISDICTION[pid] != UK
        origin = markings["origin_country"]
        if abroad and origin in ("NL", "FR") and JURISDICTION[pid] != origin:
            assert pid in markings["origin_authorised_recipients"]
        if victim["age_group"] == "adult" and victim["consent"] is not True:
            assert {"victim.forename", "victim.surname"} <= set(d.removes)


names = st.text(min_size=0, max_size=12)
schema_payloads = st.fixed_dictionaries(
    {
        "forename": names,
        "surname": st.none() | names,
        "aliases": st.lists(names, max_size=3),
        "date_of_birth": st.none() | st.integers(min_value=0, max_value=40000),
        "consent": st.none() | st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    victim=schema_payloads,
    remove=st.lists(st.sampled_from(["identity", "operational"]), unique=True),
    mask=st.lists(st.sampled_from(["identity", "operational"]), unique=True),
)
def test_views_fit_the_schema_and_hide_what_they_select(
    victim: dict[str, Any], remove: list[str], mask: list[str]
) -> None:
    body = payload(**victim)
    result = apply_view(body, plan_view(View(remove_tags=remove, mask_tags=mask), FIELDS))
    assert validate(result.payload, parse_schema(SCHEMA), raise_errors=False)
    if "identity" in remove or "identity" in mask:
        out = result.payload["victim"]
        assert out["forename"] in ("[withheld]",)
        assert out["surname"] in (None, "[withheld]")
        assert out["aliases"] == []
        assert out["date_of_birth"] is None
