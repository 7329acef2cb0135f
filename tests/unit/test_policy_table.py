"""docs/POLICY.md, "What each partner receives": one test per cell.

Rows are kinds of person (with age and consent), columns kinds of partner. UK partners are
decided with the shipped policy (deploy/policy.yaml); the two columns abroad with a policy
naming one liaison point with a basis and reaching another through a group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.events.schemas import registry
from broker.policy.decide import decide
from broker.policy.facts import extract_facts
from broker.policy.model import LoadedPolicy, load_policy
from broker.policy.views import apply_view
from broker.types import Outcome
from tests.unit.event_samples import alert, case_update, person, referral
from tests.unit.policy_support import header, make, overseas

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SHIPPED = load_policy(Path(__file__).resolve().parents[2] / "deploy" / "policy.yaml")
ABROAD = make(
    [
        overseas("ilo-a", groups=["liaison"]),
        overseas("ilo-b", country="FR", groups=["liaison"]),
    ],
    [
        {"id": "named", "deliver": {"to": ["ilo-a"], "view": "full", "basis": "adequacy"}},
        {"id": "group", "deliver": {"to": ["liaison"], "view": "full"}},
    ],
)
NOT_DELIVERED = None


def _received(
    policy: LoadedPolicy, event_type: str, record: str, body: dict[str, Any], **marks: Any
) -> dict[str, dict[str, Any] | None]:
    f = extract_facts(
        header(event_type, source="met-police", **marks), body, registry().fields(record)
    )
    out: dict[str, dict[str, Any] | None] = {}
    for d in decide(policy, f, NOW).partners:
        if d.outcome is Outcome.DELIVER and d.plan is not None:
            out[d.partner] = apply_view(body, d.plan).payload
        else:
            out[d.partner] = NOT_DELIVERED
    return out


def _referral(age: str, consent: bool | None) -> dict[str, dict[str, Any] | None]:
    body = referral(
        age_group=age,
        consent=consent,
        crime_reference="CR-1",
        account="the account",
        needs_support=True,
        exploiters=[{"details": "Suspect Sigma", "in_uk": True}],
        first_responder={
            "organisation": "Org",
            "name": "FR Name",
            "role": None,
            "phone": "FR-PHONE",
            "email": None,
            "local_authority_contact": None,
        },
    )
    return _received(SHIPPED, "referral.nrm", "Referral", body, classification="OFFICIAL")


def _surname(got: dict[str, Any] | None) -> Any:
    assert got is not None
    return got["victim"]["surname"]


# --- victim rows -----------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "consent"), [("CHILD", None), ("CHILD", False), ("ADULT", True)])
def test_law_enforcement_reads_a_child_or_a_consenting_adult_in_full(
    age: str, consent: bool | None
) -> None:
    got = _referral(age, consent)["nca"]
    assert _surname(got) == "Testova"
    assert got is not None
    assert got["crime_reference"] == "CR-1"
    assert got["account"] == "the account"


@pytest.mark.parametrize(
    ("age", "consent"), [("ADULT", False), ("ADULT", None), ("UNKNOWN", None), ("UNKNOWN", False)]
)
def test_nobody_reads_an_adult_or_unknown_age_victim_without_consent(
    age: str, consent: bool | None
) -> None:
    received = _referral(age, consent)
    for partner in ("nca",):
        got = received[partner]
        assert _surname(got) is None
        assert got is not None
        assert got["crime_reference"] is None
        assert got["account"] is None
        assert got["victim"]["contact_details"] == []
    assert received["salvation-army"] is NOT_DELIVERED
    assert received["ictg"] is NOT_DELIVERED


def test_a_victim_whose_age_is_missing_is_read_as_an_adult() -> None:
    body = case_update(
        victims=[{"index": 1, "person": person(), "age_group": None, "consent": None}]
    )
    got = _received(SHIPPED, "case.charge", "CaseUpdate", body)["cps"]
    assert got is not None
    assert got["victims"][0]["person"]["surname"] is None


def test_the_support_provider_reads_a_consenting_adults_contact_and_needs_only() -> None:
    got = _referral("ADULT", True)["salvation-army"]
    assert _surname(got) == "Testova"
    assert got is not None
    assert got["victim"]["contact_details"] != []
    assert got["needs_support"] is True
    assert got["crime_reference"] is None
    assert got["account"] is None
    assert got["police_force"] is None


def test_the_support_provider_receives_no_childs_referral() -> None:
    assert _referral("CHILD", None)["salvation-army"] is NOT_DELIVERED


def test_the_guardian_service_reads_a_child_without_police_references() -> None:
    got = _referral("CHILD", None)["ictg"]
    assert _surname(got) == "Testova"
    assert got is not None
    assert got["account"] == "the account"
    assert got["crime_reference"] is None


def test_the_guardian_service_receives_no_adults_referral() -> None:
    assert _referral("ADULT", True)["ictg"] is NOT_DELIVERED


# --- suspects, witnesses, staff, mixed narrative ------------------------------------------------


def test_law_enforcement_reads_suspects() -> None:
    got = _referral("ADULT", False)["nca"]
    assert got is not None
    assert got["exploiters"][0]["details"] == "Suspect Sigma"


@pytest.mark.parametrize(
    ("partner", "age", "consent"), [("salvation-army", "ADULT", True), ("ictg", "CHILD", None)]
)
def test_support_and_guardian_services_never_read_suspects(
    partner: str, age: str, consent: bool | None
) -> None:
    got = _referral(age, consent)[partner]
    assert got is not None
    assert got["exploiters"] == []


def test_law_enforcement_reads_defendants_and_witnesses_in_a_case() -> None:
    body = case_update(
        victims=[{"index": 1, "person": person(), "age_group": "ADULT", "consent": False}],
        witnesses=[{"index": 1, "person": person(surname="Witness"), "statement_summary": "saw"}],
    )
    got = _received(SHIPPED, "case.charge", "CaseUpdate", body)["cps"]
    assert got is not None
    assert got["defendants"][0]["person"]["surname"] == "Suspectov"
    assert got["witnesses"][0]["person"]["surname"] == "Witness"


def test_support_and_guardian_services_are_not_granted_case_updates() -> None:
    received = _received(SHIPPED, "case.charge", "CaseUpdate", case_update())
    assert received["salvation-army"] is NOT_DELIVERED
    assert received["ictg"] is NOT_DELIVERED


@pytest.mark.parametrize(
    ("partner", "age", "consent"),
    [("nca", "ADULT", False), ("salvation-army", "ADULT", True), ("ictg", "CHILD", None)],
)
def test_the_first_responders_contact_is_kept(partner: str, age: str, consent: bool | None) -> None:
    got = _referral(age, consent)[partner]
    assert got is not None
    assert got["first_responder"]["phone"] == "FR-PHONE"


@pytest.mark.parametrize(("consent", "kept"), [(False, False), (True, True)])
def test_a_narrative_about_several_people_goes_with_a_protected_victim(
    consent: bool, kept: bool
) -> None:
    body = case_update(
        victims=[{"index": 1, "person": person(), "age_group": "ADULT", "consent": consent}]
    )
    body["defendants"][0]["charges"][0]["wording"] = "the wording"
    got = _received(SHIPPED, "case.charge", "CaseUpdate", body)["cps"]
    assert got is not None
    assert (got["defendants"][0]["charges"][0]["wording"] == "the wording") is kept


# --- abroad ------------------------------------------------------------------------------------


def _alert(age: str, consent: bool | None) -> dict[str, dict[str, Any] | None]:
    body = alert(
        direction="OUTBOUND",
        persons=[
            {"status": "SUSPECT", "person": person(surname="Suspect")},
            {
                "status": "VICTIM",
                "person": person(surname="Victim"),
                "age_group": age,
                "consent": consent,
            },
            {"status": "WITNESS", "person": person(surname="Witness")},
        ],
    )
    return _received(ABROAD, "alert.outbound", "Alert", body)


@pytest.mark.parametrize(("age", "consent"), [("CHILD", None), ("ADULT", True)])
def test_a_liaison_point_a_rule_names_with_a_basis_reads_identities(
    age: str, consent: bool | None
) -> None:
    got = _alert(age, consent)["ilo-a"]
    assert got is not None
    assert [p["person"]["surname"] for p in got["persons"]] == ["Suspect", "Victim", "Witness"]


def test_a_liaison_point_named_with_a_basis_never_reads_a_protected_victim() -> None:
    got = _alert("ADULT", False)["ilo-a"]
    assert got is not None
    assert [p["person"]["surname"] for p in got["persons"]] == ["Suspect", None, "Witness"]


@pytest.mark.parametrize(("age", "consent"), [("CHILD", None), ("ADULT", True), ("ADULT", False)])
def test_a_liaison_point_reached_through_a_group_reads_no_identity(
    age: str, consent: bool | None
) -> None:
    got = _alert(age, consent)["ilo-b"]
    assert got is not None
    assert [p["person"]["surname"] for p in got["persons"]] == [None, None, None]
