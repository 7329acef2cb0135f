"""One decision per person: each victim's own age and consent decide that victim's fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.events.markings import AgeGroup, Consent
from broker.events.schemas import registry
from broker.policy.decide import PartnerDecision, decide
from broker.policy.facts import extract_facts
from broker.policy.views import apply_view
from tests.unit.event_samples import alert, case_update, person, referral
from tests.unit.policy_support import grant_all, header, make, partner

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CASE = registry().fields("CaseUpdate")
REFERRAL = registry().fields("Referral")
ALERT = registry().fields("Alert")


def _victim(n: int, age: str | None, consent: bool | None) -> dict[str, Any]:
    return {
        "index": n,
        "person": person(forename=f"V{n}", surname=f"Victim{n}"),
        "age_group": age,
        "consent": consent,
        "referral_id": f"REF-{n}",
    }


def _decide_case(victims: list[dict[str, Any]], event_type: str = "case.charge") -> Any:
    body = case_update(victims=victims)
    f = extract_facts(header(event_type, source="cps"), body, CASE)
    policy = make([partner("met")], [grant_all(["met"])])
    d = decide(policy, f, NOW).for_partner("met")
    return d, apply_view(body, d.plan).payload if d.plan is not None else None


def test_each_victim_has_their_own_facts() -> None:
    body = case_update(victims=[_victim(1, "CHILD", None), _victim(2, "ADULT", False)])
    f = extract_facts(header("case.charge", source="cps"), body, CASE)
    by = {p.instance: p for p in f.persons if p.role == "victim"}
    assert (by["victims[0]"].age_group, by["victims[0]"].consent) == (AgeGroup.CHILD, Consent.NONE)
    assert (by["victims[1]"].age_group, by["victims[1]"].consent) == (AgeGroup.ADULT, Consent.NO)


def test_non_consenting_adult_is_hidden_while_the_child_and_the_suspect_are_kept() -> None:
    d, out = _decide_case([_victim(1, "CHILD", None), _victim(2, "ADULT", False)])
    assert out["victims"][0]["person"]["surname"] == "Victim1"
    assert out["victims"][0]["referral_id"] == "REF-1"
    assert out["victims"][1]["person"]["surname"] is None
    assert out["victims"][1]["person"]["forename"] is None
    assert out["victims"][1]["referral_id"] is None
    assert out["defendants"][0]["person"]["surname"] == "Suspectov"
    assert "victims[1]" in (d.view or "")
    assert any("victims[1]" in s and "MSA 2015 s.52(3)" in s for s in d.withheld)


def test_missing_age_reads_as_adult_and_missing_consent_as_not_given() -> None:
    d, out = _decide_case([_victim(1, None, None)])
    assert out["victims"][0]["person"]["surname"] is None
    assert "guard:msa-s52" in d.guards


def test_unknown_age_without_consent_is_read_the_restrictive_way() -> None:
    _, out = _decide_case([_victim(1, "UNKNOWN", None)])
    assert out["victims"][0]["person"]["surname"] is None


def test_consenting_adult_keeps_their_identity() -> None:
    d, out = _decide_case([_victim(1, "ADULT", True)])
    assert out["victims"][0]["person"]["surname"] == "Victim1"
    assert d.withheld == ()


def test_mixed_narrative_is_withheld_when_it_concerns_a_protected_victim() -> None:
    body = case_update(victims=[_victim(1, "ADULT", False)])
    body["defendants"][0]["charges"][0]["wording"] = "Held V1 Victim1 in servitude"
    f = extract_facts(header("case.charge", source="cps"), body, CASE)
    d = decide(make([partner("met")], [grant_all(["met"])]), f, NOW).for_partner("met")
    assert d.plan is not None
    out = apply_view(body, d.plan).payload
    assert out["defendants"][0]["charges"][0]["wording"] is None
    assert any("several people" in s for s in d.withheld)


def test_inbound_alert_with_an_adult_victim_keeps_the_named_suspect() -> None:
    body = alert(
        persons=[
            {"status": "SUSPECT", "person": person(forename="Jan", surname="Suspect")},
            {"status": "VICTIM", "person": person(forename="Eva", surname="Victim")},
        ],
        victim_age_group="ADULT",
        victim_consent=False,
    )
    f = extract_facts(header("alert.inbound", source="nca"), body, ALERT)
    d = decide(make([partner("met")], [grant_all(["met"])]), f, NOW).for_partner("met")
    assert d.plan is not None
    out = apply_view(body, d.plan).payload
    assert out["persons"][0]["person"]["surname"] == "Suspect"
    assert out["persons"][1]["person"]["surname"] is None
    # the message reference links to every person in it, so it goes with the victim's data
    assert out["siena_message_id"] is None


def test_alert_persons_use_their_own_age_and_consent_when_there_are_several_victims() -> None:
    body = alert(
        persons=[
            {"status": "VICTIM", "person": person(surname="A"), "age_group": "CHILD"},
            {"status": "VICTIM", "person": person(surname="B"), "consent": True},
            {"status": "VICTIM", "person": person(surname="C")},
        ],
        victim_age_group="ADULT",
        victim_consent=True,
    )
    f = extract_facts(header("alert.inbound", source="nca"), body, ALERT)
    d = decide(make([partner("met")], [grant_all(["met"])]), f, NOW).for_partner("met")
    assert d.plan is not None
    out = apply_view(body, d.plan).payload
    assert [p["person"]["surname"] for p in out["persons"]] == ["A", "B", None]


def test_a_dtn_claiming_consent_is_still_read_as_no_consent() -> None:
    body = referral(consent=True)
    f = extract_facts(header("referral.dtn", source="met-police"), body, REFERRAL)
    assert f.victim_consent is Consent.NO
    assert [p.consent for p in f.protected_persons] == [Consent.NO]


def test_referral_linking_identifiers_go_with_the_non_consenting_victim() -> None:
    body = referral(consent=False, crime_reference="CR/1/26", duplicate_of="R-0")
    f = extract_facts(header("referral.nrm", source="met-police"), body, REFERRAL)
    d = decide(make([partner("nca")], [grant_all(["nca"])]), f, NOW).for_partner("nca")
    assert d.plan is not None
    out = apply_view(body, d.plan).payload
    assert out["crime_reference"] is None
    assert out["duplicate_of"] is None


VICTIMS = st.lists(
    st.tuples(
        st.sampled_from(["ADULT", "CHILD", "UNKNOWN", None]),
        st.sampled_from([True, False, None]),
    ),
    min_size=1,
    max_size=5,
)


def _kept_surnames(d: PartnerDecision, body: dict[str, Any]) -> set[str]:
    assert d.plan is not None
    out = apply_view(body, d.plan).payload
    return {v["person"]["surname"] for v in out["victims"] if v["person"]["surname"]}


@given(VICTIMS, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_the_result_does_not_depend_on_the_order_of_victims(
    spec: list[tuple[str | None, bool | None]], rnd: Any
) -> None:
    victims = [_victim(i, age, consent) for i, (age, consent) in enumerate(spec)]
    shuffled = list(victims)
    rnd.shuffle(shuffled)
    policy = make([partner("met")], [grant_all(["met"])])
    results = []
    for order in (victims, shuffled):
        body = case_update(victims=order)
        f = extract_facts(header("case.charge", source="cps"), body, CASE)
        d = decide(policy, f, NOW).for_partner("met")
        results.append((_kept_surnames(d, body), f.victim_age_group, f.victim_consent))
    assert results[0] == results[1]
    expected = {
        f"Victim{i}" for i, (age, consent) in enumerate(spec) if age == "CHILD" or consent is True
    }
    assert results[0][0] == expected
